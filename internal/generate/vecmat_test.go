package generate

import (
	"fmt"
	"slices"
	"testing"

	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestVecMat checks the assembly kernels (on amd64) against the Go twin on
// shapes that exercise every chunk size and tail: 32-, 8- and 1-column
// pieces, odd and even row counts, strides wider than the product.
func TestVecMat(t *testing.T) {
	r := tt.Rand(1)
	for _, rows := range []int{1, 2, 3, 4, 5, 8, 17, 64} {
		for _, n := range []int{1, 7, 8, 9, 16, 31, 32, 33, 40, 64, 72} {
			for _, pad := range []int{0, 5} {
				ldx := n + pad
				t.Run(fmt.Sprintf("rows%d_n%d_ld%d", rows, n, ldx), func(t *testing.T) {
					a := tt.Uniform(r, -1, 1, rows).Data
					x := tt.Uniform(r, -1, 1, rows*ldx).Data
					y0 := tt.Uniform(r, -1, 1, n+3).Data
					got, want := append([]float32(nil), y0...), append([]float32(nil), y0...)
					vecMat(got, a, x, rows, n, ldx)
					twin := vecMatGo
					if haveFMA {
						twin = vecMatFMA
					}
					twin(want[:n], a, x, ldx)
					if !slices.Equal(got, want) { // same chains, same rounding
						t.Fatalf("vecMat differs from its Go twin by %.3g", tt.MaxRelErr(got, want, 1))
					}
					for j := n; j < n+3; j++ {
						if got[j] != y0[j] {
							t.Fatalf("vecMat wrote past n: y[%d] changed", j)
						}
					}
				})
			}
		}
	}
}

func BenchmarkVecMat(b *testing.B) {
	r := tt.Rand(2)
	for _, c := range []struct{ rows, n int }{{64, 16}, {64, 32}, {32, 64}, {16, 8}} {
		a, x, y := tt.Uniform(r, -1, 1, c.rows).Data, tt.Uniform(r, -1, 1, c.rows*c.n).Data, make([]float32, c.n)
		b.Run(fmt.Sprintf("rows%d_n%d", c.rows, c.n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				vecMat(y, a, x, c.rows, c.n, c.n)
			}
			b.SetBytes(int64(4 * c.rows * c.n))
		})
	}
}

// TestVecMatStrips checks the four-strip score kernel against four
// single-strip products computed by the Go twin: same chains, same bits.
func TestVecMatStrips(t *testing.T) {
	if !haveFMA {
		t.Skip("no AVX2+FMA: attention goes block by block")
	}
	r := tt.Rand(3)
	for _, rows := range []int{1, 8, 64, 128} {
		for _, ldx := range []int{16, 32, 64} {
			a := tt.Uniform(r, -1, 1, rows).Data
			var xs [4][]float32
			for i := range xs {
				xs[i] = tt.Uniform(r, -1, 1, (rows-1)*ldx+16).Data
			}
			got := make([]float32, 64)
			if !vecMatStrips(got, a, &xs, rows, ldx) {
				t.Fatal("vecMatStrips refused with AVX2+FMA available")
			}
			for s, x := range xs {
				want := make([]float32, 16)
				vecMatFMA(want, a, x, ldx)
				if !slices.Equal(got[16*s:16*s+16], want) {
					t.Fatalf("rows %d ldx %d strip %d: %v, want %v", rows, ldx, s, got[16*s:16*s+16], want)
				}
			}
		}
	}
}
