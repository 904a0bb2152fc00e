package rl

import (
	"errors"
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// AdvantageConfig configures how rewards become advantages (OpenRLHF
// --algo.advantage.*, --rollout.n_samples_per_prompt, --reward.clip_range).
type AdvantageConfig struct {
	// Estimator is the advantage estimator; default gae.
	Estimator Estimator `flag:"algo.advantage.estimator"`
	// Gamma is the discount γ ∈ [0, 1]; default 1. Group estimators need 1:
	// OpenRLHF silently resets it, gorlhf reports an error instead.
	Gamma float64 `flag:"algo.advantage.gamma"`
	// Lambda is GAE's λ ∈ [0, 1]; default 1. Only gae reads it.
	Lambda float64 `flag:"algo.advantage.lambd"`
	// NoStdNorm makes the global whitening subtract the mean only
	// (--algo.advantage.no_std_norm).
	NoStdNorm bool `flag:"algo.advantage.no_std_norm"`
	// SamplesPerPrompt is G, the responses sampled per prompt; default 1.
	// Group estimators need G > 1.
	SamplesPerPrompt int `flag:"rollout.n_samples_per_prompt"`
	// RewardClip clips the scalar reward (after the group baseline) before
	// the KL shaping; OpenRLHF default [−10, 10]; the zero Range disables it.
	RewardClip Range `flag:"reward.clip_range"`
}

// DefaultAdvantageConfig returns OpenRLHF's defaults: gae, γ = λ = 1, G = 1,
// rewards clipped to [−10, 10].
func DefaultAdvantageConfig() AdvantageConfig {
	return AdvantageConfig{Estimator: EstimatorGAE, Gamma: 1, Lambda: 1, SamplesPerPrompt: 1, RewardClip: Range{-10, 10}}
}

// Validate checks the configuration.
func (c AdvantageConfig) Validate() error {
	var errs []error
	if err := checkEnum(c.Estimator, "advantage estimator", estimators); err != nil {
		return err
	}
	if !(c.Gamma >= 0 && c.Gamma <= 1) || !(c.Lambda >= 0 && c.Lambda <= 1) {
		errs = append(errs, fmt.Errorf("rl: advantage gamma and lambda must be in [0, 1], got γ=%g λ=%g", c.Gamma, c.Lambda))
	}
	if c.Estimator.GroupBased() && c.Gamma != 1 {
		errs = append(errs, fmt.Errorf("rl: advantage estimator %s discounts nothing (γ must be 1, as OpenRLHF forces); got gamma %g", c.Estimator, c.Gamma))
	}
	if err := ValidateSamplesPerPrompt(c.Estimator, c.SamplesPerPrompt); err != nil {
		errs = append(errs, err)
	}
	if err := c.RewardClip.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rl: reward clip range: %w", err))
	}
	return errors.Join(errs...)
}

// ValidateSamplesPerPrompt checks n, the samples per prompt, for an
// estimator. A group baseline over one sample is the sample itself, so
// every advantage would be 0 and training a silent no-op; OpenRLHF asserts
// "<estimator> requires n_samples_per_prompt > 1".
func ValidateSamplesPerPrompt(e Estimator, n int) error {
	if n < 1 {
		return fmt.Errorf("rl: n_samples_per_prompt must be ≥ 1, got %d", n)
	}
	if e.GroupBased() && n < 2 {
		return fmt.Errorf("rl: advantage estimator %s requires n_samples_per_prompt > 1, got %d (a group baseline over one sample makes every advantage 0)", e, n)
	}
	return nil
}

// AdvantageInputs are what ComputeAdvantages reads from one rollout batch.
type AdvantageInputs struct {
	Rewards []float32      // [B] scalar reward per sequence, after RewardNorm and LengthPenalty; groups of G contiguous
	Mask    *tensor.Tensor // [B, A] action mask
	KL      *tensor.Tensor // [B, A] per-token KL (KL with a nil tape); nil when KL is off or a loss term
	KLCoef  float64        // β from the KLController; ≤ 0 disables the KL reward
	Values  *tensor.Tensor // [B, A] critic values at rollout time; required by gae, ignored otherwise
}

