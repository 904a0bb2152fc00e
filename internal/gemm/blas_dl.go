//go:build (linux || darwin) && (amd64 || arm64) && !noblas

package gemm

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// blasCandidates lists the libraries to try, best first. Bare names go
// through the dynamic loader's search path; the globs find OpenBLAS builds
// that only ship a versioned file name.
func blasCandidates() []string {
	if runtime.GOOS == "darwin" {
		return []string{"/System/Library/Frameworks/Accelerate.framework/Accelerate"}
	}
	names := []string{"libopenblas.so.0", "libopenblas.so"}
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib", "/opt/OpenBLAS/lib"} {
		for _, pat := range []string{"libopenblasp-r0*.so", "openblas-*/libopenblasp-r0*.so"} {
			m, _ := filepath.Glob(filepath.Join(dir, pat))
			names = append(names, m...)
		}
	}
	return append(names, "libmkl_rt.so", "libmkl_rt.so.2", "libblis.so.4", "libblas.so.3")
}

// openBLAS opens the first candidate that exports cblas_sgemm.
func openBLAS() (*blasLib, string) {
	tried := blasCandidates()
	var reasons []string
	for _, path := range tried {
		lib, err := openOne(path)
		if err == "" {
			return lib, ""
		}
		reasons = append(reasons, path+": "+err)
	}
	why := fmt.Sprintf("none of %d candidate libraries opened; install libopenblas0 for a faster GEMM", len(tried))
	if len(reasons) > 0 {
		why += "; " + reasons[0]
	}
	return nil, why
}

func openOne(path string) (*blasLib, string) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err.Error()
	}
	sym, err := purego.Dlsym(h, "cblas_sgemm")
	if err != nil {
		purego.Dlclose(h)
		return nil, "no cblas_sgemm"
	}
	lib := &blasLib{path: path, short: "blas"}
	purego.RegisterFunc(&lib.sgemm, sym)
	switch {
	case has(h, "openblas_set_num_threads"):
		lib.short = "openblas"
		var set func(int32)
		registerSym(&set, h, "openblas_set_num_threads")
		lib.setThreads = func(n int) { set(int32(n)) }
		if has(h, "openblas_get_corename") {
			var core func() string
			registerSym(&core, h, "openblas_get_corename")
			lib.detail = "OpenBLAS core " + core()
		}
	case has(h, "MKL_Set_Num_Threads"):
		lib.short = "mkl"
		var set func(int32)
		registerSym(&set, h, "MKL_Set_Num_Threads")
		lib.setThreads = func(n int) { set(int32(n)) }
	case has(h, "bli_thread_set_num_threads"):
		lib.short = "blis"
		var set func(int64) // dim_t
		registerSym(&set, h, "bli_thread_set_num_threads")
		lib.setThreads = func(n int) { set(int64(n)) }
	case strings.Contains(path, "Accelerate"):
		lib.short = "accelerate"
	}
	return lib, ""
}

func has(h uintptr, name string) bool {
	_, err := purego.Dlsym(h, name)
	return err == nil
}

func registerSym(fptr any, h uintptr, name string) {
	sym, err := purego.Dlsym(h, name)
	if err != nil {
		panic("gemm: " + name + " vanished after lookup: " + err.Error())
	}
	purego.RegisterFunc(fptr, sym)
}
