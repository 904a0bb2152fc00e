package half

import (
	"math/rand/v2"
	"testing"
)

// The AVX2 kernels (what a CPU without AVX-512 runs) against the naive
// twin, on this machine when it has AVX2.
func TestMulAVX2MatchesRef(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2+FMA+F16C on this CPU: the AVX2 kernels cannot run")
	}
	save := haveAVX512
	haveAVX512 = false
	defer func() { haveAVX512 = save }()
	if ISA() != "avx2" {
		t.Fatalf("ISA() = %s with AVX-512 off", ISA())
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, dt := range []DType{BF16, F16, F32} {
		for _, s := range [][3]int{{1, 9, 70}, {4, 31, 64}, {7, 64, 200}} {
			n, in, out := s[0], s[1], s[2]
			m := FromOutIn(dt, randSlice(r, out*in), out, in)
			x := randSlice(r, n*in)
			want, got := make([]float32, n*out), make([]float32, n*out)
			mulRef(want, x, n, m)
			Mul(got, x, n, m)
			checkClose(t, dt.String(), got, want, absScale(x, n, m))
		}
	}
}
