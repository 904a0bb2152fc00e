package tensor

import (
	"math"
	"testing"
)

// TestGELU_SIMDTwin compares the assembly GELU kernel with its scalar twin
// (and both with float64 math) on odd lengths and the clamp region.
func TestGELU_SIMDTwin(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 63, 1000, 4099} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%997)/997*24 - 12 // covers |z| > 7.9 (clamp) and 0
		}
		x[0] = 0
		y, th := make([]float32, n), make([]float32, n)
		ys, ths := make([]float32, n), make([]float32, n)
		if done := geluForwardSIMD(x, y, th); simdElementwise && n >= 8 && done == 0 {
			t.Fatalf("n=%d: the SIMD GELU kernel did nothing", n)
		}
		geluForward(x, y, th)
		geluScalar(x, ys, ths, 0)
		for i, v := range x {
			want := 0.5 * float64(v) * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(float64(v)+0.044715*math.Pow(float64(v), 3))))
			if d := math.Abs(float64(y[i]) - float64(ys[i])); d > 1e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("n=%d x=%v: simd %v, scalar %v", n, v, y[i], ys[i])
			}
			if d := math.Abs(float64(y[i]) - want); d > 2e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("n=%d x=%v: got %v, float64 %v", n, v, y[i], want)
			}
			if math.Abs(float64(th[i]-ths[i])) > 1e-6 {
				t.Fatalf("n=%d x=%v: tanh simd %v, scalar %v", n, v, th[i], ths[i])
			}
		}
	}
}

// TestExpShift_SIMDTwin compares the assembly exp kernel with Expf, on odd
// lengths, with −Inf (masked) entries that must give exact zeros.
func TestExpShift_SIMDTwin(t *testing.T) {
	for _, n := range []int{1, 8, 13, 64, 515} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%181)/181*100 - 90
		}
		x[n/2] = float32(math.Inf(-1))
		y, ys := make([]float32, n), make([]float32, n)
		if done, _ := expShiftSIMD(x, y, 3); simdElementwise && n >= 8 && done == 0 {
			t.Fatalf("n=%d: the SIMD exp kernel did nothing", n)
		}
		s := expShift(x, y, 3)
		ss := expShiftScalar(x, ys, 3, 0, 0)
		for i := range x {
			want := math.Exp(float64(x[i] - 3))                           // the f32 difference is the kernel's input
			if d := math.Abs(float64(y[i]) - want); d > 4e-7*want+2e-38 { // below e^−87.3 flushes to 0
				t.Fatalf("n=%d x=%v: got %v, want %v (scalar %v)", n, x[i], y[i], want, ys[i])
			}
		}
		if y[n/2] != 0 {
			t.Fatalf("exp(−Inf) = %v, want 0", y[n/2])
		}
		if d := math.Abs(float64(s - ss)); d > 1e-5*float64(ss)+1e-37 {
			t.Fatalf("n=%d: sum %v, scalar sum %v", n, s, ss)
		}
		if s2 := expShift(x, nil, 3); s2 != s {
			t.Fatalf("sum without store %v differs from %v", s2, s)
		}
	}
}
