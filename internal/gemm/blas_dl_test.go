//go:build (linux || darwin) && (amd64 || arm64) && !noblas

package gemm

import (
	"runtime"
	"strings"
	"testing"
)

func TestOpenOne_Missing(t *testing.T) {
	lib, why := openOne("/nonexistent/libgorlhf-no-such-blas.so")
	if lib != nil || why == "" {
		t.Fatalf("openOne(missing) = %v, %q; want nil and a reason", lib, why)
	}
}

func TestOpenOne_NoCBLAS(t *testing.T) {
	// libc opens fine but has no cblas_sgemm.
	if runtime.GOOS != "linux" {
		t.Skip("libc.so.6 is a Linux name")
	}
	lib, why := openOne("libc.so.6")
	if lib != nil || !strings.Contains(why, "cblas_sgemm") {
		t.Fatalf("openOne(libc) = %v, %q; want nil and a reason naming cblas_sgemm", lib, why)
	}
}
