package rl

import (
	"errors"
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Range is a closed interval [Lo, Hi]. The zero value {0, 0} means "no
// range" where a Range is optional (reward clipping).
type Range struct{ Lo, Hi float64 }

// IsZero reports whether r is the zero value (disabled).
func (r Range) IsZero() bool { return r == Range{} }

// Validate checks Lo ≤ Hi.
func (r Range) Validate() error {
	if math.IsNaN(r.Lo) || math.IsNaN(r.Hi) || r.Lo > r.Hi {
		return fmt.Errorf("rl: range low %g must be ≤ high %g", r.Lo, r.Hi)
	}
	return nil
}

// ShapeRewards turns one scalar reward per sequence into per-token rewards
// (OpenRLHF's compute_reward; Ziegler et al. 2019, Ouyang et al. 2022):
//
//	r_t = −β·KL_t + [t = last valid token]·clip(r, Lo, Hi)
//
// rewards is [B]; kl and mask are [B, A]; kl may be nil (no KL shaping).
// β ≤ 0 disables the KL term; a zero clip Range disables clipping. The
// output is 0 at masked positions (OpenRLHF keeps the padding's KL there,
// which only shows in its logged "return"). A sequence with no valid token
// gets no reward.
func ShapeRewards(rewards []float32, kl, mask *tensor.Tensor, klCoef float64, clip Range) *tensor.Tensor {
	b, a := mustBA("ShapeRewards", mask)
	if kl != nil {
		mustBA("ShapeRewards", mask, kl)
	}
	if len(rewards) != b {
		panic(fmt.Sprintf("rl: ShapeRewards: %d rewards for mask %v", len(rewards), mask.Shape))
	}
	beta := math.Max(klCoef, 0)
	out := tensor.New(b, a)
	for i := range b {
		row := i * a
		for t := range a {
			if mask.Data[row+t] == 0 || kl == nil {
				continue
			}
			out.Data[row+t] = float32(-beta * float64(kl.Data[row+t]))
		}
		if last := lastValid(mask.Data[row : row+a]); last >= 0 {
			r := float64(rewards[i])
			if !clip.IsZero() {
				r = min(max(r, clip.Lo), clip.Hi)
			}
			out.Data[row+last] = float32(r + float64(out.Data[row+last]))
		}
	}
	return out
}

// lastValid returns the index of the last position with mask > 0.5 (the EOS
// token of a right-padded response), or −1.
func lastValid(mask []float32) int {
	for t := len(mask) - 1; t >= 0; t-- {
		if mask[t] > 0.5 {
			return t
		}
	}
	return -1
}

// RewardNorm normalises reward-model scores with the mean and standard
// deviation stored in the model's config.json by reward-model training
// (OpenRLHF --reward.normalize_enable): r ← (r − Mean)/Std.
type RewardNorm struct {
	Mean float64 // μ of the scores on the RM's evaluation set
	Std  float64 // σ of those scores; must be > 0
}

// Validate checks Std > 0.
func (n RewardNorm) Validate() error {
	if !(n.Std > 0) || math.IsInf(n.Std, 0) || math.IsNaN(n.Mean) {
		return fmt.Errorf("rl: reward normalisation needs a finite mean and std > 0, got mean %g std %g", n.Mean, n.Std)
	}
	return nil
}

// Apply returns (r − Mean)/Std for every reward.
func (n RewardNorm) Apply(rewards []float32) []float32 {
	out := make([]float32, len(rewards))
	for i, r := range rewards {
		out[i] = float32((float64(r) - n.Mean) / n.Std)
	}
	return out
}

// LengthPenalty adjusts scalar rewards for response length
// (OpenRLHF length_penalty.py). The zero value disables both parts.
type LengthPenalty struct {
	// OverlongBufferLen is DAPO's L_cache in tokens (Yu et al. 2025,
	// https://arxiv.org/abs/2503.14476); 0 disables the overlong penalty
	// (--reward.overlong_buffer_len).
	OverlongBufferLen float64 `flag:"overlong_buffer_len"`
	// OverlongFactor is the largest penalty, reached at max_new_tokens
	// (--reward.overlong_penalty_factor, OpenRLHF default 1).
	OverlongFactor float64 `flag:"overlong_penalty_factor"`
	// StopProperly enables ProRL's penalty on truncated responses
	// (finish reason "length"; --reward.stop_properly_penalty_coef set).
	StopProperly bool
	// StopProperlyCoef in [0, 1] scales a truncated response's reward;
	// a negative value replaces that reward with itself (e.g. −0.5).
	StopProperlyCoef float64 `flag:"stop_properly_penalty_coef"`
}

// Validate checks the penalty against the generation budget.
func (p LengthPenalty) Validate(maxNewTokens int) error {
	var errs []error
	if p.OverlongBufferLen < 0 || p.OverlongBufferLen > float64(maxNewTokens) {
		errs = append(errs, fmt.Errorf("rl: overlong buffer length %g must be in [0, max_new_tokens %d]", p.OverlongBufferLen, maxNewTokens))
	}
	if p.OverlongBufferLen > 0 && p.OverlongFactor < 0 {
		errs = append(errs, fmt.Errorf("rl: overlong penalty factor must be ≥ 0, got %g", p.OverlongFactor))
	}
	if p.StopProperly && p.StopProperlyCoef > 1 {
		errs = append(errs, fmt.Errorf("rl: stop-properly penalty coefficient must be in [0, 1] or negative, got %g", p.StopProperlyCoef))
	}
	return errors.Join(errs...)
}

// OverlongPenalty is DAPO's soft overlong punishment of one response of
// length tokens (≤ 0, added to its reward):
//
//	L_exp = L_max − L_cache
//	p = −min(length − L_exp, L_cache)/L_cache · factor   when length > L_exp, else 0
func OverlongPenalty(length, maxNewTokens int, bufferLen, factor float64) float64 {
	if bufferLen <= 0 {
		return 0
	}
	exceed := math.Min(float64(length)-(float64(maxNewTokens)-bufferLen), bufferLen)
	if exceed <= 0 {
		return 0
	}
	return -exceed / bufferLen * factor
}

// Apply returns the adjusted rewards [B] and how many sequences each part
// touched. lengths [B] are response lengths in tokens; truncated [B] marks
// responses that hit max_new_tokens (nil: none). The overlong penalty is
// added first, then the stop-properly penalty, as in OpenRLHF.
func (p LengthPenalty) Apply(rewards []float32, lengths []int, truncated []bool, maxNewTokens int) (out []float32, overlong, cut int) {
	if len(lengths) != len(rewards) || (truncated != nil && len(truncated) != len(rewards)) {
		panic(fmt.Sprintf("rl: LengthPenalty.Apply: %d rewards, %d lengths, %d truncated flags", len(rewards), len(lengths), len(truncated)))
	}
	out = append([]float32(nil), rewards...)
	for i := range out {
		if pen := OverlongPenalty(lengths[i], maxNewTokens, p.OverlongBufferLen, p.OverlongFactor); pen != 0 {
			out[i] = float32(float64(out[i]) + pen)
			overlong++
		}
		if p.StopProperly && truncated != nil && truncated[i] {
			if p.StopProperlyCoef < 0 {
				out[i] = float32(p.StopProperlyCoef)
			} else {
				out[i] = float32(float64(out[i]) * p.StopProperlyCoef)
			}
			cut++
		}
	}
	return out, overlong, cut
}

// DynamicFilter is DAPO's dynamic sampling predicate on the scores of one
// prompt's G samples (OpenRLHF --algo.dynamic_filtering_range): a group is
// kept when its mean score lies strictly inside (Low, High) and, unless
// KeepUniform, its scores are not all equal. A uniform group gives every
// group estimator zero advantages, so it only costs compute; DAPO's own
// criterion is exactly "not all correct and not all wrong". OpenRLHF checks
// only the mean; with 0/1 scores and the default (0, 1) the two agree.
type DynamicFilter struct {
	Low, High   float64 // open interval for the group's mean score; OpenRLHF default (0, 1)
	KeepUniform bool    // keep groups whose scores are all equal (OpenRLHF's behaviour)
}

// DefaultDynamicFilter returns the (0, 1) range that drops uniform groups.
func DefaultDynamicFilter() DynamicFilter { return DynamicFilter{Low: 0, High: 1} }

// Validate checks Low < High.
func (f DynamicFilter) Validate() error {
	if !(f.Low < f.High) {
		return fmt.Errorf("rl: dynamic filtering range low %g must be < high %g", f.Low, f.High)
	}
	return nil
}

// Keep reports whether a group with these scores is trained on.
func (f DynamicFilter) Keep(scores []float32) bool {
	if len(scores) == 0 {
		return false
	}
	var sum float64
	uniform := true
	for _, s := range scores {
		sum += float64(s)
		uniform = uniform && s == scores[0]
	}
	mean := sum / float64(len(scores))
	if !(f.Low < mean && mean < f.High) {
		return false
	}
	return f.KeepUniform || !uniform
}
