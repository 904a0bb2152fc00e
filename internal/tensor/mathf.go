package tensor

import "math"

// Fast f32 transcendental functions for the elementwise kernels. They are
// within a few ulp of the float64 results (tested in ops_test.go), which
// is well inside the 1e-5 relative parity bar against PyTorch, and several
// times faster than converting to float64 and calling package math.

const (
	expHi = 88.3762626647949
	expLo = -87.3365447504019
	log2e = 1.44269504088896341
	ln2Hi = 0.693359375
	ln2Lo = -2.12194440e-4
	expP0 = 1.9875691500e-4
	expP1 = 1.3981999507e-3
	expP2 = 8.3334519073e-3
	expP3 = 4.1665795894e-2
	expP4 = 1.6666665459e-1
	expP5 = 5.0000001201e-1

	roundMagic float32 = 12582912 // 1.5·2²³
)

// Expf returns e^x in float32: range reduction x = n·ln2 + r, |r| ≤ ln2/2,
// then a degree-6 minimax polynomial for e^r (Cephes expf coefficients) and
// an exponent-field scale by 2^n.
func Expf(x float32) float32 {
	if x > expHi {
		return float32(math.Inf(1))
	}
	if x < expLo {
		if x != x { // NaN
			return x
		}
		return float32(math.Exp(float64(x))) // subnormal range: rare, exact path
	}
	// Round x·log2(e) to the nearest integer by adding and subtracting
	// 1.5·2²³ (float32 arithmetic drops the fraction), avoiding math.Floor.
	n := (x*log2e + roundMagic) - roundMagic
	r := x - n*ln2Hi
	r -= n * ln2Lo
	p := ((((expP0*r+expP1)*r+expP2)*r+expP3)*r+expP4)*r + expP5
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// Tanhf returns tanh(x) in float32 as the odd rational minimax
// approximation x·P(x²)/Q(x²) on |x| ≤ 7.905 (degrees 13/6, the
// coefficients Eigen uses for its float tanh), ±1 beyond. No exp, no
// branches in the common path: GELU's hot loop spends most of its time here.
func Tanhf(x float32) float32 {
	const clampAt = 7.90531110763549805
	if x > clampAt {
		return 1
	}
	if x < -clampAt {
		return -1
	}
	if x > -0.0004 && x < 0.0004 {
		return x
	}
	x2 := x * x
	p := float32(-2.76076847742355e-16)
	p = p*x2 + 2.00018790482477e-13
	p = p*x2 - 8.60467152213735e-11
	p = p*x2 + 5.12229709037114e-08
	p = p*x2 + 1.48572235717979e-05
	p = p*x2 + 6.37261928875436e-04
	p = p*x2 + 4.89352455891786e-03
	q := float32(1.19825839466702e-06)
	q = q*x2 + 1.18534705686654e-04
	q = q*x2 + 2.26843463243900e-03
	q = q*x2 + 4.89352518554385e-03
	return x * p / q
}

// Sigmoidf returns 1/(1+e^{−x}) in float32.
func Sigmoidf(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + Expf(-x))
	}
	e := Expf(x)
	return e / (1 + e)
}

// Logf returns ln(x) in float32 (via float64; log is not on a hot path).
func Logf(x float32) float32 { return float32(math.Log(float64(x))) }
