//go:build amd64

package optim

import "golang.org/x/sys/cpu"

//go:noescape
func updateAVX2(w, grad, m, v *float32, n int, k *[8]float32)

// haveUpdateSIMD says updateSIMD has a kernel.
var haveUpdateSIMD = cpu.X86.HasAVX2

// updateSIMD runs AdamW over the longest multiple-of-8 prefix with AVX2
// and returns its length (0 without AVX2). Each lane does updateScalar's
// operations in its order; VSQRTPS and VDIVPS round correctly, as the
// scalar float64 square root rounded to float32 and division do, so the
// bits are the twin's.
func updateSIMD(w, g, m, v []float32, k Coeffs) int {
	n := len(w) &^ 7
	if !haveUpdateSIMD || n == 0 {
		return 0
	}
	var gp *float32
	if g != nil {
		gp = &g[0]
	}
	kk := [8]float32{k.B1, 1 - k.B1, k.B2, 1 - k.B2, k.BC2Sqrt, k.Eps, k.Decay, k.StepSize}
	updateAVX2(&w[0], gp, &m[0], &v[0], n, &kk)
	return n
}
