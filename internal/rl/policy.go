package rl

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// logRatioClamp bounds log π/π_old before the exponential in the PPO ratio,
// as OpenRLHF does, so a stale token cannot overflow the ratio.
const logRatioClamp = 20

// PolicyLossConfig configures the clipped policy objective (OpenRLHF
// --actor.eps_clip, --actor.eps_clip_low_high, --actor.dual_clip,
// --actor.policy_loss_type).
type PolicyLossConfig struct {
	// Type is ppo (per-token ratio) or gspo (per-sequence ratio). Default ppo.
	Type PolicyLossType `flag:"policy_loss_type"`
	// ClipLow and ClipHigh are ε_low and ε_high: the ratio is clipped to
	// [1−ε_low, 1+ε_high]. Equal values are PPO's symmetric ε (default
	// 0.2); ε_high > ε_low is DAPO's clip-higher (e.g. 0.2 / 0.28).
	ClipLow, ClipHigh float64
	// DualClip is c > 1 of dual-clip PPO (Ye et al. 2020,
	// https://arxiv.org/abs/1912.09729): for negative advantages the
	// objective is bounded below by c·Â. 0 disables it (the default).
	DualClip float64 `flag:"dual_clip"`
	// Aggregation reduces the per-token loss; default token_mean. GSPO
	// always uses seq_mean_token_mean, which its sequence-level ratio needs.
	Aggregation Aggregation `flag:"loss_agg"`
}

// DefaultPolicyLossConfig returns OpenRLHF's defaults: PPO, ε = 0.2, no
// dual clip, token-mean aggregation.
func DefaultPolicyLossConfig() PolicyLossConfig {
	return PolicyLossConfig{Type: PolicyPPO, ClipLow: 0.2, ClipHigh: 0.2, Aggregation: TokenMean}
}

