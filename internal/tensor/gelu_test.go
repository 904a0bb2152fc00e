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
		geluForward(x, y, th)
		useScalarGELU = true
		geluForward(x, ys, ths)
		useScalarGELU = false
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
