//go:build amd64

package tensor

//go:noescape
func addToAVX2(dst, src *float32, n int)

// haveAddToSIMD says addToSIMD has a kernel (AVX2, as the GELU kernel).
var haveAddToSIMD = haveGELUAVX2

// addToSIMD does dst[i] += src[i] over the longest multiple-of-8 prefix
// with AVX2 and returns its length (0 without AVX2). A vector add rounds
// each lane as the scalar add does, so the bits are the scalar twin's.
func addToSIMD(dst, src []float32) int {
	n := min(len(dst), len(src)) &^ 7
	if !haveAddToSIMD || n == 0 {
		return 0
	}
	addToAVX2(&dst[0], &src[0], n)
	return n
}

//go:noescape
func geluBackwardAVX2(x, th, dy, dx *float32, n int, overwrite int, k *[5]float32)

// geluBackwardSIMD does geluBackwardScalar over the longest multiple-of-8
// prefix with AVX2 (same operations, order and roundings) and returns its
// length (0 without AVX2).
func geluBackwardSIMD(x, th, dy, dx []float32, overwrite bool) int {
	n := len(x) &^ 7
	if !haveAddToSIMD || n == 0 {
		return 0
	}
	_, _, _ = th[n-1], dy[n-1], dx[n-1]
	k := [5]float32{0.5, 1, geluC, 3 * geluA}
	ow := 0
	if overwrite {
		ow = 1
	}
	geluBackwardAVX2(&x[0], &th[0], &dy[0], &dx[0], n, ow, &k)
	return n
}
