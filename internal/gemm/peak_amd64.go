package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func fmaPeakAVX512(iters int)

//go:noescape
func fmaPeakAVX2(iters int)

// peakLoop returns the FMA loop for the widest unit this CPU has and the
// flops one iteration does (16 zmm × 16 lanes × 2, or 12 ymm × 8 × 2).
func peakLoop() (string, func(int), float64) {
	switch {
	case cpu.X86.HasAVX512F:
		return "avx512", fmaPeakAVX512, 16 * 16 * 2
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return "avx2", fmaPeakAVX2, 12 * 8 * 2
	}
	return "", nil, 0
}
