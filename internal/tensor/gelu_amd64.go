//go:build amd64

package tensor

import "golang.org/x/sys/cpu"

//go:noescape
func geluForwardAVX2(x, y, th *float32, n int)

// haveGELUAVX2 says the CPU runs the assembly GELU kernel.
var haveGELUAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// simdElementwise says expShiftSIMD and geluForwardSIMD have a kernel.
var simdElementwise = haveGELUAVX2

// geluForwardSIMD handles the longest multiple-of-8 prefix of x with the
// AVX2 kernel and returns how many elements it did (0 without AVX2).
func geluForwardSIMD(x, y, th []float32) int {
	n := len(x) &^ 7
	if !haveGELUAVX2 || n == 0 {
		return 0
	}
	geluForwardAVX2(&x[0], &y[0], &th[0], n)
	return n
}
