package rl

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Off-policy correction with the rollout engine's log-probs ("Your
// Efficient RL Framework Secretly Brings You Off-Policy RL Training",
// Yao et al. 2025, https://fengyao.notion.site/off-policy-rl; Liu, Li et
// al. 2025, "When Speed Kills Stability").
//
// The samples of a batch are drawn by the rollout engine, π_rollout; the
// PPO ratio is taken against the trainer's π_old (the actor's log-probs of
// the same tokens). The two differ by numerics (another kernel, another
// precision) or by staleness (asynchronous training), so the policy
// gradient is off-policy. Truncated importance sampling reweights each
// token's policy loss by the ratio
//
//	ρ_t = π_old(y_t) / π_rollout(y_t) = exp(log π_old,t − log π_rollout,t)
//
// bounded so that a rare token cannot blow up the gradient. Level says
// which ratio is bounded, mode how:
//
//	level token:  ρ_L = ρ_t
//	level seq:    ρ_L = exp(Σ_t log ρ_t)          (the sequence's ratio, one per row)
//	level geo:    ρ_L = exp(Σ_t log ρ_t / n)      (its geometric mean per token)
//
//	mode clip:    w_t = clamp(ρ_L, lo, hi)
//	mode trunc:   w_t = min(ρ_L, hi)              (truncated IS: no lower bound)
//	mode mask:    w_t = ρ_t · [lo ≤ ρ_L ≤ hi]      (rejection: the token ratio where kept)
//
// OpenRLHF's --algo.advantage.is_correction_type names three of the nine
// (openrlhf/models/loss.py, PolicyLoss): tis = token-clip, icepop =
// token-mask, seq-mask-tis = geo-mask. In every case, as in OpenRLHF:
//
//   - w is a constant (detached): it depends only on π_old and π_rollout,
//     so no gradient flows through it;
//   - it multiplies the per-token PPO loss −min(ρ·Â, clip(ρ)·Â) (after the
//     dual clip), before Aggregate;
//   - a masked (w = 0) token still counts in the loss normaliser (the
//     action mask is unchanged), so rejection shrinks the loss rather
//     than re-weighting the kept tokens up. (verl's "mask" mode instead
//     removes rejected tokens from the normaliser and keeps ρ_L as the
//     weight; slime's MIS offers both.)
//
// For GSPO, OpenRLHF applies no weight: the sequence ratio is taken
// against π_rollout instead of π_old (PolicyInputs).

// ISLevel is the level at which the rollout importance ratio is bounded.
type ISLevel string

// ISMode is how a ratio outside [lo, hi] is bounded.
type ISMode string

const (
	// ISToken bounds every token's ratio ρ_t on its own.
	ISToken ISLevel = "token"
	// ISSeq bounds the sequence ratio Π_t ρ_t (unbiased, high variance).
	ISSeq ISLevel = "seq"
	// ISGeo bounds the geometric mean of the token ratios of a sequence.
	ISGeo ISLevel = "geo"

	// ISMask zeroes the weight where the ratio is outside [lo, hi] and
	// keeps the token ratio ρ_t elsewhere.
	ISMask ISMode = "mask"
	// ISClip clamps the ratio to [lo, hi].
	ISClip ISMode = "clip"
	// ISTrunc caps the ratio at hi (no lower bound).
	ISTrunc ISMode = "trunc"
)

// ISCorrectionType names an off-policy correction
// (--algo.advantage.is_correction_type): OpenRLHF's three presets, or any
// "<level>-<mode>" of levels token, seq, geo and modes mask, clip, trunc.
type ISCorrectionType string

const (
	// ISTIS is OpenRLHF's tis: token-level clamp (= token-clip).
	ISTIS ISCorrectionType = "tis"
	// ISIcepop is OpenRLHF's icepop: token-level filter (= token-mask).
	ISIcepop ISCorrectionType = "icepop"
	// ISSeqMaskTIS is OpenRLHF's seq-mask-tis: a sequence is kept when the
	// geometric mean of its ratios is in [lo, hi], its tokens weighted by
	// their own (unbounded) ratio (= geo-mask).
	ISSeqMaskTIS ISCorrectionType = "seq-mask-tis"
)

var (
	isLevels  = []ISLevel{ISToken, ISSeq, ISGeo}
	isModes   = []ISMode{ISMask, ISClip, ISTrunc}
	isPresets = map[ISCorrectionType][2]string{
		ISTIS: {string(ISToken), string(ISClip)}, ISIcepop: {string(ISToken), string(ISMask)},
		ISSeqMaskTIS: {string(ISGeo), string(ISMask)},
	}
	isCorrectionTypes = func() []ISCorrectionType {
		out := []ISCorrectionType{ISTIS, ISIcepop, ISSeqMaskTIS}
		for _, l := range isLevels {
			for _, m := range isModes {
				out = append(out, ISCorrectionType(string(l)+"-"+string(m)))
			}
		}
		return out
	}()
)

