package rl

import (
	"flag"
	"fmt"
	"strings"
)

// Estimator names an advantage estimator (OpenRLHF --algo.advantage.estimator).
type Estimator string

const (
	// EstimatorGAE is PPO's generalized advantage estimation with a critic
	// (Schulman et al. 2015).
	EstimatorGAE Estimator = "gae"
	// EstimatorReinforce is REINFORCE++ (Hu 2025): discounted returns of the
	// KL-shaped reward, globally whitened; no critic, no group baseline.
	EstimatorReinforce Estimator = "reinforce"
	// EstimatorReinforceBaseline is REINFORCE++-baseline: the group mean is
	// subtracted from each reward, then advantages are globally whitened.
	EstimatorReinforceBaseline Estimator = "reinforce_baseline"
	// EstimatorRLOO is REINFORCE leave-one-out (Ahmadian et al. 2024): the
	// baseline of a sample is the mean reward of the other G−1 samples.
	EstimatorRLOO Estimator = "rloo"
	// EstimatorGroupNorm is GRPO's group normalisation (Shao et al. 2024):
	// (r − mean_G) / (std_G + ε).
	EstimatorGroupNorm Estimator = "group_norm"
	// EstimatorDrGRPO is Dr. GRPO (Liu et al. 2025): the group mean is
	// subtracted, with no division by the standard deviation.
	EstimatorDrGRPO Estimator = "dr_grpo"
)

var estimators = []Estimator{EstimatorGAE, EstimatorReinforce, EstimatorReinforceBaseline, EstimatorRLOO, EstimatorGroupNorm, EstimatorDrGRPO}

// String implements flag.Value.
func (e Estimator) String() string { return string(e) }

// Set implements flag.Value.
func (e *Estimator) Set(s string) error { return setEnum(e, s, "advantage estimator", estimators) }

// NeedsCritic reports whether the estimator reads a critic's values (only GAE).
func (e Estimator) NeedsCritic() bool { return e == EstimatorGAE }

// GroupBased reports whether the estimator compares the G samples of a
// prompt, which needs G > 1 (see ValidateSamplesPerPrompt).
func (e Estimator) GroupBased() bool {
	switch e {
	case EstimatorRLOO, EstimatorReinforceBaseline, EstimatorGroupNorm, EstimatorDrGRPO:
		return true
	}
	return false
}

// Whitened reports whether advantages are whitened over the whole batch
// after they are computed (OpenRLHF: gae, reinforce, reinforce_baseline).
func (e Estimator) Whitened() bool {
	switch e {
	case EstimatorGAE, EstimatorReinforce, EstimatorReinforceBaseline:
		return true
	}
	return false
}

// KLEstimator names one of Schulman's KL approximations
// (http://joschu.net/blog/kl-approx.html), OpenRLHF --algo.kl.estimator.
type KLEstimator string

const (
	// K1 is log π/π_ref: unbiased, can be negative. OpenRLHF's default for
	// the KL reward.
	K1 KLEstimator = "k1"
	// K2 is ½(log π/π_ref)²: non-negative, biased.
	K2 KLEstimator = "k2"
	// K3 is π_ref/π − 1 − log(π_ref/π): non-negative and unbiased; the usual
	// choice for a KL loss term (GRPO).
	K3 KLEstimator = "k3"
)

var klEstimators = []KLEstimator{K1, K2, K3}

// String implements flag.Value.
func (k KLEstimator) String() string { return string(k) }

// Set implements flag.Value.
func (k *KLEstimator) Set(s string) error { return setEnum(k, s, "KL estimator", klEstimators) }

// PolicyLossType names the policy objective (OpenRLHF --actor.policy_loss_type).
type PolicyLossType string

const (
	// PolicyPPO is PPO's clipped surrogate with a per-token ratio
	// (Schulman et al. 2017).
	PolicyPPO PolicyLossType = "ppo"
	// PolicyGSPO uses one importance ratio per sequence, the geometric mean
	// of its token ratios (Zheng et al. 2025, https://arxiv.org/abs/2507.18071).
	PolicyGSPO PolicyLossType = "gspo"
)

var policyLossTypes = []PolicyLossType{PolicyPPO, PolicyGSPO}

// String implements flag.Value.
func (p PolicyLossType) String() string { return string(p) }

// Set implements flag.Value.
func (p *PolicyLossType) Set(s string) error {
	return setEnum(p, s, "policy loss type", policyLossTypes)
}

// Aggregation names how a per-token loss [B, A] becomes a scalar.
type Aggregation string

const (
	// TokenMean averages over every valid token of the batch, so long
	// responses weigh more (DAPO's token-level loss; OpenRLHF's default).
	TokenMean Aggregation = "token_mean"
	// SeqMeanTokenMean averages each sequence over its valid tokens, then
	// averages the non-empty sequences (OpenRLHF token_level_loss=False,
	// always used by GSPO).
	SeqMeanTokenMean Aggregation = "seq_mean_token_mean"
)

var aggregations = []Aggregation{TokenMean, SeqMeanTokenMean}

// String implements flag.Value.
func (a Aggregation) String() string { return string(a) }

// Set implements flag.Value.
func (a *Aggregation) Set(s string) error { return setEnum(a, s, "loss aggregation", aggregations) }

var (
	_ flag.Value = (*Estimator)(nil)
	_ flag.Value = (*KLEstimator)(nil)
	_ flag.Value = (*PolicyLossType)(nil)
	_ flag.Value = (*Aggregation)(nil)
)

// setEnum parses s into *dst when it names one of valid.
func setEnum[E ~string](dst *E, s, kind string, valid []E) error {
	if err := checkEnum(E(s), kind, valid); err != nil {
		return err
	}
	*dst = E(s)
	return nil
}

// checkEnum returns an error naming the valid values when v is not one.
func checkEnum[E ~string](v E, kind string, valid []E) error {
	names := make([]string, len(valid))
	for i, x := range valid {
		if x == v {
			return nil
		}
		names[i] = string(x)
	}
	return fmt.Errorf("rl: unknown %s %q (want one of %s)", kind, string(v), strings.Join(names, ", "))
}
