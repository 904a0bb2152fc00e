package rl

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// LossNorm holds the denominators of Aggregate for one optimizer step.
// The zero value normalises by the micro-batch itself. When a step is split
// into micro-batches (gradient accumulation), set it to the step's totals
// (StepLossNorm): the micro-batch losses and gradients then simply add up to
// those of the whole step, however unevenly the tokens fall. This replaces
// OpenRLHF's batch_num_tokens / global_batch_size (whose extra dp_size and
// 1/gas factors only undo DeepSpeed's averaging, which gorlhf does not do).
type LossNorm struct {
	Tokens    float64 // valid tokens in the step (TokenMean); 0 = this micro-batch's
	Sequences float64 // non-empty sequences in the step (SeqMeanTokenMean); 0 = this micro-batch's
}

// StepLossNorm returns the totals over the masks [B_i, A_i] of every
// micro-batch of one optimizer step.
func StepLossNorm(masks ...*tensor.Tensor) LossNorm {
	var n LossNorm
	for _, m := range masks {
		counts := rowCounts(m)
		for _, c := range counts {
			n.Tokens += c
			if c > 0 {
				n.Sequences++
			}
		}
	}
	return n
}

// Aggregate reduces a per-token loss [B, A] to a scalar over the mask:
//
//	token_mean:           Σ_{b,t} ℓ·m / N_tokens
//	seq_mean_token_mean:  Σ_b [n_b > 0]·(Σ_t ℓ·m / n_b) / N_sequences
//
// where n_b = Σ_t m_{b,t} and the N come from norm (or from this batch
// when zero). Sequences with no valid token are left out; an empty batch
// gives 0. This is OpenRLHF's aggregate_loss.
func Aggregate(tp *tensor.Tape, loss, mask *tensor.Tensor, agg Aggregation, norm LossNorm) *tensor.Tensor {
	b, _ := mustBA("Aggregate", mask, loss)
	masked := tensor.Mul(tp, loss, mask)
	switch agg {
	case TokenMean:
		n := norm.Tokens
		if n == 0 {
			for _, m := range mask.Data {
				n += float64(m)
			}
		}
		return scaleOrZero(tp, tensor.Sum(tp, masked), n)
	case SeqMeanTokenMean:
		counts := rowCounts(mask)
		w := tensor.New(b)
		var seqs float64
		for i, c := range counts {
			if c > 0 {
				w.Data[i] = float32(1 / (c + 1e-8))
				seqs++
			}
		}
		if norm.Sequences != 0 {
			seqs = norm.Sequences
		}
		perSeq := tensor.Mul(tp, tensor.SumLastDim(tp, masked), w)
		return scaleOrZero(tp, tensor.Sum(tp, perSeq), seqs)
	}
	panic(fmt.Sprintf("rl: Aggregate: unknown aggregation %q", agg))
}

// scaleOrZero returns s/n, or 0·s when n is 0 (nothing to average).
func scaleOrZero(tp *tensor.Tape, s *tensor.Tensor, n float64) *tensor.Tensor {
	if n == 0 {
		return tensor.Scale(tp, s, 0)
	}
	return tensor.Scale(tp, s, float32(1/n))
}

// rowCounts returns Σ_t mask[b, t] for every row.
func rowCounts(mask *tensor.Tensor) []float64 {
	b, a := mustBA("rowCounts", mask)
	out := make([]float64, b)
	for i := range b {
		for _, m := range mask.Data[i*a : (i+1)*a] {
			out[i] += float64(m)
		}
	}
	return out
}

// broadcastRows repeats x [B] along a new last axis of length a: [B, a].
// It is a [B,1]·[1,a] product with ones, so the gradient sums back over a.
func broadcastRows(tp *tensor.Tape, x *tensor.Tensor, a int) *tensor.Tensor {
	ones := tensor.New(1, a)
	for i := range ones.Data {
		ones.Data[i] = 1
	}
	return tensor.MatMul(tp, tensor.Reshape(tp, x, x.Numel(), 1), ones, false, false)
}

// maskedStats returns the mean, min and max of x over positions with
// mask ≠ 0 (zeros when there are none). It is for metrics, not gradients.
func maskedStats(x, mask []float32) (mean, lo, hi float64) {
	var n, s float64
	first := true
	for i, m := range mask {
		if m == 0 {
			continue
		}
		v := float64(x[i])
		if first {
			lo, hi, first = v, v, false
		}
		lo, hi = min(lo, v), max(hi, v)
		s += v * float64(m)
		n += float64(m)
	}
	if n == 0 {
		return 0, 0, 0
	}
	return s / n, lo, hi
}

// maskedFrac returns the masked mean of the indicator pred(i).
func maskedFrac(mask []float32, pred func(i int) bool) float64 {
	var n, k float64
	for i, m := range mask {
		n += float64(m)
		if m != 0 && pred(i) {
			k += float64(m)
		}
	}
	if n == 0 {
		return 0
	}
	return k / n
}