// AdvantageOutputs is the result of ComputeAdvantages.
type AdvantageOutputs struct {
	Advantages     *tensor.Tensor // [B, A] Â, whitened where the estimator says so; 0 at masked positions
	Returns        *tensor.Tensor // [B, A] critic targets (gae) or discounted returns; 0 at masked positions
	TokenRewards   *tensor.Tensor // [B, A] shaped per-token rewards
	Return         []float32      // [B] Σ_t shaped reward (OpenRLHF info "return")
	GroupRewardStd []float32      // [B] std of the raw rewards of each sample's group; nil when G = 1
}

// ComputeAdvantages runs OpenRLHF's compute_advantages_and_returns on one
// rollout batch: group baseline (GroupBaseline), clipping and KL shaping
// (ShapeRewards), GAE or discounted returns, then global whitening (Whiten)
// for gae, reinforce and reinforce_baseline. Inputs that do not fit the
// configuration (shapes, B not a multiple of G, missing values for gae) are
// reported as errors.
func ComputeAdvantages(cfg AdvantageConfig, in AdvantageInputs) (AdvantageOutputs, error) {
	if err := cfg.Validate(); err != nil {
		return AdvantageOutputs{}, err
	}
	if err := checkInputs(cfg, in); err != nil {
		return AdvantageOutputs{}, err
	}
	var out AdvantageOutputs
	g := cfg.SamplesPerPrompt
	if g > 1 {
		out.GroupRewardStd = GroupStd(in.Rewards, g)
	}
	r := GroupBaseline(cfg.Estimator, in.Rewards, g)
	out.TokenRewards = ShapeRewards(r, in.KL, in.Mask, in.KLCoef, cfg.RewardClip)
	if cfg.Estimator.NeedsCritic() {
		out.Advantages, out.Returns = GAE(out.TokenRewards, in.Values, in.Mask, cfg.Gamma, cfg.Lambda)
	} else {
		out.Returns = DiscountedReturns(out.TokenRewards, in.Mask, cfg.Gamma)
		out.Advantages = out.Returns.Clone()
	}
	if cfg.Estimator.Whitened() {
		out.Advantages = Whiten(out.Advantages, in.Mask, cfg.NoStdNorm)
	}
	out.Return = rowSums(out.TokenRewards)
	return out, nil
}

// checkInputs validates shapes against the configuration.
func checkInputs(cfg AdvantageConfig, in AdvantageInputs) error {
	if in.Mask == nil || len(in.Mask.Shape) != 2 {
		return errors.New("rl: advantages: the action mask must be a [B, A] tensor")
	}
	b := in.Mask.Shape[0]
	if len(in.Rewards) != b {
		return fmt.Errorf("rl: advantages: %d rewards for %d sequences", len(in.Rewards), b)
	}
	if b%cfg.SamplesPerPrompt != 0 {
		return fmt.Errorf("rl: advantages: %d sequences are not whole groups of n_samples_per_prompt=%d", b, cfg.SamplesPerPrompt)
	}
	for _, r := range in.Rewards {
		if math.IsNaN(float64(r)) || math.IsInf(float64(r), 0) {
			return fmt.Errorf("rl: advantages: reward %v is not finite", r)
		}
	}
	if in.KL != nil && !tensor.SameShape(in.KL.Shape, in.Mask.Shape) {
		return fmt.Errorf("rl: advantages: KL shape %v does not match mask %v", in.KL.Shape, in.Mask.Shape)
	}
	if cfg.Estimator.NeedsCritic() {
		if in.Values == nil || !tensor.SameShape(in.Values.Shape, in.Mask.Shape) {
			return fmt.Errorf("rl: advantages: estimator gae needs critic values shaped like the mask %v", in.Mask.Shape)
		}
	}
	return nil
}

// rowSums returns Σ_t x[b, t] for every row of x [B, A].
func rowSums(x *tensor.Tensor) []float32 {
	b, a := x.Shape[0], x.Shape[1]
	out := make([]float32, b)
	for i := range b {
		var s float64
		for _, v := range x.Data[i*a : (i+1)*a] {
			s += float64(v)
		}
		out[i] = float32(s)
	}
	return out
}
