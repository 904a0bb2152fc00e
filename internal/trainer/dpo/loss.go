package dpo

import (
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// LossConfig selects the preference loss (OpenRLHF's --model.beta,
// --model.ipo_enable, --model.label_smoothing).
type LossConfig struct {
	Beta           float64 `flag:"model.beta"`            // β: strength of the implicit KL to the reference
	IPO            bool    `flag:"model.ipo_enable"`      // IPO instead of DPO
	LabelSmoothing float64 `flag:"model.label_smoothing"` // ε of conservative DPO (cDPO); 0 = DPO
}

// Loss returns the summed preference loss of P pairs divided by norm (the
// pairs of the whole optimizer step), from the sequence log-probabilities
// of the policy [P] and the frozen reference:
//
//	h = (log π(y_c) − log π(y_r)) − (log π_ref(y_c) − log π_ref(y_r))
//	DPO  (Rafailov et al. 2023, eq. 7):  −log σ(β·h)
//	cDPO (Mitchell 2023, eq. 3):         −(1−ε)·log σ(β·h) − ε·log σ(−β·h)
//	IPO  (Azar et al. 2023, eq. 17):     (h − 1/(2β))²
//
// It also returns the implicit rewards β·(log π − log π_ref) of the chosen
// and rejected responses.
func Loss(tp *tensor.Tape, c LossConfig, policyChosen, policyRejected *tensor.Tensor, refChosen, refRejected []float32, norm int) (loss *tensor.Tensor, chosenReward, rejectedReward []float32) {
	p := len(refChosen)
	refDiff := tensor.New(p)
	chosenReward, rejectedReward = make([]float32, p), make([]float32, p)
	for i := range p {
		refDiff.Data[i] = refChosen[i] - refRejected[i]
		chosenReward[i] = float32(c.Beta) * (policyChosen.Data[i] - refChosen[i])
		rejectedReward[i] = float32(c.Beta) * (policyRejected.Data[i] - refRejected[i])
	}
	h := tensor.Sub(tp, tensor.Sub(tp, policyChosen, policyRejected), refDiff)
	var losses *tensor.Tensor
	switch {
	case c.IPO:
		losses = tensor.Square(tp, tensor.AddScalar(tp, h, float32(-1/(2*c.Beta))))
	case c.LabelSmoothing != 0:
		bh := tensor.Scale(tp, h, float32(c.Beta))
		pos := tensor.Scale(tp, tensor.LogSigmoid(tp, bh), float32(-(1 - c.LabelSmoothing)))
		neg := tensor.Scale(tp, tensor.LogSigmoid(tp, tensor.Scale(tp, bh, -1)), float32(-c.LabelSmoothing))
		losses = tensor.Add(tp, pos, neg)
	default:
		losses = tensor.Scale(tp, tensor.LogSigmoid(tp, tensor.Scale(tp, h, float32(c.Beta))), -1)
	}
	return tensor.Scale(tp, tensor.Sum(tp, losses), 1/float32(max(norm, 1))), chosenReward, rejectedReward
}

// NLL is the negative log-likelihood regulariser on the chosen responses
// (OpenRLHF's nll_loss, after the Llama 3.1 report): the mean over pairs of
// the per-token mean of −log π(y_c), summed and divided by norm pairs.
// sums and counts are the chosen sequences' log-prob sums [P] and token
// counts.
func NLL(tp *tensor.Tape, sums *tensor.Tensor, counts []int, norm int) *tensor.Tensor {
	w := tensor.New(len(counts))
	for i, n := range counts {
		if n > 0 {
			w.Data[i] = -1 / float32(n*max(norm, 1))
		}
	}
	return tensor.Sum(tp, tensor.Mul(tp, sums, w))
}

// SeqLogProbs sums the per-position log-probs lp [B·T] (as from
// tensor.TokenLogProbs with b.Targets) over each sample of the batch, [P],
// and counts each sample's scored tokens. It works for padded and packed
// layouts alike: the positions of each span are gathered into a [P, L]
// block (L the longest span) whose unused slots are masked to zero.
func SeqLogProbs(tp *tensor.Tape, lp *tensor.Tensor, b *data.Batch) (*tensor.Tensor, []int) {
	p := len(b.Spans)
	l := 0
	for _, s := range b.Spans {
		l = max(l, s.Len)
	}
	idx := make([]int, p*l)
	mask := tensor.New(p, l)
	counts := make([]int, p)
	for i, s := range b.Spans {
		for j := 0; j < s.Len; j++ {
			n := s.Flat(b.T, j)
			idx[i*l+j] = n
			if b.Targets[n] != data.IgnoreIndex {
				mask.Data[i*l+j] = 1
				counts[i]++
			}
		}
	}
	flat := tensor.Reshape(tp, lp, lp.Numel(), 1)
	block := tensor.Reshape(tp, tensor.GatherRows(tp, flat, idx), p, l)
	return tensor.SumLastDim(tp, tensor.Mul(tp, block, mask)), counts
}

// split returns the first p and the remaining elements of x [2P] as two
// tensors (chosen then rejected, the layout of a pair batch).
func split(tp *tensor.Tape, x *tensor.Tensor, p int) (first, rest *tensor.Tensor) {
	col := tensor.Reshape(tp, x, x.Numel(), 1)
	a, b := make([]int, p), make([]int, x.Numel()-p)
	for i := range a {
		a[i] = i
	}
	for i := range b {
		b[i] = p + i
	}
	return tensor.Reshape(tp, tensor.GatherRows(tp, col, a), p), tensor.Reshape(tp, tensor.GatherRows(tp, col, b), len(b))
}
