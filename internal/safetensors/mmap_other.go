//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package safetensors

import "os"

// mapFile reads the whole file: platforms without a unix mmap fall back to a
// plain read, which costs one extra copy but behaves the same.
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	return readAll(f, size)
}
