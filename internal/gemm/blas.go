package gemm

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/gorlhf/gorlhf/internal/par"
	"golang.org/x/sys/cpu"
)

// CBLAS enum values (cblas.h): row-major storage and the transpose flags.
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// blasLib is a system BLAS opened at run time. sgemm is cblas_sgemm; the
// thread setter is optional (OpenBLAS, MKL and BLIS have one).
type blasLib struct {
	short      string // "openblas", "mkl", "blis", "accelerate" or "blas"
	path       string // the file that was opened
	detail     string // e.g. "OpenBLAS core SkylakeX"
	sgemm      func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	setThreads func(n int)
	threads    atomic.Int64 // thread count last given to setThreads
}

var (
	blasOnce   sync.Once
	blasLoaded *blasLib
	blasWhy    string // why no library was loaded
)

// loadBLAS opens the first usable system BLAS once per process.
func loadBLAS() (*blasLib, string) {
	blasOnce.Do(func() { blasLoaded, blasWhy = openBLAS() })
	return blasLoaded, blasWhy
}

// blasKernel returns the BLAS kernel, or nil when no library was found.
func blasKernel() Kernel {
	lib, _ := loadBLAS()
	if lib == nil {
		return nil
	}
	return &blasKernelT{lib: lib}
}

// blasStatus says which library was found, or why none was.
func blasStatus() string {
	lib, why := loadBLAS()
	if lib == nil {
		return "blas: absent (" + why + ")"
	}
	if lib.detail != "" {
		return "blas: " + lib.path + " found (" + lib.detail + ")"
	}
	return "blas: " + lib.path + " found"
}

// blasDetail names the file the BLAS kernel uses and, when known, the
// library's own kernel choice ("" if no library was found).
func blasDetail() string {
	lib, _ := loadBLAS()
	switch {
	case lib == nil:
		return ""
	case lib.detail != "":
		return lib.path + ", " + lib.detail
	}
	return lib.path
}

// blasKernelT calls cblas_sgemm. The library runs its own threads, so
// SgemmSerial (called from goroutines that are already parallel) uses the
// best pure kernel instead.
type blasKernelT struct{ lib *blasLib }

func (k *blasKernelT) Name() string { return "blas:" + k.lib.short }

func (k *blasKernelT) Sgemm(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(k.Name(), transA, transB, m, n, kk, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if kk == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if !fitsInt32(m, n, kk, lda, ldb, ldc) {
		bestPure().Sgemm(transA, transB, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// The library runs single-threaded and we split C across par's workers:
	// OpenBLAS's own pool busy-waits between calls and steals the cores from
	// the Go kernels that run between GEMMs (measured: 1.4× vs 1.7× PyTorch
	// on the bench step). Splitting by rows (or columns for short C) keeps
	// every element's sum in one call: deterministic per thread count.
	k.lib.useThreads(1)
	call := func(m, n int, a, b, c []float32) {
		k.lib.sgemm(cblasRowMajor, cblasOp(transA), cblasOp(transB), int32(m), int32(n), int32(kk),
			alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &c[0], int32(ldc))
	}
	if m >= n || m >= 256 {
		par.For(m, blasGrain(n, kk), func(lo, hi int) {
			aOff := lo * lda
			if transA {
				aOff = lo
			}
			call(hi-lo, n, a[aOff:], b, c[lo*ldc:])
		})
		return
	}
	par.For(n, blasGrain(m, kk), func(lo, hi int) {
		bOff := lo
		if transB {
			bOff = lo * ldb
		}
		call(m, hi-lo, a, b[bOff:], c[lo:])
	})
}

// blasGrain is the fewest rows (or columns) worth a goroutine: about 2M
// multiply-adds, so small products stay in one call.
func blasGrain(other, k int) int { return max(16, (1<<21)/max(1, other*k)) }

func (k *blasKernelT) SgemmSerial(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	bestPure().SgemmSerial(transA, transB, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc)
}

// useThreads tells the library to use n threads when that changed.
func (l *blasLib) useThreads(n int) {
	if l.setThreads != nil && l.threads.Load() != int64(n) {
		l.setThreads(n)
		l.threads.Store(int64(n))
	}
}

func cblasOp(t bool) int32 {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

func fitsInt32(xs ...int) bool {
	for _, x := range xs {
		if x > math.MaxInt32 {
			return false
		}
	}
	return true
}

// bestPure is the fastest kernel that does not need a system library.
func bestPure() Kernel {
	ks := simdKernels()
	if len(ks) == 0 {
		return newGoKernel()
	}
	return ks[len(ks)-1]
}

// OpenBLASCore returns the OpenBLAS kernel family this CPU can run
// ("SkylakeX" with AVX-512F/BW/DQ/VL, "Haswell" with AVX2+FMA, else ""),
// for the command to put in OPENBLAS_CORETYPE before the library is
// opened. A DYNAMIC_ARCH OpenBLAS 0.3.21 (Debian 12) does not know recent
// CPUs (e.g. Intel family 6 model 207) and falls back to its SSE3
// "Prescott" kernels: 25 GFLOP/s on a core where its SkylakeX kernels reach
// over 80. The package itself reads and writes no environment variables.
func OpenBLASCore() string {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL:
		return "SkylakeX"
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return "Haswell"
	}
	return ""
}
