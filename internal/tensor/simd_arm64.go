package tensor

// The NEON kernels (simd_neon_arm64.s, written by gen_neon.go) are the arm64
// twins of the AVX2 exp and GELU kernels. Advanced SIMD is part of every
// arm64 CPU that Go runs on, so there is no feature bit to test.

// simdElementwise says expShiftSIMD and geluForwardSIMD have a kernel.
const simdElementwise = true

// expShiftSIMD does the longest multiple-of-4 prefix of x: y[i] = e^(x[i] −
// shift) (stored only when y != nil) and returns the prefix length and Σ.
func expShiftSIMD(x, y []float32, shift float32) (int, float32) {
	n := len(x) &^ 3
	if n == 0 {
		return 0, 0
	}
	if y == nil {
		return n, expShiftNEON(&x[0], &x[0], n, 0, shift)
	}
	_ = y[n-1]
	return n, expShiftNEON(&x[0], &y[0], n, 1, shift)
}

// geluForwardSIMD handles the longest multiple-of-4 prefix of x with the
// NEON kernel and returns how many elements it did.
func geluForwardSIMD(x, y, th []float32) int {
	n := len(x) &^ 3
	if n == 0 {
		return 0
	}
	_, _ = y[n-1], th[n-1]
	geluForwardNEON(&x[0], &y[0], &th[0], n)
	return n
}

// haveAddToSIMD says addToSIMD has a kernel.
const haveAddToSIMD = true

// addToSIMD does dst[i] += src[i] over the longest multiple-of-4 prefix
// with NEON and returns its length.
func addToSIMD(dst, src []float32) int {
	n := min(len(dst), len(src)) &^ 3
	if n == 0 {
		return 0
	}
	addToNEON(&dst[0], &src[0], n)
	return n
}

// geluBackwardSIMD: no NEON kernel yet (Go fuses the scalar twin's
// multiply-adds on arm64, so a vector twin must match its fusions).
func geluBackwardSIMD(x, th, dy, dx []float32, overwrite bool) int { return 0 }
