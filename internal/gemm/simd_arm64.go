package gemm

// The NEON register tile (kern_neon_arm64.s): 8 rows × 12 columns, 24 of
// the 32 128-bit V registers as accumulators, 2 for A and 3 for B. Each k
// step issues 24 FMLAs for 2 loads, so the FMA pipes, not the load ports,
// bound it.
const neonMR, neonNR = 8, 12

// kernNEON computes a whole 8×12 tile: C = alpha·Ap·B + beta·C, where Ap is
// packed (8 floats per k step), B has kc rows of 12 floats ldb floats
// apart, and beta == 0 means C is not read. kc must be at least 1.
//
//go:noescape
func kernNEON(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

// simdKernels returns the NEON kernel: Advanced SIMD is part of every arm64
// CPU that Go runs on (ARMv8-A makes it mandatory for general-purpose
// systems), so there is no feature bit to test.
func simdKernels() []Kernel {
	return []Kernel{&blocked{name: "neon", mr: neonMR, nr: neonNR, kc: 256, nc: 768, micro: microNEON}}
}

// microNEON runs the whole-tile kernel, bounds-checking the tile once so
// the assembly can trust its pointers; a ragged tile (rows < 8 or cols <
// 12) goes through a scratch tile on the stack. packA zero-pads missing
// rows and B panels are nr wide (packed ragged panels are zero-padded), so
// the full tile can always be computed.
func microNEON(kc, rows, cols int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
	_ = a[kc*neonMR-1]
	_ = b[(kc-1)*ldb+neonNR-1]
	_ = c[(rows-1)*ldc+cols-1]
	if rows == neonMR && cols == neonNR {
		kernNEON(kc, &a[0], &b[0], &c[0], ldb, ldc, alpha, beta)
		return
	}
	var t [neonMR * neonNR]float32
	kernNEON(kc, &a[0], &b[0], &t[0], ldb, neonNR, alpha, 0)
	mergeTile(c, ldc, t[:], neonNR, rows, cols, beta)
}
