package tensor

//go:generate go run gen_neon.go

// expShift writes y[i] = e^(x[i] − shift) (skipped when y is nil) and
// returns Σ_i e^(x[i] − shift): SIMD for the bulk, Expf for the tail. The
// summation order is fixed, so results are deterministic.
func expShift(x, y []float32, shift float32) float32 {
	i, s := expShiftSIMD(x, y, shift)
	return expShiftScalar(x, y, shift, i, s)
}

// expShiftScalar continues expShift in pure Go from element i with the
// partial sum s; from (0, 0) it is the twin tests compare the SIMD kernel
// with.
func expShiftScalar(x, y []float32, shift float32, i int, s float32) float32 {
	for ; i < len(x); i++ {
		e := Expf(x[i] - shift)
		if y != nil {
			y[i] = e
		}
		s += e
	}
	return s
}