// Validate checks ranges and enum values.
func (c PolicyLossConfig) Validate() error {
	var errs []error
	if !(c.ClipLow >= 0 && c.ClipLow < 1) || !(c.ClipHigh >= 0) {
		errs = append(errs, fmt.Errorf("rl: policy clip needs 0 ≤ ε_low < 1 and ε_high ≥ 0, got (%g, %g)", c.ClipLow, c.ClipHigh))
	}
	if c.DualClip != 0 && !(c.DualClip > 1) {
		errs = append(errs, fmt.Errorf("rl: dual_clip must be > 1 (or 0 to disable), got %g", c.DualClip))
	}
	if err := checkEnum(c.Type, "policy loss type", policyLossTypes); err != nil {
		errs = append(errs, err)
	}
	if err := checkEnum(c.Aggregation, "loss aggregation", aggregations); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PolicyMetrics describes one evaluation of PolicyLoss. Fractions and means
// are over valid tokens.
type PolicyMetrics struct {
	Loss         float64 // the scalar loss
	ClipFrac     float64 // share of tokens where the clipped term is the smaller one (OpenRLHF ppo_clip_ratio)
	DualClipFrac float64 // share of tokens where the dual-clip bound c·Â is active
	ApproxKL     float64 // mean of log π_old − log π, an estimate of KL(π_old‖π) (OpenRLHF ppo_kl)
	RatioMean    float64 // mean importance ratio
	RatioMin     float64
	RatioMax     float64
}

// PolicyLoss returns the clipped surrogate loss (Schulman et al. 2017,
// https://arxiv.org/abs/1707.06347) and its metrics:
//
//	ρ_t = exp(clamp(log π_t − log π_old,t, −20, 20))            (ppo)
//	ρ_t = exp(Σ_t (log π_t − log π_old,t)·m_t / max(n, 1))      (gspo: one ρ per sequence)
//	J_t = min(ρ_t·Â_t, clip(ρ_t, 1−ε_low, 1+ε_high)·Â_t)
//	J_t ← max(J_t, c·Â_t)  where Â_t < 0                        (dual clip)
//	loss = Aggregate(−J·w, mask)
//
// logProbs [B, A] are the current policy's (requiring grad); oldLogProbs,
// advantages and mask [B, A] are constants from the experience. isWeights
// [B, A] are the off-policy correction's constant per-token weights w
// (ISWeights, PolicyInputs); nil means none (w = 1, and no multiplication
// at all). The gradient reaches logProbs through the tape.
func PolicyLoss(tp *tensor.Tape, cfg PolicyLossConfig, logProbs, oldLogProbs, advantages, isWeights, mask *tensor.Tensor, norm LossNorm) (*tensor.Tensor, PolicyMetrics) {
	_, a := mustBA("PolicyLoss", mask, logProbs, oldLogProbs, advantages)
	if isWeights != nil {
		mustBA("PolicyLoss", mask, isWeights)
	}
	var ratio *tensor.Tensor
	agg := cfg.Aggregation
	switch cfg.Type {
	case PolicyPPO:
		ratio = tensor.Exp(tp, tensor.Clamp(tp, tensor.Sub(tp, logProbs, oldLogProbs), -logRatioClamp, logRatioClamp))
	case PolicyGSPO:
		ratio = sequenceRatio(tp, logProbs, oldLogProbs, mask, a)
		agg = SeqMeanTokenMean
	default:
		panic(fmt.Sprintf("rl: PolicyLoss: unknown policy loss type %q", cfg.Type))
	}
	lo, hi := float32(1-cfg.ClipLow), float32(1+cfg.ClipHigh)
	s1 := tensor.Mul(tp, ratio, advantages)
	s2 := tensor.Mul(tp, tensor.Clamp(tp, ratio, lo, hi), advantages)
	obj := tensor.Minimum(tp, s1, s2)
	var floor *tensor.Tensor
	if cfg.DualClip > 0 {
		obj, floor = dualClip(tp, obj, advantages, cfg.DualClip)
	}
	perToken := tensor.Scale(tp, obj, -1)
	if isWeights != nil {
		perToken = tensor.Mul(tp, perToken, isWeights)
	}
	loss := Aggregate(tp, perToken, mask, agg, norm)
	return loss, policyMetrics(loss, ratio, s1, s2, floor, logProbs, oldLogProbs, advantages, mask)
}

// sequenceRatio is GSPO's s_i = exp(mean_t log π/π_old) over valid tokens,
// broadcast to [B, A] and zeroed at masked positions (OpenRLHF applies no
// log-ratio clamp here).
func sequenceRatio(tp *tensor.Tape, logProbs, oldLogProbs, mask *tensor.Tensor, a int) *tensor.Tensor {
	lr := tensor.Mul(tp, tensor.Sub(tp, logProbs, oldLogProbs), mask)
	counts := rowCounts(mask)
	inv := tensor.New(len(counts))
	for i, c := range counts {
		inv.Data[i] = float32(1 / max(c, 1))
	}
	seq := tensor.Exp(tp, tensor.Mul(tp, tensor.SumLastDim(tp, lr), inv))
	return tensor.Mul(tp, broadcastRows(tp, seq, a), mask)
}

// dualClip returns where(Â < 0, max(obj, c·Â), obj) and the bound c·Â.
// The select is a sum of products with 0/1 masks, which is exact.
func dualClip(tp *tensor.Tape, obj, adv *tensor.Tensor, c float64) (out, floor *tensor.Tensor) {
	floor = tensor.New(adv.Shape...)
	neg, pos := tensor.New(adv.Shape...), tensor.New(adv.Shape...)
	for i, v := range adv.Data {
		floor.Data[i] = float32(c) * v
		if v < 0 {
			neg.Data[i] = 1
		} else {
			pos.Data[i] = 1
		}
	}
	bounded := tensor.Maximum(tp, obj, floor)
	return tensor.Add(tp, tensor.Mul(tp, bounded, neg), tensor.Mul(tp, obj, pos)), floor
}

func policyMetrics(loss, ratio, s1, s2, floor, logProbs, oldLogProbs, adv, mask *tensor.Tensor) PolicyMetrics {
	m := mask.Data
	pm := PolicyMetrics{Loss: float64(loss.Item())}
	pm.ClipFrac = maskedFrac(m, func(i int) bool { return s2.Data[i] < s1.Data[i] })
	if floor != nil {
		pm.DualClipFrac = maskedFrac(m, func(i int) bool { return adv.Data[i] < 0 && floor.Data[i] > min(s1.Data[i], s2.Data[i]) })
	}
	negLR := make([]float32, len(m))
	for i := range negLR {
		negLR[i] = oldLogProbs.Data[i] - logProbs.Data[i]
	}
	pm.ApproxKL, _, _ = maskedStats(negLR, m)
	pm.RatioMean, pm.RatioMin, pm.RatioMax = maskedStats(ratio.Data, m)
	return pm
}

// EntropyBonus returns −coef·Aggregate(H, mask), the term to add to the
// policy loss to reward exploration (OpenRLHF --actor.entropy_coef), and the
// aggregated entropy for logging. entropy [B, A] is the per-token entropy of
// the policy (tensor.Entropy of its logits), requiring grad.
func EntropyBonus(tp *tensor.Tape, entropy, mask *tensor.Tensor, coef float64, agg Aggregation, norm LossNorm) (*tensor.Tensor, float64) {
	mustBA("EntropyBonus", mask, entropy)
	h := Aggregate(tp, entropy, mask, agg, norm)
	return tensor.Scale(tp, h, float32(-coef)), float64(h.Item())
}
