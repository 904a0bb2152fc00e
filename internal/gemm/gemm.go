// Package gemm multiplies f32 matrices: C = alpha·op(A)·op(B) + beta·C.
//
// Matrix multiplication is where a CPU training step spends most of its
// time, so this package offers several interchangeable kernels behind one
// interface and picks the fastest one the machine supports:
//
//   - "ref": a naive triple loop, the twin every fast path is tested against;
//   - "go": portable, cache-blocked pure Go (packing plus a register-blocked
//     micro-kernel), used on every platform without SIMD support;
//   - "avx2" and "avx512": the same blocking with Go-assembly micro-kernels,
//     chosen at run time from the CPU's feature bits;
//   - "blas:<lib>": a system BLAS (OpenBLAS, MKL, BLIS, Accelerate) opened at
//     run time without cgo, so the binary stays static and still builds with
//     CGO_ENABLED=0 on machines that have no BLAS.
//
// All matrices are row-major. The pure kernels ("go", "avx2", "avx512") sum
// each element of C over k in a fixed order that does not depend on the
// thread count, so their results are bit-identical for any number of
// threads.
package gemm

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorlhf/gorlhf/internal/par"
)

// Kernel computes C = alpha·op(A)·op(B) + beta·C on row-major f32 matrices,
// op(X) = X or Xᵀ.
//
// C is m×n with row stride ldc; op(A) is m×k (A stored k×m with stride lda
// when transA); op(B) is k×n (B stored n×k with stride ldb when transB).
// beta == 0 means C is overwritten (its old contents, even NaN, are
// ignored). Bad shapes or strides are programmer errors and panic with a
// message naming them.
type Kernel interface {
	// Name is "ref", "go", "avx2", "avx512" or "blas:<lib>".
	Name() string
	// Sgemm may use up to par.Threads() goroutines.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// SgemmSerial is Sgemm on the calling goroutine only, for callers that
	// are already parallel (for example one attention head per worker).
	SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// EnvVar names the environment variable FromEnv reads.
const EnvVar = "GORLHF_GEMM"

// selected holds the kernel chosen with Select; nil means automatic.
var selected atomic.Pointer[Kernel]

var (
	availableOnce sync.Once
	availableList []Kernel
)

// Available returns every kernel usable on this machine, slowest first:
// ref and go always, avx2 and avx512 when the CPU has them, and blas when a
// system library was found.
func Available() []Kernel {
	availableOnce.Do(func() {
		availableList = []Kernel{refKernel{}, newGoKernel()}
		availableList = append(availableList, simdKernels()...)
		if bk := blasKernel(); bk != nil {
			availableList = append(availableList, bk)
		}
	})
	return append([]Kernel(nil), availableList...)
}

// Get returns the available kernel with the given name. "blas" matches any
// "blas:<lib>". The error lists the names that are available.
func Get(name string) (Kernel, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, k := range Available() {
		if k.Name() == name || (name == "blas" && strings.HasPrefix(k.Name(), "blas:")) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("gemm: kernel %q is not available here (available: %s)", name, strings.Join(availableNames(), ", "))
}

func availableNames() []string {
	var names []string
	for _, k := range Available() {
		names = append(names, k.Name())
	}
	return names
}

// Default returns the kernel set with Select, or else the fastest
// available one: blas, then avx512, then avx2, then go.
func Default() Kernel {
	if k := selected.Load(); k != nil {
		return *k
	}
	return auto()
}

// auto picks the fastest available kernel. Available lists kernels slowest
// first, so the last one wins.
func auto() Kernel {
	ks := Available()
	return ks[len(ks)-1]
}

// Select sets the kernel Default returns. "" or "auto" restores automatic
// choice. It is meant for start-up (the --gemm flag), before work begins.
func Select(name string) error {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || name == "auto" {
		selected.Store(nil)
		return nil
	}
	k, err := Get(name)
	if err != nil {
		return err
	}
	selected.Store(&k)
	return nil
}

// FromEnv applies the GORLHF_GEMM environment variable (ref, go, avx2,
// avx512, blas or auto) with Select. An unset variable leaves the choice
// alone. It is the only place this package reads the environment; the
// command calls it once at start-up.
func FromEnv() error {
	v, ok := os.LookupEnv(EnvVar)
	if !ok {
		return nil
	}
	if err := Select(v); err != nil {
		return fmt.Errorf("%s=%q: %w", EnvVar, v, err)
	}
	return nil
}

// Describe returns one line for start-up logs: the default kernel, the
// thread count, and whether a system BLAS was found (and if not, why).
func Describe() string {
	k := Default()
	var b strings.Builder
	fmt.Fprintf(&b, "gemm: %s", k.Name())
	if d := kernelDetail(k.Name()); d != "" {
		fmt.Fprintf(&b, " (%s)", d)
	}
	fmt.Fprintf(&b, ", threads=%d; %s", par.Threads(), blasStatus())
	return b.String()
}

// kernelDetail says what a kernel name stands for.
func kernelDetail(name string) string {
	switch {
	case name == "ref":
		return "naive reference loop"
	case name == "go":
		return "portable pure Go"
	case name == "avx2":
		return "AVX2+FMA"
	case name == "avx512":
		return "AVX-512F"
	case strings.HasPrefix(name, "blas:"):
		return blasDetail()
	}
	return ""
}
