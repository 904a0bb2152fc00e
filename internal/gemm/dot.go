package gemm

// dotFunc is a dot kernel (see dot_avx512_amd64.go): C[r][c] = alpha·dot(A
// row r, W row c) + beta·C[r][c] for r < rows and c < cols (both <= 4).
type dotFunc func(k, rows, cols int, a []float32, lda int, w [4][]float32, c []float32, ldc int, alpha, beta float32)

// A kernel's dotMaxM is the largest m it sends to its dot kernel when B is
// transposed: x·Wᵀ for a small batch, as in decoding. Packing (transposing)
// W for so few rows of C costs more than the product; the dot kernel reads
// each W row once, in place, and keeps it in L1 while it meets every row of
// x. Measured on one Sapphire Rapids core, n=768, k=256, dot vs blocked:
// AVX-512 m=1 14 vs 46 µs, m=8 44 vs 74, m=32 108 vs 127 (even at 48..64);
// AVX2 m=1 22 vs 41, m=8 84 vs 89, m=16 even, m=32 318 vs 248.
const (
	dotMaxMAVX512 = 32
	dotMaxMAVX2   = 8
)

// runDot computes C = alpha·op(A)·Bᵀ + beta·C with dot products. Each C
// element is one dot product over all of k (16 lanes, then a fixed
// reduction tree), so the result does not depend on the thread count.
func (d *blocked) runDot(g *call, parallel bool) {
	a, lda := g.a, g.lda
	if g.transA { // gather the few rows of op(A) so they are contiguous in k
		buf := getBuf(g.m * g.k)
		defer putBuf(buf)
		for i := range g.m {
			row := buf[i*g.k : (i+1)*g.k]
			for p := range row {
				row[p] = g.a[p*g.lda+i]
			}
		}
		a, lda = buf, g.k
	}
	groups := ceilDiv(g.n, 4)
	work := func(lo, hi int) {
		for grp := lo; grp < hi; grp++ {
			j0 := grp * 4
			cols := min(4, g.n-j0)
			var w [4][]float32
			for c := range w {
				j := j0 + min(c, cols-1) // rows past the end repeat the last one
				w[c] = g.b[j*g.ldb : j*g.ldb+g.k]
			}
			for i0 := 0; i0 < g.m; i0 += 4 {
				d.dot(g.k, min(4, g.m-i0), cols, a[i0*lda:], lda, w, g.c[i0*g.ldc+j0:], g.ldc, g.alpha, g.beta)
			}
		}
	}
	spread(groups, 4, parallel && g.m*g.n*g.k >= parallelMin, func() (func(lo, hi int), func()) {
		return work, func() {}
	})
}
