package rl

import (
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

func TestKL(t *testing.T) {
	lp := tensor.FromSlice([]float32{-1, -2, -0.5, -3, -1, -20}, 2, 3)
	ref := tensor.FromSlice([]float32{-1, -1.5, -1, -2, -14, -1}, 2, 3)
	for _, est := range klEstimators {
		kl := KL(nil, lp, ref, est)
		for i, v := range kl.Data {
			x := float64(lp.Data[i] - ref.Data[i])
			var want float64
			switch est {
			case K1:
				want = x
			case K2:
				want = x * x / 2
			case K3:
				want = math.Exp(-x) - 1 + x
			}
			want = math.Min(math.Max(want, -10), 10)
			if math.Abs(float64(v)-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("%s[%d] (x=%v) = %v, want %v", est, i, x, v, want)
			}
			if est != K1 && v < 0 {
				t.Errorf("%s[%d] = %v is negative", est, i, v)
			}
		}
		if kl.Data[0] != 0 {
			t.Errorf("%s of identical log-probs = %v, want 0", est, kl.Data[0])
		}
	}
	// As a loss, the estimators' gradients match finite differences
	// (clamped tokens excluded: they are flat).
	for _, est := range klEstimators {
		p := param(uniform(31, -2, -0.5, 3, 4))
		r := uniform(32, -2, -0.5, 3, 4)
		mask := rightPadMask(4, 4, 2, 3)
		f := func(tp *tensor.Tape) *tensor.Tensor { return KLLoss(tp, p, r, mask, est, TokenMean, LossNorm{}) }
		if err := tt.GradCheck(f, []*tensor.Tensor{p}, 1e-3, 2e-2); err != nil {
			t.Errorf("%s: %v", est, err)
		}
	}
}

func TestKLController_Update(t *testing.T) {
	cfg := DefaultKLConfig()
	if fixed := cfg.Controller().Update(100, 1000); fixed.Coef != cfg.InitCoef {
		t.Fatalf("a fixed controller moved to %v", fixed.Coef)
	}
	cfg.Target, cfg.InitCoef = 6, 0.1
	c := cfg.Controller()
	cases := []struct {
		kl   float64
		move int // sign of the change of β
	}{{12, +1}, {6.6, +1}, {6, 0}, {5, -1}, {0, -1}}
	for _, k := range cases {
		next := c.Update(k.kl, 512)
		if got := sign(next.Coef - c.Coef); got != k.move {
			t.Errorf("KL %v with target 6: β %v → %v, want direction %d", k.kl, c.Coef, next.Coef, k.move)
		}
		// The proportional error is clipped to ±0.2: β moves at most 20%·n/H.
		if r := math.Abs(next.Coef/c.Coef - 1); r > 0.2*512/10000+1e-12 {
			t.Errorf("KL %v: relative step %v exceeds 0.2·n/H", k.kl, r)
		}
	}
	// Repeated updates at a KL above target keep raising β (toward a smaller KL).
	for range 10 {
		next := c.Update(9, 512)
		if next.Coef <= c.Coef {
			t.Fatalf("β did not grow: %v → %v", c.Coef, next.Coef)
		}
		c = next
	}
}

func sign(x float64) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func TestKLConfig_Validate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*KLConfig)
		want string
	}{
		{"Default", func(*KLConfig) {}, ""},
		{"Off", func(c *KLConfig) { c.InitCoef = 0 }, ""},
		{"NegativeCoef", func(c *KLConfig) { c.InitCoef = -1 }, "init_coef"},
		{"AdaptiveNoHorizon", func(c *KLConfig) { c.Target, c.Horizon = 6, 0 }, "horizon"},
		{"BadEstimator", func(c *KLConfig) { c.Estimator = "k4" }, `unknown KL estimator "k4"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultKLConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if DefaultKLConfig().Enabled() == false {
		t.Error("the default KL config should be enabled (β = 0.01)")
	}
}
