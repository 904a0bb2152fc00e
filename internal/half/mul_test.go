package half

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gorlhf/gorlhf/internal/par"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// checkClose compares y with the reference within a few ulps of the sum
// of the terms' magnitudes (the SIMD tiles fuse every step exactly as
// mulRef, which rounds a·b+c once through float64: rarely twice).
func checkClose(t *testing.T, what string, got, want, scale []float32) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 4e-7*float64(scale[i])+1e-30 {
			t.Fatalf("%s: y[%d] = %v, want %v (|Σ| scale %v)", what, i, got[i], want[i], scale[i])
		}
	}
}

// absScale is Σ_i |x[r][i]·W[i][j]| for every output.
func absScale(x []float32, n int, m *Matrix) []float32 {
	s := make([]float32, n*m.Out)
	for r := 0; r < n; r++ {
		for j := 0; j < m.Out; j++ {
			for i := 0; i < m.In; i++ {
				s[r*m.Out+j] += float32(math.Abs(float64(x[r*m.In+i] * m.At(i, j))))
			}
		}
	}
	return s
}

// Mul (SIMD tiles, tails, and the portable path) equals the naive twin for
// shapes that exercise every tile kind and both thread counts.
func TestMulMatchesRef(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{{1, 1, 1}, {1, 7, 5}, {3, 33, 130}, {4, 64, 128}, {5, 17, 200}, {9, 40, 264}, {1, 512, 512}, {6, 96, 1376}}
	defer par.SetThreads(par.Threads())
	for _, dt := range []DType{BF16, F16, F32} {
		for _, simd := range []bool{true, false} {
			for _, th := range []int{1, 2} {
				for _, s := range shapes {
					n, in, out := s[0], s[1], s[2]
					name := fmt.Sprintf("%v/simd=%v/threads=%d/%dx%dx%d", dt, simd, th, n, in, out)
					par.SetThreads(th)
					useSIMD = simd
					w := randSlice(r, out*in)
					m := FromOutIn(dt, w, out, in)
					x := randSlice(r, n*in)
					want := make([]float32, n*out)
					mulRef(want, x, n, m)
					got := randSlice(r, n*out) // Mul overwrites
					Mul(got, x, n, m)
					checkClose(t, name, got, want, absScale(x, n, m))
				}
			}
		}
	}
	useSIMD = true
}

// FromOutIn transposes and rounds; FromInOut rounds in place.
func TestMatrixLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w := randSlice(r, 3*5) // [out=3, in=5]
	for _, dt := range []DType{BF16, F16, F32} {
		m := FromOutIn(dt, w, 3, 5)
		for i := 0; i < 5; i++ {
			for j := 0; j < 3; j++ {
				want := w[j*5+i]
				if dt != F32 {
					want = dt.ToF32(dt.FromF32(want))
				}
				if got := m.At(i, j); got != want {
					t.Fatalf("%v: At(%d,%d) = %v, want %v", dt, i, j, got, want)
				}
			}
		}
		m2 := FromInOut(dt, w, 5, 3)
		for k := range w {
			if got, want := m2.At(k/3, k%3), roundTo(dt, w[k]); got != want {
				t.Fatalf("%v: FromInOut[%d] = %v, want %v", dt, k, got, want)
			}
		}
	}
}

func roundTo(dt DType, f float32) float32 {
	if dt == F32 {
		return f
	}
	return dt.ToF32(dt.FromF32(f))
}

func BenchmarkMulSingleRow(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dt := range []DType{F32, BF16, F16} {
		m := FromOutIn(dt, randSlice(r, 1376*512), 1376, 512)
		x, y := randSlice(r, 512), make([]float32, 1376)
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(int64(m.Bytes()))
			for b.Loop() {
				Mul(y, x, 1, m)
			}
		})
	}
}
