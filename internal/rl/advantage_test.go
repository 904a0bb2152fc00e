package rl

import (
	"math"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

func TestGAE(t *testing.T) {
	mask := rightPadMask(6, 6, 4, 1, 3)
	rewards, values := uniform(1, -1, 1, 4, 6), uniform(2, -1, 1, 4, 6)

	// With λ = 1 and V ≡ 0, GAE reduces to discounted Monte-Carlo returns.
	t.Run("Lambda1ZeroValuesIsDiscountedReturn", func(t *testing.T) {
		for _, gamma := range []float64{1, 0.9, 0.5} {
			adv, ret := GAE(rewards, tensor.New(4, 6), mask, gamma, 1)
			want := DiscountedReturns(rewards, mask, gamma)
			equalOnMask(t, "adv", adv, want, mask, 1e-6)
			equalOnMask(t, "ret", ret, want, mask, 1e-6)
		}
	})
	// λ = 0 is the one-step TD error δ_t = r_t + γV_{t+1} − V_t.
	t.Run("Lambda0IsTDError", func(t *testing.T) {
		adv, _ := GAE(rewards, values, mask, 0.9, 0)
		for b := range 4 {
			for i := range 6 {
				k := b*6 + i
				if mask.Data[k] == 0 {
					continue
				}
				next := 0.0
				if i+1 < 6 {
					next = float64(values.Data[k+1] * mask.Data[k+1])
				}
				want := float64(rewards.Data[k]) + 0.9*next - float64(values.Data[k])
				if math.Abs(float64(adv.Data[k])-want) > 1e-6 {
					t.Fatalf("adv[%d,%d] = %v, want δ = %v", b, i, adv.Data[k], want)
				}
			}
		}
	})
	// Returns are advantages plus values: the critic's regression target.
	t.Run("ReturnsAreAdvantagesPlusValues", func(t *testing.T) {
		adv, ret := GAE(rewards, values, mask, 0.95, 0.9)
		for i, m := range mask.Data {
			if m != 0 && math.Abs(float64(ret.Data[i]-adv.Data[i]-values.Data[i])) > 1e-6 {
				t.Fatalf("ret[%d] = %v, adv+V = %v", i, ret.Data[i], adv.Data[i]+values.Data[i])
			}
		}
	})
	// Rewards and values at masked positions change nothing, and the
	// outputs there are 0.
	t.Run("MaskedPositionsContributeNothing", func(t *testing.T) {
		adv, ret := GAE(rewards, values, mask, 0.9, 0.8)
		adv2, ret2 := GAE(scribble(rewards, mask), scribble(values, mask), mask, 0.9, 0.8)
		equalOnMask(t, "adv", adv2, adv, mask, 0)
		equalOnMask(t, "ret", ret2, ret, mask, 0)
	})
}

func TestDiscountedReturns(t *testing.T) {
	mask := rightPadMask(5, 5, 2, 0)
	r := uniform(3, -1, 1, 3, 5)
	got := DiscountedReturns(r, mask, 0.5)
	// Row 0 by hand: G_t = Σ_k 0.5^k r_{t+k}.
	for i := range 5 {
		var want float64
		for k := i; k < 5; k++ {
			want += math.Pow(0.5, float64(k-i)) * float64(r.Data[k])
		}
		if math.Abs(float64(got.Data[i])-want) > 1e-6 {
			t.Fatalf("G_%d = %v, want %v", i, got.Data[i], want)
		}
	}
	equalOnMask(t, "masked", DiscountedReturns(scribble(r, mask), mask, 0.5), got, mask, 0)
}

func TestGroupBaseline(t *testing.T) {
	const g = 4
	rewards := []float32{1, 2, 3, 6, 0.5, 0.5, 0.5, 0.5, -1, 4, 0, 2}
	t.Run("GroupNormZeroMeanUnitStd", func(t *testing.T) {
		out := GroupBaseline(EstimatorGroupNorm, rewards, g)
		for lo := 0; lo < len(out); lo += g {
			_, mean, std := groupStats(out[lo : lo+g])
			if math.Abs(mean) > 1e-6 {
				t.Errorf("group %d: mean %v, want 0", lo/g, mean)
			}
			if lo/g != 1 && math.Abs(std-1) > 1e-6 {
				t.Errorf("group %d: std %v, want 1", lo/g, std)
			}
		}
	})
	t.Run("UniformGroupIsZero", func(t *testing.T) {
		for _, e := range []Estimator{EstimatorRLOO, EstimatorReinforceBaseline, EstimatorGroupNorm, EstimatorDrGRPO} {
			// Equal rewards must give exactly 0, not rounding noise divided by std + 1e-9.
			for i, r := range GroupBaseline(e, []float32{0.1, 0.1, 0.1}, 3) {
				if r != 0 {
					t.Errorf("%s: sample %d of an equal group got %v, want 0", e, i, r)
				}
			}
		}
	})
	// RLOO's baseline for sample i is the mean of the other G−1 samples:
	// raising r_i by Δ raises its own advantage by Δ and lowers each
	// neighbour's by Δ/(G−1).
	t.Run("RLOOExcludesSelf", func(t *testing.T) {
		out := GroupBaseline(EstimatorRLOO, rewards, g)
		for i := range g {
			var others float64
			for j := range g {
				if j != i {
					others += float64(rewards[j])
				}
			}
			if want := float64(rewards[i]) - others/(g-1); math.Abs(float64(out[i])-want) > 1e-6 {
				t.Fatalf("rloo[%d] = %v, want %v", i, out[i], want)
			}
		}
		bumped := append([]float32(nil), rewards...)
		bumped[1] += 3
		out2 := GroupBaseline(EstimatorRLOO, bumped, g)
		if d := out2[1] - out[1]; math.Abs(float64(d-3)) > 1e-6 {
			t.Errorf("own advantage moved by %v, want 3", d)
		}
		if d := out2[0] - out[0]; math.Abs(float64(d+1)) > 1e-6 {
			t.Errorf("neighbour advantage moved by %v, want −1 (−Δ/(G−1))", d)
		}
	})
	t.Run("MeanOnly", func(t *testing.T) {
		a := GroupBaseline(EstimatorDrGRPO, rewards, g)
		b := GroupBaseline(EstimatorReinforceBaseline, rewards, g)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("sample %d: dr_grpo %v, reinforce_baseline %v", i, a[i], b[i])
			}
		}
		for i := range g { // group 0 has mean 3
			if want := float64(rewards[i]) - 3; math.Abs(float64(a[i])-want) > 1e-6 {
				t.Fatalf("sample %d: %v, want r − mean = %v", i, a[i], want)
			}
		}
	})
	t.Run("NoBaselineCopies", func(t *testing.T) {
		out := GroupBaseline(EstimatorGAE, rewards, 1)
		out[0] = 99
		if rewards[0] == 99 {
			t.Fatal("GroupBaseline aliased its input")
		}
	})
}

