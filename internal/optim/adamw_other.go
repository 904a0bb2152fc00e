//go:build !amd64

package optim

// haveUpdateSIMD says updateSIMD has a kernel.
const haveUpdateSIMD = false

// updateSIMD: no vector kernel on this architecture.
func updateSIMD(w, g, m, v []float32, k Coeffs) int { return 0 }
