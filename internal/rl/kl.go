package rl

import (
	"errors"
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// klClamp bounds every KL estimate, as OpenRLHF's compute_approx_kl, so that
// one token where the policy left the reference far behind cannot dominate
// the reward or the loss (its gradient is 0 once clamped).
const klClamp = 10

// KL returns the per-token KL estimate between the policy and the
// reference (Schulman, "Approximating KL divergence",
// http://joschu.net/blog/kl-approx.html), with x = log π − log π_ref:
//
//	k1 = x
//	k2 = x²/2
//	k3 = e^{−x} − 1 + x
//
// clamped to [−10, 10]. logProbs and refLogProbs are [B, A]. With a nil
// tape it is a plain computation (the KL reward at experience time); with a
// tape and logProbs requiring grad it is differentiable (the KL loss).
func KL(tp *tensor.Tape, logProbs, refLogProbs *tensor.Tensor, est KLEstimator) *tensor.Tensor {
	x := tensor.Sub(tp, logProbs, refLogProbs)
	switch est {
	case K1:
	case K2:
		x = tensor.Scale(tp, tensor.Square(tp, x), 0.5)
	case K3:
		x = tensor.Add(tp, tensor.AddScalar(tp, tensor.Exp(tp, tensor.Scale(tp, x, -1)), -1), x)
	default:
		panic(fmt.Sprintf("rl: KL: unknown estimator %q", est))
	}
	return tensor.Clamp(tp, x, -klClamp, klClamp)
}

// KLLoss is the KL penalty used as a loss term instead of a reward
// (--algo.kl.use_loss, as GRPO): Aggregate(KL(π, π_ref), mask). The trainer
// adds β times it to the policy loss. OpenRLHF recommends k2 or k3 here.
func KLLoss(tp *tensor.Tape, logProbs, refLogProbs, mask *tensor.Tensor, est KLEstimator, agg Aggregation, norm LossNorm) *tensor.Tensor {
	mustBA("KLLoss", mask, logProbs, refLogProbs)
	return Aggregate(tp, KL(tp, logProbs, refLogProbs, est), mask, agg, norm)
}

// KLConfig configures the KL penalty (OpenRLHF --algo.kl.*).
type KLConfig struct {
	// InitCoef is the starting β; 0 disables the penalty and the reference
	// model (--algo.kl.init_coef, default 0.01).
	InitCoef float64 `flag:"algo.kl.init_coef"`
	// Target is the adaptive controller's KL target; 0 keeps β fixed
	// (--algo.kl.target, default unset).
	Target float64 `flag:"algo.kl.target"`
	// Horizon is the adaptive controller's horizon in samples
	// (--algo.kl.horizon, default 10000).
	Horizon float64 `flag:"algo.kl.horizon"`
	// Estimator is k1, k2 or k3 (--algo.kl.estimator, default k1).
	Estimator KLEstimator `flag:"algo.kl.estimator"`
	// UseLoss puts the KL in the loss (KLLoss) instead of the reward
	// (--algo.kl.use_loss, default false).
	UseLoss bool `flag:"algo.kl.use_loss"`
}

// DefaultKLConfig returns OpenRLHF's defaults: fixed β = 0.01, k1, in the reward.
func DefaultKLConfig() KLConfig {
	return KLConfig{InitCoef: 0.01, Horizon: 10000, Estimator: K1}
}

// Validate checks the ranges and the estimator.
func (c KLConfig) Validate() error {
	var errs []error
	if !(c.InitCoef >= 0) || math.IsInf(c.InitCoef, 0) {
		errs = append(errs, fmt.Errorf("rl: %s must be a finite number ≥ 0, got %g", cfgflag.Flag(&c, &c.InitCoef), c.InitCoef))
	}
	if !(c.Target >= 0) || math.IsInf(c.Target, 0) {
		errs = append(errs, fmt.Errorf("rl: %s must be a finite number ≥ 0 (0 = fixed coefficient), got %g", cfgflag.Flag(&c, &c.Target), c.Target))
	}
	if c.Target > 0 && !(c.Horizon > 0) {
		errs = append(errs, fmt.Errorf("rl: adaptive kl needs %s > 0, got %g", cfgflag.Flag(&c, &c.Horizon), c.Horizon))
	}
	if err := checkEnum(c.Estimator, "KL estimator", klEstimators); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Enabled reports whether a reference model and a KL penalty are needed.
func (c KLConfig) Enabled() bool { return c.InitCoef > 0 }

// Controller returns the controller that starts at InitCoef.
func (c KLConfig) Controller() KLController {
	return KLController{Coef: c.InitCoef, Target: c.Target, Horizon: c.Horizon}
}

// KLController holds β, the KL coefficient. With Target 0 it is fixed;
// otherwise it is the adaptive controller of Ziegler et al. 2019
// (https://arxiv.org/abs/1909.08593, §2.2). It is a plain value (save it
// with a checkpoint to resume bit-identically).
type KLController struct {
	Coef    float64 // β used for the next batch
	Target  float64 // KL_target; 0 = fixed β
	Horizon float64 // H, in samples
}

// Update returns the controller after a batch of nSteps samples whose
// measured KL was currentKL:
//
//	e = clip(KL/KL_target − 1, −0.2, 0.2)
//	β ← β·(1 + e·nSteps/H)
//
// OpenRLHF passes nSteps = rollout batch size × samples per prompt.
func (c KLController) Update(currentKL float64, nSteps int) KLController {
	if c.Target <= 0 {
		return c
	}
	e := min(max(currentKL/c.Target-1, -0.2), 0.2)
	c.Coef *= 1 + e*float64(nSteps)/c.Horizon
	return c
}
