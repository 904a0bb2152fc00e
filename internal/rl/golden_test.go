package rl

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// goldenTol is the bar against tools/rl_golden.py (float64 PyTorch on the
// same float32 inputs): relative to the largest reference magnitude.
const goldenTol = 1e-6

type golden struct {
	B, A, G int
	Inputs  map[string][]float32
	GAE     struct {
		Gamma, Lambda       float64
		Advantages, Returns []float32
	}
	DiscountedReturns struct {
		Gamma   float64
		Returns []float32
	} `json:"discounted_returns"`
	GroupBaseline map[Estimator][]float32 `json:"group_baseline"`
	Whiten        map[string][]float32
	ShapeRewards  struct {
		KLCoef  float64 `json:"kl_coef"`
		Clip    []float64
		Rewards []float32
	} `json:"shape_rewards"`
	KL []struct {
		Estimator KLEstimator
		KL, Grad  []float32
		Loss      float64
	}
	Advantages []struct {
		Name                string
		Estimator           Estimator
		Gamma, Lambda       float64
		NoStd               bool    `json:"no_std"`
		KLCoef              float64 `json:"kl_coef"`
		Clip                []float64
		Advantages, Returns []float32
		TokenRewards        []float32 `json:"token_rewards"`
		Ret                 []float32
		GroupRewardStd      []float32 `json:"group_reward_std"`
	}
	PolicyLoss []struct {
		Name          string
		Type          PolicyLossType
		ClipLow       float64 `json:"clip_low"`
		ClipHigh      float64 `json:"clip_high"`
		DualClip      float64 `json:"dual_clip"`
		Aggregation   Aggregation
		NormTokens    float64 `json:"norm_tokens"`
		NormSequences float64 `json:"norm_sequences"`
		Loss          float64
		ClipRatio     float64 `json:"clip_ratio"`
		PPOKL         float64 `json:"ppo_kl"`
		Grad          []float32
	} `json:"policy_loss"`
	ValueLoss []struct {
		Name        string
		Clip        float64
		Aggregation Aggregation
		NormTokens  float64 `json:"norm_tokens"`
		Loss        float64
		Grad        []float32
	} `json:"value_loss"`
	EntropyBonus []struct {
		Coef        float64
		Aggregation Aggregation
		Loss        float64
		Grad        []float32
	} `json:"entropy_bonus"`
	KLController struct {
		Init, Target, Horizon float64
		NSteps                int `json:"n_steps"`
		KL, Coef              []float64
	} `json:"kl_controller"`
	LengthPenalty struct {
		MaxNewTokens int     `json:"max_new_tokens"`
		BufferLen    float64 `json:"buffer_len"`
		Factor       float64
		Lengths      []int
		Truncated    []bool
		Rewards      []float32
		Cases        []struct {
			StopProperlyCoef *float64 `json:"stop_properly_coef"`
			Rewards          []float32
		}
	} `json:"length_penalty"`
	DynamicFilter struct {
		Low, High    float64
		Groups       [][]float32
		KeepOpenRLHF []bool `json:"keep_openrlhf"`
	} `json:"dynamic_filter"`
}

var (
	goldenOnce sync.Once
	goldenData golden
	goldenErr  error
)

// loadGolden reads testdata/rl_golden.json once (regenerate it with
// /usr/bin/python3 tools/rl_golden.py).
func loadGolden(t *testing.T) *golden {
	t.Helper()
	goldenOnce.Do(func() {
		raw, err := os.ReadFile("testdata/rl_golden.json")
		if err != nil {
			goldenErr = err
			return
		}
		goldenErr = json.Unmarshal(raw, &goldenData)
	})
	if goldenErr != nil {
		t.Fatalf("golden: %v", goldenErr)
	}
	return &goldenData
}

// ba wraps a golden input as a [B, A] tensor (a copy, so tests may edit it).
func (g *golden) ba(name string) *tensor.Tensor {
	return tensor.FromSlice(append([]float32(nil), g.Inputs[name]...), g.B, g.A)
}

func clipRange(c []float64) Range {
	if c == nil {
		return Range{}
	}
	return Range{c[0], c[1]}
}

