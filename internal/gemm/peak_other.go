//go:build !amd64

package gemm

// peakLoop: no FMA probe on this architecture yet.
func peakLoop() (string, func(int), float64) { return "", nil, 0 }
