package generate

import "golang.org/x/sys/cpu"

// haveFMA says whether the AVX2+FMA kernels of vecmat_amd64.s can run
// (x/sys/cpu reports AVX only when the OS saves the registers).
var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func vecMat32(y, a, x *float32, rows, ldx int)

//go:noescape
func vecMat8(y, a, x *float32, rows, ldx int)

// vecMat does y[0:n] += Σ_{i<rows} a[i]·x[i·ldx : i·ldx+n]: a row vector
// times a strided matrix, the one primitive paged attention needs (scores
// against transposed keys, and probabilities times values). Columns go to
// the assembly kernels in chunks of 32 and 8; the rest run in Go.
func vecMat(y, a, x []float32, rows, n, ldx int) {
	if rows == 0 || n == 0 {
		return
	}
	_ = y[n-1]
	_ = a[rows-1]
	_ = x[(rows-1)*ldx+n-1]
	j := 0
	if haveFMA {
		for ; j+32 <= n; j += 32 {
			vecMat32(&y[j], &a[0], &x[j], rows, ldx)
		}
		for ; j+8 <= n; j += 8 {
			vecMat8(&y[j], &a[0], &x[j], rows, ldx)
		}
	}
	if j < n {
		vecMatGo(y[j:n], a[:rows], x[j:], ldx)
	}
}
