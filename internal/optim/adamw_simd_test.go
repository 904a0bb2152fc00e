package optim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestUpdate_SIMDTwin: the vector AdamW kernel gives the bits of its
// scalar twin, with and without gradients (nil counts as zero), on lengths
// around its 8-float step, for first and late steps and with weight decay.
func TestUpdate_SIMDTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultConfig()
	for _, step := range []int{1, 2, 1000} {
		k := cfg.Coeffs(3e-4, step)
		k.Decay = 1 - 3e-4*0.1
		for n := 0; n <= 41; n++ {
			for _, withGrad := range []bool{true, false} {
				w, m, v := make([]float32, n), make([]float32, n), make([]float32, n)
				var g []float32
				if withGrad {
					g = make([]float32, n)
				}
				for i := range w {
					w[i], m[i], v[i] = float32(r.NormFloat64()), float32(r.NormFloat64()*1e-3), float32(r.Float64()*1e-5)
					if g != nil && i%5 != 0 {
						g[i] = float32(r.NormFloat64() * 1e-2)
					}
				}
				w2, m2, v2 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
				done := updateSIMD(w, g, m, v, k)
				if haveUpdateSIMD && done != n&^7 {
					t.Fatalf("n=%d: the SIMD kernel did %d elements", n, done)
				}
				updateScalar(w, g, m, v, k, done)
				updateScalar(w2, g, m2, v2, k, 0)
				for i := range w {
					if math.Float32bits(w[i]) != math.Float32bits(w2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) || math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
						t.Fatalf("step %d n=%d grad=%v element %d: w %v/%v m %v/%v v %v/%v (simd/scalar)", step, n, withGrad, i, w[i], w2[i], m[i], m2[i], v[i], v2[i])
					}
				}
			}
		}
	}
}
