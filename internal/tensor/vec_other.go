//go:build !amd64 && !arm64

package tensor

// haveAddToSIMD says addToSIMD has a kernel.
const haveAddToSIMD = false

// geluBackwardSIMD: no vector kernel on this architecture.
func geluBackwardSIMD(x, th, dy, dx []float32, overwrite bool) int { return 0 }

// addToSIMD: no vector kernel on this architecture; addTo's scalar loop
// does all of it.
func addToSIMD(dst, src []float32) int { return 0 }
