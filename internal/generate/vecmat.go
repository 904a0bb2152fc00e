package generate

import "math"

// vecMatGo is the portable vecMat: y[j] = y[j] + Σ_i a[i]·x[i·ldx+j] for
// j < len(y), i < len(a), one chain per j in increasing i. It rounds like
// the gemm package's portable kernel on the same platform (the compiler
// fuses a·b+c into FMA where that kernel's loop gets fused too).
func vecMatGo(y, a, x []float32, ldx int) {
	n := len(y)
	for i, ai := range a {
		row := x[i*ldx : i*ldx+n]
		for j, v := range row {
			y[j] += ai * v
		}
	}
}

// vecMatFMA is vecMatGo with every step an explicit fused multiply-add,
// as the assembly kernels do; amd64 uses it for the columns left over
// after the SIMD chunks.
func vecMatFMA(y, a, x []float32, ldx int) {
	n := len(y)
	for i, ai := range a {
		row := x[i*ldx : i*ldx+n]
		for j, v := range row {
			y[j] = fma32(ai, v, y[j])
		}
	}
}

// fma32 is a·b + c rounded once (through float64: a·b is exact there; the
// double rounding that remains is rare enough for a tail path).
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}
