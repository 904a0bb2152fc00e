package gemm

import "runtime"

// The portable kernel: a register tile in plain Go. Sixteen scalar
// accumulators (4×4) fit the register file of arm64 and the other 32-register
// targets, where the compiler also fuses a*b+c into FMA. amd64 has only 15
// usable SSE registers, so there a 2×4 tile avoids spills (measured 4.4 vs
// 3.2 GFLOP/s per core); amd64 only uses this kernel without AVX2 anyway.
const (
	goMR = 4
	goNR = 4
)

func newGoKernel() Kernel {
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "386" {
		return &blocked{name: "go", mr: 2, nr: goNR, kc: 256, nc: 512, micro: wholeTiles(microGo2x4, 2, goNR)}
	}
	return &blocked{name: "go", mr: goMR, nr: goNR, kc: 256, nc: 512, micro: wholeTiles(microGo, goMR, goNR)}
}

// tileFunc computes a whole mr×nr tile (see microFunc).
type tileFunc func(kc int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32)

// wholeTiles adapts a whole-tile kernel to microFunc: ragged tiles are
// computed into a scratch tile and merged.
func wholeTiles(f tileFunc, mr, nr int) microFunc {
	return func(kc, rows, cols int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
		if rows == mr && cols == nr {
			f(kc, a, b, ldb, c, ldc, alpha, beta)
			return
		}
		var t [goMR * goNR]float32
		f(kc, a, b, ldb, t[:], nr, alpha, 0)
		mergeTile(c, ldc, t[:], nr, rows, cols, beta)
	}
}

// microGo is the pure Go micro-kernel for a 4×4 tile (see microFunc).
func microGo(kc int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
	a = a[:kc*goMR]
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	for p := range kc {
		av := a[p*goMR : p*goMR+4 : p*goMR+4]
		bv := b[p*ldb : p*ldb+4 : p*ldb+4]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		a0 := av[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := av[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := av[2]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := av[3]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	storeRow4(c[0*ldc:], alpha, beta, c00, c01, c02, c03)
	storeRow4(c[1*ldc:], alpha, beta, c10, c11, c12, c13)
	storeRow4(c[2*ldc:], alpha, beta, c20, c21, c22, c23)
	storeRow4(c[3*ldc:], alpha, beta, c30, c31, c32, c33)
}

// storeRow4 writes one row of a tile: c = alpha·acc + beta·c.
func storeRow4(c []float32, alpha, beta float32, x0, x1, x2, x3 float32) {
	c = c[:4]
	if beta == 0 {
		c[0], c[1], c[2], c[3] = alpha*x0, alpha*x1, alpha*x2, alpha*x3
		return
	}
	c[0] = alpha*x0 + beta*c[0]
	c[1] = alpha*x1 + beta*c[1]
	c[2] = alpha*x2 + beta*c[2]
	c[3] = alpha*x3 + beta*c[3]
}

// microGo2x4 is the pure Go micro-kernel for a 2×4 tile (see microFunc).
func microGo2x4(kc int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
	a = a[:kc*2]
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	for p := range kc {
		av := a[2*p : 2*p+2 : 2*p+2]
		bv := b[p*ldb : p*ldb+4 : p*ldb+4]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		a0 := av[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := av[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
	}
	storeRow4(c[0*ldc:], alpha, beta, c00, c01, c02, c03)
	storeRow4(c[1*ldc:], alpha, beta, c10, c11, c12, c13)
}