// near fails when got differs from want by more than goldenTol relative to
// the largest magnitude in want.
func near(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	e := tt.MaxRelErr(got, want, 1e-9)
	if e > goldenTol {
		t.Errorf("%s: max relative error %.3g > %g\n got %v\nwant %v", what, e, goldenTol, got, want)
	}
	t.Logf("%s: max relative error %.2g", what, e)
}

// nearScalar compares one value with a relative bar.
func nearScalar(t *testing.T, what string, got, want float64) {
	t.Helper()
	e := math.Abs(got-want) / math.Max(math.Abs(want), 1e-9)
	if e > goldenTol {
		t.Errorf("%s = %.9g, want %.9g (rel err %.3g)", what, got, want, e)
	}
	t.Logf("%s: relative error %.2g", what, e)
}

func TestGolden_Advantages(t *testing.T) {
	g := loadGolden(t)
	mask := g.ba("mask")
	t.Run("GAE", func(t *testing.T) {
		adv, ret := GAE(g.ba("token_rewards"), g.ba("values"), mask, g.GAE.Gamma, g.GAE.Lambda)
		near(t, "advantages", adv.Data, g.GAE.Advantages)
		near(t, "returns", ret.Data, g.GAE.Returns)
	})
	t.Run("DiscountedReturns", func(t *testing.T) {
		ret := DiscountedReturns(g.ba("token_rewards"), mask, g.DiscountedReturns.Gamma)
		near(t, "returns", ret.Data, g.DiscountedReturns.Returns)
	})
	for est, want := range g.GroupBaseline {
		t.Run("GroupBaseline/"+string(est), func(t *testing.T) {
			near(t, "rewards", GroupBaseline(est, g.Inputs["rewards"], g.G), want)
		})
	}
	for _, noStd := range []bool{false, true} {
		t.Run("Whiten/noStd="+strconv.FormatBool(noStd), func(t *testing.T) {
			near(t, "advantages", Whiten(g.ba("advantages"), mask, noStd).Data, g.Whiten[strconv.FormatBool(noStd)])
		})
	}
	t.Run("ShapeRewards", func(t *testing.T) {
		kl := KL(nil, g.ba("log_probs"), g.ba("ref_log_probs"), K1)
		got := ShapeRewards(g.Inputs["rewards"], kl, mask, g.ShapeRewards.KLCoef, clipRange(g.ShapeRewards.Clip))
		near(t, "rewards", got.Data, g.ShapeRewards.Rewards)
	})
	for _, c := range g.Advantages {
		t.Run("Pipeline/"+c.Name, func(t *testing.T) {
			cfg := AdvantageConfig{Estimator: c.Estimator, Gamma: c.Gamma, Lambda: c.Lambda, NoStdNorm: c.NoStd,
				SamplesPerPrompt: g.G, RewardClip: clipRange(c.Clip)}
			out, err := ComputeAdvantages(cfg, AdvantageInputs{
				Rewards: g.Inputs["rewards"], Mask: mask, KLCoef: c.KLCoef, Values: g.ba("values"),
				KL: KL(nil, g.ba("log_probs"), g.ba("ref_log_probs"), K1),
			})
			if err != nil {
				t.Fatal(err)
			}
			near(t, "advantages", out.Advantages.Data, c.Advantages)
			near(t, "returns", out.Returns.Data, c.Returns)
			near(t, "token rewards", out.TokenRewards.Data, c.TokenRewards)
			near(t, "return", out.Return, c.Ret)
			near(t, "group reward std", out.GroupRewardStd, c.GroupRewardStd)
		})
	}
}

func TestGolden_KL(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.KL {
		t.Run(string(c.Estimator), func(t *testing.T) {
			near(t, "kl", KL(nil, g.ba("log_probs"), g.ba("ref_log_probs"), c.Estimator).Data, c.KL)
			lp := g.ba("log_probs")
			lp.RequiresGrad = true
			tp := tensor.NewTape()
			loss := KLLoss(tp, lp, g.ba("ref_log_probs"), g.ba("loss_mask"), c.Estimator, TokenMean, LossNorm{})
			tp.Backward(loss)
			nearScalar(t, "loss", float64(loss.Item()), c.Loss)
			near(t, "grad", lp.Grad, c.Grad)
		})
	}
}

