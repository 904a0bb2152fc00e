package rl

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// ActorLossConfig says which terms make up the actor's loss (OpenRLHF's
// PolicyLoss plus the KL and entropy terms its actor adds).
type ActorLossConfig struct {
	// Policy is the clipped surrogate (PPO or GSPO).
	Policy PolicyLossConfig
	// KLCoef is β of the KL loss term (OpenRLHF --algo.kl.use_loss); 0
	// means no KL term, and no reference log-probs are needed.
	KLCoef      float64
	KLEstimator KLEstimator
	// EntropyCoef weighs the entropy bonus (--actor.entropy_coef); 0 means
	// none (the entropy is still measured).
	EntropyCoef float64
}

// Validate checks the policy loss and the coefficients.
func (c ActorLossConfig) Validate() error {
	errs := []error{c.Policy.Validate()}
	if !(c.KLCoef >= 0) || !(c.EntropyCoef >= 0) {
		errs = append(errs, fmt.Errorf("rl: KL coefficient %g and entropy coefficient %g must be ≥ 0", c.KLCoef, c.EntropyCoef))
	}
	if c.KLCoef > 0 {
		if err := checkEnum(c.KLEstimator, "KL estimator", klEstimators); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Aggregation is how every term is reduced to a scalar: the policy loss's
// aggregation, except that GSPO always uses seq_mean_token_mean (its
// sequence-level ratio needs it, see PolicyLoss), and the KL and entropy
// terms follow it.
func (c ActorLossConfig) Aggregation() Aggregation {
	if c.Policy.Type == PolicyGSPO {
		return SeqMeanTokenMean
	}
	return c.Policy.Aggregation
}

// TrainsEntropy reports whether the entropy bonus is part of the loss:
// then ActorObjective's entropy must have been computed on its tape.
func (c ActorLossConfig) TrainsEntropy() bool { return c.EntropyCoef != 0 }

// ActorMetrics describes one evaluation of ActorObjective.
type ActorMetrics struct {
	Loss    float64       // the whole objective
	Policy  PolicyMetrics // the surrogate term
	KL      float64       // the KL term before β; 0 without one
	Entropy float64       // mean per-token entropy over the mask
	Tokens  float64       // Σ mask: the action tokens
}

// ActorObjective is the loss one actor micro-batch back-propagates:
//
//	loss = PolicyLoss(log π, log π_old, Â, w)      (w: off-policy weights, ISWeights)
//	     + β·KLLoss(log π, log π_ref)              (β = KLCoef > 0)
//	     − c·Aggregate(H)                           (c = EntropyCoef ≠ 0, EntropyBonus)
//
// every term aggregated the same way (cfg.Aggregation) and normalised by
// norm, the step's totals, so that the micro-batch losses of a step add up
// to the step's loss. logProbs [B, A] are the policy's log-probs and
// entropy [B, A] its per-token entropy, both recorded on tp (entropy only
// when cfg.TrainsEntropy; it is otherwise just measured); oldLogProbs,
// advantages, refLogProbs (only read with a KL term; may be nil without),
// isWeights (the off-policy correction's weights of the policy term only,
// as OpenRLHF; nil = none) and mask [B, A] are constants from the
// experience. Every actor implementation computes its loss with this
// function, so a remote actor optimises the same objective as the
// in-process one.
func ActorObjective(tp *tensor.Tape, cfg ActorLossConfig, logProbs, entropy, oldLogProbs, advantages, refLogProbs, isWeights, mask *tensor.Tensor, norm LossNorm) (*tensor.Tensor, ActorMetrics) {
	mustBA("ActorObjective", mask, logProbs, entropy)
	var m ActorMetrics
	loss, pm := PolicyLoss(tp, cfg.Policy, logProbs, oldLogProbs, advantages, isWeights, mask, norm)
	m.Policy = pm
	agg := cfg.Aggregation()
	if cfg.KLCoef > 0 {
		kl := KLLoss(tp, logProbs, refLogProbs, mask, cfg.KLEstimator, agg, norm)
		m.KL = float64(kl.Item())
		loss = tensor.Add(tp, loss, tensor.Scale(tp, kl, float32(cfg.KLCoef)))
	}
	if cfg.TrainsEntropy() {
		bonus, _ := EntropyBonus(tp, entropy, mask, cfg.EntropyCoef, agg, norm)
		loss = tensor.Add(tp, loss, bonus)
	}
	m.Loss = float64(loss.Item())
	m.Tokens, m.Entropy = maskSum(mask), maskedMean(entropy, mask)
	return loss, m
}

// maskSum is Σ mask.
func maskSum(mask *tensor.Tensor) float64 {
	var n float64
	for _, m := range mask.Data {
		n += float64(m)
	}
	return n
}

// maskedMean is Σ x·m / Σ m (0 when the mask is empty), for metrics.
func maskedMean(x, mask *tensor.Tensor) float64 {
	var s, n float64
	for i, m := range mask.Data {
		s += float64(x.Data[i]) * float64(m)
		n += float64(m)
	}
	if n == 0 {
		return 0
	}
	return s / n
}
