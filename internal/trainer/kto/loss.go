package kto

import (
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// LossConfig holds KTO's loss settings (OpenRLHF's --beta,
// --desirable_loss_weight, --undesirable_loss_weight).
type LossConfig struct {
	Beta              float64 `flag:"model.beta"`                    // β: strength of the implicit KL to the reference
	DesirableWeight   float64 `flag:"model.desirable_loss_weight"`   // λ_D, the weight of a desirable sample's loss
	UndesirableWeight float64 `flag:"model.undesirable_loss_weight"` // λ_U, the weight of an undesirable sample's loss
}

// KL is KTO's reference point z₀ (Ethayarajh et al. 2024, eq. 7) as
// OpenRLHF v0.8's KTOLoss estimates it: the mean, over a micro-batch's
// mismatched sequences (prompt x_i with the response of sample i+1), of
// log π(y′|x) − log π_ref(y′|x). It carries no gradient; the caller
// averages it over the data-parallel ranks and then applies Clamp.
func KL(policy, ref []float32) float64 {
	if len(policy) == 0 {
		return 0
	}
	var s float32
	for i := range policy {
		s += policy[i] - ref[i]
	}
	return float64(s / float32(len(policy)))
}

// Clamp is the last step of the reference point: max(z₀, 0).
func Clamp(kl float64) float64 { return max(kl, 0) }

// Loss returns the summed weighted KTO loss of N samples divided by norm
// (the samples of the whole optimizer step), from the policy's sequence
// log-probabilities [N], the frozen reference's, each sample's label, and
// the clamped reference point kl (a constant):
//
//	r = log π(y|x) − log π_ref(y|x)
//	desirable:    λ_D · (1 − σ(β·(r − kl)))
//	undesirable:  λ_U · (1 − σ(β·(kl − r)))
//
// (OpenRLHF's KTOLoss; 1 − σ(z) is computed as σ(−z)). It also returns
// the implicit rewards β·r of the desirable and the undesirable samples,
// in sample order.
func Loss(tp *tensor.Tape, c LossConfig, policy *tensor.Tensor, ref []float32, desirable []bool, kl float64, norm int) (loss *tensor.Tensor, desirableReward, undesirableReward []float32) {
	n := len(ref)
	beta := float32(c.Beta)
	// The loss is w_i·σ(z_i) with z_i = s_i·β·(kl − r_i), s_i = +1 for a
	// desirable sample and −1 for an undesirable one.
	refT, scale, weight := tensor.FromSlice(ref, n), tensor.New(n), tensor.New(n)
	for i := range n {
		s, w := float32(-1), float32(c.UndesirableWeight)
		if desirable[i] {
			s, w = 1, float32(c.DesirableWeight)
		}
		scale.Data[i] = -s * beta
		weight.Data[i] = w / float32(max(norm, 1))
		r := beta * (policy.Data[i] - ref[i])
		if desirable[i] {
			desirableReward = append(desirableReward, r)
		} else {
			undesirableReward = append(undesirableReward, r)
		}
	}
	z := tensor.Mul(tp, tensor.AddScalar(tp, tensor.Sub(tp, policy, refT), float32(-kl)), scale)
	return tensor.Sum(tp, tensor.Mul(tp, tensor.Sigmoid(tp, z), weight)), desirableReward, undesirableReward
}
