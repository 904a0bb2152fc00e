//go:build amd64

package tensor

//go:noescape
func expShiftAVX2(x, y *float32, n int, store int, shift float32) float32

// expShiftSIMD does the longest multiple-of-8 prefix of x: y[i] = e^(x[i] −
// shift) (stored only when y != nil) and returns the prefix length and Σ.
func expShiftSIMD(x, y []float32, shift float32) (int, float32) {
	n := len(x) &^ 7
	if !haveGELUAVX2 || n == 0 {
		return 0, 0
	}
	if y == nil {
		return n, expShiftAVX2(&x[0], &x[0], n, 0, shift)
	}
	return n, expShiftAVX2(&x[0], &y[0], n, 1, shift)
}
