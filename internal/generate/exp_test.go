package generate

import (
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestExpShift checks the vectorised exponential against tensor.Expf bit
// for bit: random values, the underflow range (fixed up in Go), NaN,
// exact zero, and lengths with and without a tail.
func TestExpShift(t *testing.T) {
	r := tt.Rand(5)
	for _, n := range []int{1, 7, 8, 9, 64, 1001} {
		src := tt.Uniform(r, -95, 5, n).Data
		if n > 3 {
			src[0], src[1], src[2] = float32(math.NaN()), 0, -87.33
		}
		for _, m := range []float32{0, 3.5, -2} {
			dst := make([]float32, n)
			expShift(dst, src, m)
			for j, v := range src {
				want := tensor.Expf(v - m)
				if math.Float32bits(dst[j]) != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(dst[j]))) {
					t.Fatalf("n %d m %g: exp(%g) = %g, tensor.Expf %g", n, m, v-m, dst[j], want)
				}
			}
		}
	}
}

func BenchmarkExpShift(b *testing.B) {
	src := tt.Uniform(tt.Rand(1), -20, 0, 512).Data
	dst := make([]float32, 512)
	for i := 0; i < b.N; i++ {
		expShift(dst, src, 0)
	}
}