// String implements flag.Value.
func (t ISCorrectionType) String() string { return string(t) }

// Set implements flag.Value.
func (t *ISCorrectionType) Set(s string) error {
	return setEnum(t, s, "IS correction type", isCorrectionTypes)
}

var _ flag.Value = (*ISCorrectionType)(nil)

// Spec returns the level and mode t stands for (a preset's, or the two
// halves of "<level>-<mode>"). It is meant for a valid t.
func (t ISCorrectionType) Spec() (ISLevel, ISMode) {
	if p, ok := isPresets[t]; ok {
		return ISLevel(p[0]), ISMode(p[1])
	}
	l, m, _ := strings.Cut(string(t), "-")
	return ISLevel(l), ISMode(m)
}

// ISCorrectionConfig is the off-policy correction of the policy loss with
// the rollout engine's log-probs (OpenRLHF
// --algo.advantage.is_correction_enable, _type, _threshold).
type ISCorrectionConfig struct {
	Enable bool             `flag:"algo.advantage.is_correction_enable"`
	Type   ISCorrectionType `flag:"algo.advantage.is_correction_type"`
	// Threshold is [lo, hi] (OpenRLHF default 0.5, 5.0); trunc reads only hi.
	Threshold Range `flag:"algo.advantage.is_correction_threshold"`
}

// DefaultISCorrectionConfig returns OpenRLHF's defaults: off, tis, [0.5, 5].
func DefaultISCorrectionConfig() ISCorrectionConfig {
	return ISCorrectionConfig{Type: ISTIS, Threshold: Range{Lo: 0.5, Hi: 5}}
}

// Validate checks the type and, when enabled, 0 ≤ lo ≤ hi, hi > 0, finite.
func (c ISCorrectionConfig) Validate() error {
	var errs []error
	if err := checkEnum(c.Type, "IS correction type", isCorrectionTypes); err != nil {
		errs = append(errs, err)
	}
	lo, hi := c.Threshold.Lo, c.Threshold.Hi
	if c.Enable && !(lo >= 0 && lo <= hi && hi > 0 && !math.IsInf(hi, 0)) {
		errs = append(errs, fmt.Errorf("rl: IS correction threshold needs 0 ≤ lo ≤ hi, hi > 0 and finite, got [%g, %g]", lo, hi))
	}
	return errors.Join(errs...)
}

// ISStats describes the weights ISWeights made. Token fractions are over
// valid tokens, sequence fractions over non-empty sequences.
type ISStats struct {
	WeightMean     float64 // mean w_t
	MaskedFrac     float64 // tokens whose weight mask mode zeroed
	MaskedSeqFrac  float64 // sequences with at least one such token
	ClippedFrac    float64 // tokens whose ratio clip or trunc mode changed
	ClippedSeqFrac float64 // sequences with at least one such token
}

// ISWeights returns the importance weights w [B, A] of the correction
// (formulas above) and what they did. oldLogProbs (the trainer's π_old),
// rolloutLogProbs (the engine's) and mask are [B, A] constants; w is 0 at
// masked positions. The ratios are computed in float64 from the float32
// inputs and rounded once. A ratio that overflows (+Inf) is clipped or
// truncated to hi, or rejected by mask (weight 0, never Inf·0).
func ISWeights(cfg ISCorrectionConfig, oldLogProbs, rolloutLogProbs, mask *tensor.Tensor) (*tensor.Tensor, ISStats) {
	b, a := mustBA("ISWeights", mask, oldLogProbs, rolloutLogProbs)
	level, mode := cfg.Type.Spec()
	lo, hi := cfg.Threshold.Lo, cfg.Threshold.Hi
	w := tensor.New(b, a)
	var st ISStats
	var tokens, seqs, wSum float64
	lr := make([]float64, a)
	for i := range b {
		var sum, n float64
		for t := range a {
			lr[t] = 0
			if m := mask.Data[i*a+t]; m != 0 {
				lr[t] = float64(oldLogProbs.Data[i*a+t]) - float64(rolloutLogProbs.Data[i*a+t])
				sum += lr[t]
				n++
			}
		}
		if n == 0 {
			continue
		}
		var seqRatio float64
		switch level {
		case ISSeq:
			seqRatio = math.Exp(sum)
		case ISGeo:
			seqRatio = math.Exp(sum / n)
		}
		var masked, clipped bool
		for t := range a {
			if mask.Data[i*a+t] == 0 {
				continue
			}
			rt := math.Exp(lr[t])
			ratio := rt
			if level != ISToken {
				ratio = seqRatio
			}
			var v float64
			switch mode {
			case ISMask:
				if ratio >= lo && ratio <= hi {
					v = rt
				} else {
					st.MaskedFrac++
					masked = true
				}
			case ISClip:
				v = min(max(ratio, lo), hi)
				if ratio < lo || ratio > hi {
					st.ClippedFrac++
					clipped = true
				}
			case ISTrunc:
				v = min(ratio, hi)
				if ratio > hi {
					st.ClippedFrac++
					clipped = true
				}
			default:
				panic(fmt.Sprintf("rl: ISWeights: unknown IS mode %q", mode))
			}
			w.Data[i*a+t] = float32(v)
			wSum += float64(float32(v))
			tokens++
		}
		seqs++
		if masked {
			st.MaskedSeqFrac++
		}
		if clipped {
			st.ClippedSeqFrac++
		}
	}
	if tokens > 0 {
		st.WeightMean, st.MaskedFrac, st.ClippedFrac = wSum/tokens, st.MaskedFrac/tokens, st.ClippedFrac/tokens
	}
	if seqs > 0 {
		st.MaskedSeqFrac, st.ClippedSeqFrac = st.MaskedSeqFrac/seqs, st.ClippedSeqFrac/seqs
	}
	return w, st
}

