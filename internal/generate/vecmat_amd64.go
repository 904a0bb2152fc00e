package generate

import "golang.org/x/sys/cpu"

// haveFMA says whether the AVX2+FMA kernels of vecmat_amd64.s can run
// (x/sys/cpu reports AVX only when the OS saves the registers).
var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func vecMat64(y, a, x *float32, rows, ldx int)

//go:noescape
func vecMat32(y, a, x *float32, rows, ldx int)

//go:noescape
func vecMat8(y, a, x *float32, rows, ldx int)

//go:noescape
func vecMat4x16(y, a, x0, x1, x2, x3 *float32, rows, ldx int)

// vecMat does y[0:n] += Σ_{i<rows} a[i]·x[i·ldx : i·ldx+n] as one FMA
// chain per column, rows in order: a row vector times a strided matrix,
// the primitive paged attention is built from (scores against transposed
// keys, probabilities times values). Columns go to the assembly kernels in
// chunks of 64, 32 and 8, the rest to explicit FMAs in Go; without
// AVX2+FMA everything runs in portable Go.
func vecMat(y, a, x []float32, rows, n, ldx int) {
	if rows == 0 || n == 0 {
		return
	}
	_ = y[n-1]
	_ = a[rows-1]
	_ = x[(rows-1)*ldx+n-1]
	j := 0
	if haveFMA {
		for ; j+64 <= n; j += 64 {
			vecMat64(&y[j], &a[0], &x[j], rows, ldx)
		}
		for ; j+32 <= n; j += 32 {
			vecMat32(&y[j], &a[0], &x[j], rows, ldx)
		}
		for ; j+8 <= n; j += 8 {
			vecMat8(&y[j], &a[0], &x[j], rows, ldx)
		}
	}
	switch {
	case j == n:
	case haveFMA:
		vecMatFMA(y[j:n], a[:rows], x[j:], ldx)
	default:
		vecMatGo(y[j:n], a[:rows], x[j:], ldx)
	}
}

// vecMatStrips sets y[16s : 16s+16] = Σ_i a[i]·xs[s][i·ldx : i·ldx+16] for
// four strips with their own base (four KV blocks' worth of scores in one
// pass, eight FMA chains in flight). It reports false when there is no
// SIMD kernel; the caller then goes block by block.
func vecMatStrips(y, a []float32, xs *[4][]float32, rows, ldx int) bool {
	if !haveFMA {
		return false
	}
	_ = y[63]
	_ = a[rows-1]
	for _, x := range xs {
		_ = x[(rows-1)*ldx+15]
	}
	vecMat4x16(&y[0], &a[0], &xs[0][0], &xs[1][0], &xs[2][0], &xs[3][0], rows, ldx)
	return true
}
