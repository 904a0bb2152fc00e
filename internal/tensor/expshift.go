package tensor

// useScalarExp forces the pure-Go exp loops (tests compare them with SIMD).
var useScalarExp = false

// expShift writes y[i] = e^(x[i] − shift) (skipped when y is nil) and
// returns Σ_i e^(x[i] − shift): SIMD for the bulk, Expf for the tail. The
// summation order is fixed, so results are deterministic.
func expShift(x, y []float32, shift float32) float32 {
	i, s := expShiftSIMD(x, y, shift)
	for ; i < len(x); i++ {
		e := Expf(x[i] - shift)
		if y != nil {
			y[i] = e
		}
		s += e
	}
	return s
}