// PolicyInputs returns what PolicyLoss reads under the correction for a
// policy loss of type t: the log-probs its ratio is taken against and the
// per-token weights (nil: none). As OpenRLHF:
//
//	disabled:  oldLogProbs, nil
//	ppo:       oldLogProbs, ISWeights(…)
//	gspo:      rolloutLogProbs, nil   (the sequence ratio is π/π_rollout)
//
// The stats are ISWeights' (zero when no weights are made).
func (c ISCorrectionConfig) PolicyInputs(t PolicyLossType, oldLogProbs, rolloutLogProbs, mask *tensor.Tensor) (ratioOld, weights *tensor.Tensor, st ISStats) {
	switch {
	case !c.Enable:
		return oldLogProbs, nil, st
	case t == PolicyGSPO:
		return rolloutLogProbs, nil, st
	}
	weights, st = ISWeights(c, oldLogProbs, rolloutLogProbs, mask)
	return oldLogProbs, weights, st
}

// Mismatch measures how far the rollout engine's log-probs are from the
// trainer's on the sampled tokens; means are over valid tokens (OpenRLHF's
// masked_mean with dim=None), with r_t = log π_old,t − log π_rollout,t and
// ρ_t = exp(r_t).
type Mismatch struct {
	// KL is the k1 estimate of KL(π_rollout ‖ π_old) from the rollout's
	// own samples: mean of −r_t (OpenRLHF's vllm_kl, verl's mismatch_kl).
	// It can be negative.
	KL float64
	// K3KL is the k3 estimate of the same KL: mean of ρ_t − 1 − r_t
	// (verl's mismatch_k3_kl); never negative.
	K3KL float64
	// AbsDiff is the mean |r_t|.
	AbsDiff float64
	// RatioMean, RatioMin and RatioMax describe the token ratios ρ_t.
	RatioMean, RatioMin, RatioMax float64
	Tokens                        float64 // valid tokens measured
}

// LogProbMismatch returns the Mismatch of the rollout engine's log-probs
// against the trainer's π_old, both [B, A] over mask [B, A].
func LogProbMismatch(oldLogProbs, rolloutLogProbs, mask *tensor.Tensor) Mismatch {
	mustBA("LogProbMismatch", mask, oldLogProbs, rolloutLogProbs)
	var m Mismatch
	first := true
	for i, v := range mask.Data {
		if v == 0 {
			continue
		}
		r := float64(oldLogProbs.Data[i]) - float64(rolloutLogProbs.Data[i])
		rho := math.Exp(r)
		m.KL -= r
		m.K3KL += rho - 1 - r
		m.AbsDiff += math.Abs(r)
		m.RatioMean += rho
		if first {
			m.RatioMin, m.RatioMax, first = rho, rho, false
		}
		m.RatioMin, m.RatioMax = min(m.RatioMin, rho), max(m.RatioMax, rho)
		m.Tokens++
	}
	if m.Tokens > 0 {
		m.KL, m.K3KL, m.AbsDiff, m.RatioMean = m.KL/m.Tokens, m.K3KL/m.Tokens, m.AbsDiff/m.Tokens, m.RatioMean/m.Tokens
	}
	return m
}
