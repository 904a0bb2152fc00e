//go:build !amd64

package gemm

// transpose8Strip has no assembly here; no kernel on this platform sets
// asmPack, so it is never called.
func transpose8Strip(src *float32, lds int, dst *float32, ldd int, n int) {
	panic("gemm: transpose8Strip called without an assembly implementation")
}
