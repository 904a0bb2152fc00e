package tensor

import (
	"math"
	"runtime"
	"testing"
)

// TestAddTo_SIMDTwin: addTo (the vector kernel for the bulk) gives the bits
// of its scalar twin on every length around the kernel's 8- and 32-float
// steps, at unaligned offsets, with infinities, NaN and signed zeros.
func TestAddTo_SIMDTwin(t *testing.T) {
	r := NewRand(3)
	for n := 0; n <= 75; n++ {
		for off := range 3 {
			src := make([]float32, n+off)
			base := make([]float32, n+off)
			for i := range src {
				src[i], base[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			if n > 5 {
				src[off+1], base[off+2] = float32(math.Inf(1)), float32(math.NaN())
				src[off+3], base[off+3] = float32(math.Copysign(0, -1)), 0
			}
			got, want := append([]float32(nil), base...), append([]float32(nil), base...)
			if k := addToSIMD(got[off:off+n], src[off:off+n]); haveAddToSIMD && k < n&^7 {
				t.Fatalf("n=%d: the SIMD kernel did %d elements, want at least %d", n, k, n&^7)
			}
			got = append([]float32(nil), base...)
			addTo(got[off:off+n], src[off:off+n])
			addToScalar(want[off:off+n], src[off:off+n], 0)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d off=%d element %d: %v, scalar %v", n, off, i, got[i], want[i])
				}
			}
		}
	}
}

// TestGELUBackward_SIMDTwin: the vector GELU backward gives the bits of its
// scalar twin, storing and accumulating, on lengths around its 8-float step.
func TestGELUBackward_SIMDTwin(t *testing.T) {
	r := NewRand(4)
	for n := 0; n <= 41; n++ {
		x, th, y, dy := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], dy[i] = float32(r.NormFloat64()*4), float32(r.NormFloat64())
		}
		geluForward(x, y, th)
		for _, overwrite := range []bool{false, true} {
			got, want := make([]float32, n), make([]float32, n)
			for i := range got {
				got[i] = float32(r.NormFloat64())
				want[i] = got[i]
			}
			done := geluBackwardSIMD(x, th, dy, got, overwrite)
			if haveAddToSIMD && runtime.GOARCH == "amd64" && done != n&^7 {
				t.Fatalf("n=%d: the SIMD kernel did %d elements", n, done)
			}
			geluBackwardScalar(x, th, dy, got, overwrite, done)
			geluBackwardScalar(x, th, dy, want, overwrite, 0)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d overwrite=%v element %d (x=%v): %v, scalar %v", n, overwrite, i, x[i], got[i], want[i])
				}
			}
		}
	}
}
