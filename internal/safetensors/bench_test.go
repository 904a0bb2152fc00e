package safetensors

import (
	"path/filepath"
	"testing"
)

// benchFile writes a 16 Mi-element tensor (64 MiB as F32) once per dtype.
func benchFile(b *testing.B, dtype DType) string {
	b.Helper()
	data := make([]float32, 16<<20)
	for i := range data {
		data[i] = float32(i%1000) * 0.001
	}
	path := filepath.Join(b.TempDir(), "bench.safetensors")
	if err := Write(path, []Tensor{{Name: "w", Shape: []int{4096, 4096}, Data: data}}, dtype, nil); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpenFloat32 measures Open + Float32 + Close of one large tensor:
// go test -run '^$' -bench OpenFloat32 ./internal/safetensors/
func BenchmarkOpenFloat32(b *testing.B) {
	for _, dt := range []DType{F32, BF16} {
		b.Run(string(dt), func(b *testing.B) {
			path := benchFile(b, dt)
			b.SetBytes(int64(16<<20) * int64(dt.Size()))
			for b.Loop() {
				f, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := f.Float32("w"); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkWrite measures writing one 64 MiB F32 tensor, fsync included.
func BenchmarkWrite(b *testing.B) {
	data := make([]float32, 16<<20)
	dir := b.TempDir()
	b.SetBytes(int64(len(data)) * 4)
	for b.Loop() {
		if err := Write(filepath.Join(dir, "w.safetensors"), []Tensor{{Name: "w", Shape: []int{len(data)}, Data: data}}, F32, nil); err != nil {
			b.Fatal(err)
		}
	}
}
