package half

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Every 16-bit value widens and rounds back to itself (NaNs to a NaN).
func TestRoundTripAll(t *testing.T) {
	for _, dt := range []DType{BF16, F16} {
		for h := 0; h < 1<<16; h++ {
			f := dt.ToF32(uint16(h))
			back := dt.FromF32(f)
			if f != f {
				if g := dt.ToF32(back); g == g {
					t.Fatalf("%v: NaN %#04x came back as %#04x (%v)", dt, h, back, g)
				}
				continue
			}
			if back != uint16(h) {
				t.Fatalf("%v: %#04x → %v → %#04x", dt, h, f, back)
			}
		}
	}
}

// Known values: the IEEE half extremes and bf16 rounding ties.
func TestKnownValues(t *testing.T) {
	cases := []struct {
		dt   DType
		f    float32
		want uint16
	}{
		{F16, 1, 0x3c00}, {F16, -2, 0xc000}, {F16, 65504, 0x7bff}, {F16, 65520, 0x7c00}, // 65520 rounds up to Inf
		{F16, 6.103515625e-05, 0x0400}, {F16, 5.960464477539063e-08, 0x0001}, // smallest normal, subnormal
		{F16, 2.9802322387695312e-08, 0x0000}, // half the smallest subnormal: tie to even (0)
		{F16, float32(math.Inf(-1)), 0xfc00},
		{BF16, 1, 0x3f80}, {BF16, math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{BF16, math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{BF16, math.Float32frombits(0x3f808001), 0x3f81},
	}
	for _, c := range cases {
		if got := c.dt.FromF32(c.f); got != c.want {
			t.Errorf("%v(%g) = %#04x, want %#04x", c.dt, c.f, got, c.want)
		}
	}
}

// Rounding picks the nearest representable neighbour of random f32s
// across the whole range.
func TestRoundsToNearest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dt := range []DType{BF16, F16} {
		for n := 0; n < 200000; n++ {
			f := math.Float32frombits(r.Uint32())
			if f != f || math.IsInf(float64(f), 0) {
				continue
			}
			if dt == F16 {
				f = float32(math.Ldexp(float64(r.Float32()*2-1), r.IntN(50)-30))
			}
			h := dt.FromF32(f)
			got := float64(dt.ToF32(h))
			if math.IsInf(got, 0) {
				continue
			}
			d := math.Abs(got - float64(f))
			for _, nb := range []uint16{h - 1, h + 1} {
				v := float64(dt.ToF32(nb))
				if nb&0x7fff == 0 && h&0x7fff != 0 { // stepping across zero flips the sign bit's meaning
					continue
				}
				if v == v && math.Abs(v-float64(f)) < d {
					t.Fatalf("%v(%g) = %#04x (%g), but %#04x (%g) is nearer", dt, f, h, got, nb, v)
				}
			}
		}
	}
}

func TestParseDType(t *testing.T) {
	for s, want := range map[string]DType{"": F32, "f32": F32, "bf16": BF16, "bfloat16": BF16, "f16": F16, "float16": F16, "half": F16} {
		if got, err := ParseDType(s); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParseDType("int8"); err == nil {
		t.Error("ParseDType(int8) succeeded")
	}
}