func TestWhiten(t *testing.T) {
	mask := rightPadMask(5, 5, 3, 0, 1)
	adv := uniform(4, -3, 5, 4, 5)
	stats := func(x *tensor.Tensor) (mean, variance float64) {
		var n float64
		for i, m := range mask.Data {
			mean += float64(x.Data[i] * m)
			n += float64(m)
		}
		mean /= n
		for i, m := range mask.Data {
			d := float64(x.Data[i]) - mean
			variance += d * d * float64(m)
		}
		return mean, variance / n
	}
	_, v0 := stats(adv)
	w := Whiten(adv, mask, false)
	if m, v := stats(w); math.Abs(m) > 1e-6 || math.Abs(v-1) > 1e-5 {
		t.Errorf("whitened mean %v var %v, want 0 and 1", m, v)
	}
	w = Whiten(adv, mask, true)
	if m, v := stats(w); math.Abs(m) > 1e-6 || math.Abs(v-v0) > 1e-5 {
		t.Errorf("no-std: mean %v var %v, want 0 and the input's %v", m, v, v0)
	}
	equalOnMask(t, "masked", Whiten(scribble(adv, mask), mask, false), Whiten(adv, mask, false), mask, 0)
	if got := Whiten(adv, tensor.New(4, 5), false); tensor.HasNonFinite(got.Data) {
		t.Error("an all-masked batch gave non-finite values")
	}
}

