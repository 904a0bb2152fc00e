package rl

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// GAE returns generalized advantage estimates and returns
// (Schulman et al. 2015, https://arxiv.org/abs/1506.02438), computed by a
// reverse loop over the response as OpenRLHF's get_advantages_and_returns:
//
//	δ_t = r_t + γ·V_{t+1} − V_t        (V_A = 0 past the last position)
//	Â_t = δ_t + γλ·Â_{t+1}
//	R_t = Â_t + V_t                    (the critic's regression target)
//
// which expands to Â_1 = Σ_k (γλ)^k·r_{1+k} − V_1 + Σ_k γ^k·λ^{k−1}·(1−λ)·V_{1+k}.
// rewards, values and mask are [B, A]. Rewards and values are multiplied by
// the mask first, so masked positions contribute nothing; a masked position
// inside a response still counts as one discount step, as in OpenRLHF.
// Unlike OpenRLHF, both outputs are 0 at masked positions (OpenRLHF leaves
// the carried value there); losses mask them anyway.
func GAE(rewards, values, mask *tensor.Tensor, gamma, lambda float64) (adv, ret *tensor.Tensor) {
	b, a := mustBA("GAE", mask, rewards, values)
	adv, ret = tensor.New(b, a), tensor.New(b, a)
	for i := range b {
		row := i * a
		var last, next float64 // Â_{t+1}, masked V_{t+1}
		for t := a - 1; t >= 0; t-- {
			m := float64(mask.Data[row+t])
			v := float64(values.Data[row+t]) * m
			delta := float64(rewards.Data[row+t])*m + gamma*next - v
			last = delta + gamma*lambda*last
			next = v
			if m != 0 {
				adv.Data[row+t] = float32(last)
				ret.Data[row+t] = float32(last + v)
			}
		}
	}
	return adv, ret
}

// DiscountedReturns returns the REINFORCE return of every token
// (OpenRLHF's get_cumulative_returns):
//
//	G_t = r_t + γ·G_{t+1},  G_A = 0
//
// rewards and mask are [B, A]; masked rewards count as 0 and the output is
// 0 at masked positions.
func DiscountedReturns(rewards, mask *tensor.Tensor, gamma float64) *tensor.Tensor {
	b, a := mustBA("DiscountedReturns", mask, rewards)
	ret := tensor.New(b, a)
	for i := range b {
		row := i * a
		var g float64
		for t := a - 1; t >= 0; t-- {
			m := float64(mask.Data[row+t])
			g = float64(rewards.Data[row+t])*m + gamma*g
			if m != 0 {
				ret.Data[row+t] = float32(g)
			}
		}
	}
	return ret
}

// GroupBaseline subtracts each prompt's baseline from the scalar rewards
// [B] of its G contiguous samples, as OpenRLHF does before reward shaping:
//
//	rloo:                   r_i − (Σ_j r_j − r_i)/(G−1)   (leave-one-out)
//	reinforce_baseline,
//	dr_grpo:                r_i − mean_G(r)
//	group_norm (GRPO):      (r_i − mean_G(r)) / (std_G(r) + 1e-9)
//
// std_G is the unbiased (G−1) standard deviation, as torch.std. gae and
// reinforce have no group baseline and get a copy of rewards. Means are
// accumulated in float64, so a group of equal rewards gives exactly 0.
// It panics when len(rewards) is not a multiple of g, or when g < 2 for a
// group estimator (ValidateSamplesPerPrompt checks that at the edge).
func GroupBaseline(e Estimator, rewards []float32, g int) []float32 {
	out := append([]float32(nil), rewards...)
	if !e.GroupBased() {
		return out
	}
	if g < 2 || len(rewards)%g != 0 {
		panic(fmt.Sprintf("rl: GroupBaseline: %d rewards cannot form groups of %d samples for %s", len(rewards), g, e))
	}
	for lo := 0; lo < len(rewards); lo += g {
		grp := rewards[lo : lo+g]
		sum, mean, std := groupStats(grp)
		for i, r := range grp {
			x := float64(r)
			switch e {
			case EstimatorRLOO:
				x -= (sum - x) / float64(g-1)
			case EstimatorGroupNorm:
				x = (x - mean) / (std + 1e-9)
			default: // reinforce_baseline, dr_grpo
				x -= mean
			}
			out[lo+i] = float32(x)
		}
	}
	return out
}

// GroupStd returns, for every sample, the unbiased standard deviation of
// the rewards of its group of g (OpenRLHF logs it as group_reward_std).
func GroupStd(rewards []float32, g int) []float32 {
	if g < 2 || len(rewards)%g != 0 {
		panic(fmt.Sprintf("rl: GroupStd: %d rewards cannot form groups of %d samples", len(rewards), g))
	}
	out := make([]float32, len(rewards))
	for lo := 0; lo < len(rewards); lo += g {
		_, _, std := groupStats(rewards[lo : lo+g])
		for i := range g {
			out[lo+i] = float32(std)
		}
	}
	return out
}

// groupStats returns the sum, mean and unbiased standard deviation (g ≥ 2).
func groupStats(grp []float32) (sum, mean, std float64) {
	for _, r := range grp {
		sum += float64(r)
	}
	mean = sum / float64(len(grp))
	var ss float64
	for _, r := range grp {
		d := float64(r) - mean
		ss += d * d
	}
	return sum, mean, math.Sqrt(ss / float64(len(grp)-1))
}

// Whiten normalises advantages [B, A] over all valid tokens of the batch
// (OpenRLHF's global advantage normalisation):
//
//	μ = Σ Â·m / Σ m,  σ² = Σ (Â − μ)²·m / Σ m
//	Â ← (Â − μ) / sqrt(max(σ², 1e-8))
//
// With noStd (--algo.advantage.no_std_norm) only μ is subtracted. Pass the
// whole rollout batch, not a micro-batch, or the statistics are local.
// Masked positions are 0 in the output (OpenRLHF leaves −μ/σ there).
func Whiten(adv, mask *tensor.Tensor, noStd bool) *tensor.Tensor {
	mustBA("Whiten", mask, adv)
	out := tensor.New(adv.Shape...)
	var n, s float64
	for i, m := range mask.Data {
		n += float64(m)
		s += float64(adv.Data[i]) * float64(m)
	}
	if n == 0 {
		return out
	}
	mean := s / n
	rstd := 1.0
	if !noStd {
		var ss float64
		for i, m := range mask.Data {
			d := float64(adv.Data[i]) - mean
			ss += d * d * float64(m)
		}
		rstd = 1 / math.Sqrt(math.Max(ss/n, 1e-8))
	}
	for i, m := range mask.Data {
		if m != 0 {
			out.Data[i] = float32((float64(adv.Data[i]) - mean) * rstd)
		}
	}
	return out
}

// mustBA checks that mask is [B, A] and every other tensor has its shape;
// a mismatch is a programmer error.
func mustBA(op string, mask *tensor.Tensor, others ...*tensor.Tensor) (b, a int) {
	if len(mask.Shape) != 2 {
		panic(fmt.Sprintf("rl: %s: mask must be [B, A], got %v", op, mask.Shape))
	}
	for _, t := range others {
		if !tensor.SameShape(t.Shape, mask.Shape) {
			panic(fmt.Sprintf("rl: %s: shape %v does not match mask %v", op, t.Shape, mask.Shape))
		}
	}
	return mask.Shape[0], mask.Shape[1]
}
