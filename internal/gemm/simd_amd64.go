package gemm

import "golang.org/x/sys/cpu"

//go:generate go run gen_asm.go

// Register tiles of the assembly micro-kernels (see gen_asm.go). The AVX-512
// tile keeps 28 of the 32 zmm registers as accumulators; the AVX2 tile 12 of
// the 16 ymm registers.
const (
	avx512MR, avx512NR = 14, 32
	avx2MR, avx2NR     = 6, 16
)

// transpose8Strip transposes n 8×8 blocks (transpose_amd64.s; needs AVX).
//
//go:noescape
func transpose8Strip(src *float32, lds int, dst *float32, ldd int, n int)

// simdKernels returns the assembly kernels this CPU (and OS) can run.
// x/sys/cpu only reports AVX and AVX-512 when the OS saves their registers.
func simdKernels() []Kernel {
	var ks []Kernel
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, &blocked{name: "avx2", mr: avx2MR, nr: avx2NR, kc: 256, nc: 1024, micro: microAVX2, asmPack: true, dot: dotAVX2, dotMaxM: dotMaxMAVX2})
	}
	if cpu.X86.HasAVX512F {
		ks = append(ks, &blocked{name: "avx512", mr: avx512MR, nr: avx512NR, kc: 256, nc: 1024, micro: microAVX512, asmPack: true, dot: dotAVX512, dotMaxM: dotMaxMAVX512})
	}
	return ks
}

// The wrappers bounds-check the whole tile once, so the assembly can trust
// its pointers.

// microAVX512 handles every tile shape in assembly: one kernel per row
// count, and column masks for ragged right edges.
func microAVX512(kc, rows, cols int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
	_ = a[kc*avx512MR-1]
	_ = b[(kc-1)*ldb+avx512NR-1]
	_ = c[(rows-1)*ldc+cols-1]
	kernAVX512Rows[rows](kc, &a[0], &b[0], &c[0], ldb, ldc, alpha, beta, cols)
}

// microAVX2 has a kernel per row count; a ragged right edge goes through a
// scratch tile on the stack.
func microAVX2(kc, rows, cols int, a, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
	_ = a[kc*avx2MR-1]
	_ = b[(kc-1)*ldb+avx2NR-1]
	_ = c[(rows-1)*ldc+cols-1]
	if cols == avx2NR {
		kernAVX2Rows[rows](kc, &a[0], &b[0], &c[0], ldb, ldc, alpha, beta)
		return
	}
	var t [avx2MR * avx2NR]float32
	kernAVX2Rows[rows](kc, &a[0], &b[0], &t[0], ldb, avx2NR, alpha, 0)
	mergeTile(c, ldc, t[:], avx2NR, rows, cols, beta)
}

func dotAVX512(k, rows, cols int, a []float32, lda int, w [4][]float32, c []float32, ldc int, alpha, beta float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = c[(rows-1)*ldc+cols-1]
	_, _, _, _ = w[0][k-1], w[1][k-1], w[2][k-1], w[3][k-1]
	dotAVX512Rows[rows](k, &a[0], lda, &w[0][0], &w[1][0], &w[2][0], &w[3][0], &c[0], ldc, alpha, beta, cols)
}

// dotAVX2 runs the 2-row AVX2 dot kernel on up to 4 rows of A.
func dotAVX2(k, rows, cols int, a []float32, lda int, w [4][]float32, c []float32, ldc int, alpha, beta float32) {
	_ = c[(rows-1)*ldc+cols-1]
	_, _, _, _ = w[0][k-1], w[1][k-1], w[2][k-1], w[3][k-1]
	for r0 := 0; r0 < rows; r0 += 2 {
		r := min(2, rows-r0)
		_ = a[(r0+r-1)*lda+k-1]
		dotAVX2Rows[r](k, &a[r0*lda], lda, &w[0][0], &w[1][0], &w[2][0], &w[3][0], &c[r0*ldc], ldc, alpha, beta, cols)
	}
}