func TestComputeAdvantages(t *testing.T) {
	mask := rightPadMask(4, 4, 2, 3, 1)
	rewards := []float32{1, 0, 0.5, -1}
	values, kl := uniform(5, -1, 1, 4, 4), uniform(6, -0.2, 0.2, 4, 4)
	in := AdvantageInputs{Rewards: rewards, Mask: mask, KL: kl, KLCoef: 0.1, Values: values}

	t.Run("MaskedInputsChangeNothing", func(t *testing.T) {
		for _, e := range estimators {
			cfg := DefaultAdvantageConfig()
			cfg.Estimator, cfg.SamplesPerPrompt, cfg.Lambda = e, 2, 0.9
			a, err := ComputeAdvantages(cfg, in)
			if err != nil {
				t.Fatal(err)
			}
			in2 := in
			in2.KL, in2.Values = scribble(kl, mask), scribble(values, mask)
			b, err := ComputeAdvantages(cfg, in2)
			if err != nil {
				t.Fatal(err)
			}
			equalOnMask(t, string(e)+" advantages", b.Advantages, a.Advantages, mask, 0)
			equalOnMask(t, string(e)+" returns", b.Returns, a.Returns, mask, 0)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		cases := []struct {
			name string
			edit func(*AdvantageConfig, *AdvantageInputs)
			want string
		}{
			{"GroupNeedsG2", func(c *AdvantageConfig, _ *AdvantageInputs) { c.Estimator, c.SamplesPerPrompt = EstimatorRLOO, 1 }, "requires n_samples_per_prompt > 1"},
			{"GroupNeedsGamma1", func(c *AdvantageConfig, _ *AdvantageInputs) {
				c.Estimator, c.SamplesPerPrompt, c.Gamma = EstimatorGroupNorm, 2, 0.99
			}, "γ must be 1"},
			{"WholeGroups", func(c *AdvantageConfig, _ *AdvantageInputs) { c.Estimator, c.SamplesPerPrompt = EstimatorRLOO, 3 }, "not whole groups"},
			{"GAENeedsValues", func(_ *AdvantageConfig, in *AdvantageInputs) { in.Values = nil }, "needs critic values"},
			{"RewardCount", func(_ *AdvantageConfig, in *AdvantageInputs) { in.Rewards = rewards[:3] }, "3 rewards for 4 sequences"},
			{"NaNReward", func(_ *AdvantageConfig, in *AdvantageInputs) { in.Rewards = []float32{1, float32(math.NaN()), 0, 0} }, "not finite"},
			{"BadEstimator", func(c *AdvantageConfig, _ *AdvantageInputs) { c.Estimator = "ppo" }, `unknown advantage estimator "ppo"`},
			{"BadClip", func(c *AdvantageConfig, _ *AdvantageInputs) { c.RewardClip = Range{1, -1} }, "reward clip range"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				cfg, in2 := DefaultAdvantageConfig(), in
				c.edit(&cfg, &in2)
				_, err := ComputeAdvantages(cfg, in2)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v, want one containing %q", err, c.want)
				}
			})
		}
	})
	// REINFORCE++ with γ = 1 and no KL: every valid token's return is the
	// sequence reward.
	t.Run("ReinforceReturnIsReward", func(t *testing.T) {
		cfg := DefaultAdvantageConfig()
		cfg.Estimator = EstimatorReinforce
		out, err := ComputeAdvantages(cfg, AdvantageInputs{Rewards: rewards, Mask: mask})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range mask.Data {
			if m != 0 && out.Returns.Data[i] != rewards[i/4] {
				t.Fatalf("return[%d] = %v, want reward %v", i, out.Returns.Data[i], rewards[i/4])
			}
		}
	})
}

func TestValidateSamplesPerPrompt(t *testing.T) {
	for _, e := range estimators {
		for _, n := range []int{0, 1, 2, 8} {
			err := ValidateSamplesPerPrompt(e, n)
			wantErr := n < 1 || (e.GroupBased() && n < 2)
			if (err != nil) != wantErr {
				t.Errorf("%s with n=%d: error %v, want error %v", e, n, err, wantErr)
			}
		}
	}
}
