//go:build !amd64 && !arm64

package gemm

// simdKernels returns no SIMD kernels on platforms without an assembly
// micro-kernel; the portable "go" kernel covers them.
func simdKernels() []Kernel { return nil }
