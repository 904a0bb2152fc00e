//go:build !((linux || darwin) && (amd64 || arm64)) || noblas

package gemm

import "runtime"

// openBLAS reports why no system BLAS is used: the platform has no
// run-time loader wired up, or the binary was built with -tags noblas (which
// drops purego, so a CGO_ENABLED=0 Linux binary is fully static).
func openBLAS() (*blasLib, string) {
	if noblasTag {
		return nil, "built with -tags noblas"
	}
	return nil, "run-time loading is not supported on " + runtime.GOOS + "/" + runtime.GOARCH
}
