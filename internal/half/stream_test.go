package half

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMulModel streams a 26M-parameter Llama's matrices (dim 512,
// hidden 1376, 8 layers, vocab 512) one row at a time: single-stream
// decode's weight traffic, far bigger than the caches.
func BenchmarkMulModel(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	shapes := [][2]int{{512, 512}, {512, 512}, {512, 512}, {512, 512}, {1376, 512}, {1376, 512}, {512, 1376}}
	for _, dt := range []DType{F32, BF16, F16} {
		var ms []*Matrix
		bytes := 0
		for l := 0; l < 8; l++ {
			for _, s := range shapes {
				m := FromOutIn(dt, randSlice(r, s[0]*s[1]), s[0], s[1])
				ms = append(ms, m)
				bytes += m.Bytes()
			}
		}
		x, y := randSlice(r, 1376), make([]float32, 1376)
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(int64(bytes))
			for b.Loop() {
				for _, m := range ms {
					Mul(y, x, 1, m)
				}
			}
		})
	}
}
