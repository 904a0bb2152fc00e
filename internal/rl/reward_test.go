package rl

import (
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

func TestShapeRewards(t *testing.T) {
	mask := rightPadMask(4, 4, 2, 0)
	kl := tensor.FromSlice([]float32{1, 2, 3, 4, 1, 1, 9, 9, 5, 5, 5, 5}, 3, 4)
	rewards := []float32{3, -20, 7}
	t.Run("RewardAtLastValidToken", func(t *testing.T) {
		got := ShapeRewards(rewards, nil, mask, 0.5, Range{})
		want := []float32{0, 0, 0, 3, 0, -20, 0, 0, 0, 0, 0, 0}
		for i := range want {
			if got.Data[i] != want[i] {
				t.Fatalf("got %v, want %v", got.Data, want)
			}
		}
	})
	t.Run("KLOnEveryValidToken", func(t *testing.T) {
		got := ShapeRewards(rewards, kl, mask, 0.5, Range{-10, 10})
		want := []float32{-0.5, -1, -1.5, 3 - 2, -0.5, -10 - 0.5, 0, 0, 0, 0, 0, 0}
		for i := range want {
			if math.Abs(float64(got.Data[i]-want[i])) > 1e-6 {
				t.Fatalf("got %v, want %v", got.Data, want)
			}
		}
	})
	t.Run("NonPositiveCoefDisablesKL", func(t *testing.T) {
		a := ShapeRewards(rewards, kl, mask, -1, Range{})
		b := ShapeRewards(rewards, nil, mask, 0, Range{})
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("β = −1 gave %v, want %v", a.Data, b.Data)
			}
		}
	})
}

func TestRewardNorm(t *testing.T) {
	n := RewardNorm{Mean: 1, Std: 2}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := n.Apply([]float32{1, 5, -3}); got[0] != 0 || got[1] != 2 || got[2] != -2 {
		t.Fatalf("Apply = %v", got)
	}
	for _, bad := range []RewardNorm{{Std: 0}, {Std: -1}, {Mean: math.NaN(), Std: 1}, {Std: math.Inf(1)}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

func TestLengthPenalty(t *testing.T) {
	// max_new 20, buffer 8: no penalty up to 12 tokens, linear to −factor at 20, capped beyond.
	cases := []struct {
		length int
		want   float64
	}{{5, 0}, {12, 0}, {13, -0.125}, {16, -0.5}, {20, -1}, {30, -1}}
	for _, c := range cases {
		if got := OverlongPenalty(c.length, 20, 8, 1); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("length %d: penalty %v, want %v", c.length, got, c.want)
		}
	}
	if got := OverlongPenalty(100, 20, 0, 1); got != 0 {
		t.Errorf("buffer 0 should disable the penalty, got %v", got)
	}
	p := LengthPenalty{OverlongBufferLen: 8, OverlongFactor: 1, StopProperly: true, StopProperlyCoef: 0}
	out, over, cut := p.Apply([]float32{1, 1, 1}, []int{5, 16, 20}, []bool{false, false, true}, 20)
	if out[0] != 1 || out[1] != 0.5 || out[2] != 0 || over != 2 || cut != 1 {
		t.Errorf("Apply = %v (overlong %d, truncated %d)", out, over, cut)
	}
	if err := (LengthPenalty{OverlongBufferLen: 30}).Validate(20); err == nil {
		t.Error("a buffer longer than max_new_tokens validated")
	}
	if err := (LengthPenalty{StopProperly: true, StopProperlyCoef: 1.5}).Validate(20); err == nil {
		t.Error("stop-properly coefficient 1.5 validated")
	}
}

func TestDynamicFilter_Keep(t *testing.T) {
	f := DefaultDynamicFilter()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		scores            []float32
		keep, keepUniform bool
	}{
		{[]float32{0, 0, 0, 0}, false, false},   // all wrong
		{[]float32{1, 1, 1, 1}, false, false},   // all right
		{[]float32{0, 1, 0, 0}, true, true},     // informative
		{[]float32{0.5, 0.5, 0.5}, false, true}, // uniform inside the range: only OpenRLHF keeps it
		{[]float32{1, 1, 1.5, 1}, false, false}, // mean outside the range
		{nil, false, false},
	}
	for _, c := range cases {
		if got := f.Keep(c.scores); got != c.keep {
			t.Errorf("Keep(%v) = %v, want %v", c.scores, got, c.keep)
		}
		g := f
		g.KeepUniform = true
		if got := g.Keep(c.scores); got != c.keepUniform {
			t.Errorf("KeepUniform: Keep(%v) = %v, want %v", c.scores, got, c.keepUniform)
		}
	}
	if (DynamicFilter{Low: 1, High: 1}).Validate() == nil {
		t.Error("an empty range validated")
	}
}