func TestGolden_PolicyLoss(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.PolicyLoss {
		t.Run(c.Name, func(t *testing.T) {
			cfg := PolicyLossConfig{Type: c.Type, ClipLow: c.ClipLow, ClipHigh: c.ClipHigh, DualClip: c.DualClip, Aggregation: c.Aggregation}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			lp := g.ba("log_probs")
			lp.RequiresGrad = true
			tp := tensor.NewTape()
			loss, m := PolicyLoss(tp, cfg, lp, g.ba("old_log_probs"), g.ba("advantages"), nil, g.ba("loss_mask"),
				LossNorm{Tokens: c.NormTokens, Sequences: c.NormSequences})
			tp.Backward(loss)
			nearScalar(t, "loss", float64(loss.Item()), c.Loss)
			nearScalar(t, "metrics.Loss", m.Loss, c.Loss)
			nearScalar(t, "clip fraction", m.ClipFrac, c.ClipRatio)
			nearScalar(t, "approx KL", m.ApproxKL, c.PPOKL)
			near(t, "grad", lp.Grad, c.Grad)
		})
	}
}

func TestGolden_ValueLoss(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.ValueLoss {
		t.Run(c.Name, func(t *testing.T) {
			v := g.ba("new_values")
			v.RequiresGrad = true
			tp := tensor.NewTape()
			loss, m := ValueLoss(tp, ValueLossConfig{Clip: c.Clip, Aggregation: c.Aggregation}, v, g.ba("values"),
				g.ba("returns"), g.ba("loss_mask"), LossNorm{Tokens: c.NormTokens})
			tp.Backward(loss)
			nearScalar(t, "loss", float64(loss.Item()), c.Loss)
			nearScalar(t, "metrics.Loss", m.Loss, c.Loss)
			near(t, "grad", v.Grad, c.Grad)
		})
	}
}

func TestGolden_EntropyBonus(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.EntropyBonus {
		t.Run(string(c.Aggregation), func(t *testing.T) {
			h := g.ba("entropy")
			h.RequiresGrad = true
			tp := tensor.NewTape()
			term, mean := EntropyBonus(tp, h, g.ba("loss_mask"), c.Coef, c.Aggregation, LossNorm{})
			tp.Backward(term)
			nearScalar(t, "term", float64(term.Item()), c.Loss)
			nearScalar(t, "mean entropy", -c.Coef*mean, c.Loss)
			near(t, "grad", h.Grad, c.Grad)
		})
	}
}

func TestGolden_Rewards(t *testing.T) {
	g := loadGolden(t)
	t.Run("KLController", func(t *testing.T) {
		k := g.KLController
		c := KLConfig{InitCoef: k.Init, Target: k.Target, Horizon: k.Horizon, Estimator: K1}.Controller()
		for i, kl := range k.KL {
			c = c.Update(kl, k.NSteps)
			nearScalar(t, "coef", c.Coef, k.Coef[i])
		}
	})
	t.Run("LengthPenalty", func(t *testing.T) {
		lp := g.LengthPenalty
		for _, c := range lp.Cases {
			p := LengthPenalty{OverlongBufferLen: lp.BufferLen, OverlongFactor: lp.Factor}
			if c.StopProperlyCoef != nil {
				p.StopProperly, p.StopProperlyCoef = true, *c.StopProperlyCoef
			}
			if err := p.Validate(lp.MaxNewTokens); err != nil {
				t.Fatal(err)
			}
			got, _, _ := p.Apply(lp.Rewards, lp.Lengths, lp.Truncated, lp.MaxNewTokens)
			near(t, "rewards", got, c.Rewards)
		}
	})
	t.Run("DynamicFilter", func(t *testing.T) {
		df := g.DynamicFilter
		f := DynamicFilter{Low: df.Low, High: df.High, KeepUniform: true} // OpenRLHF's rule
		for i, grp := range df.Groups {
			if got := f.Keep(grp); got != df.KeepOpenRLHF[i] {
				t.Errorf("group %v: Keep = %v, OpenRLHF keeps %v", grp, got, df.KeepOpenRLHF[i])
			}
		}
	})
}
