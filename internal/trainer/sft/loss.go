package sft

import (
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Loss is the causal-LM loss on the trained-on tokens:
//
//	L = −Σ_n log π(target_n | context_n) / normTokens
//
// over positions whose target is not data.IgnoreIndex. logProbs holds
// log π(target_n) per position (tensor.TokenLogProbs; 0 where ignored).
// normTokens is the number of loss tokens of the whole optimizer step, not
// of this micro-batch, so that summing the micro-batch losses gives the
// token mean of the step however it is split (OpenRLHF's aggregate_loss
// with batch_num_tokens).
func Loss(tp *tensor.Tape, logProbs *tensor.Tensor, targets []int32, normTokens int) *tensor.Tensor {
	w := tensor.New(logProbs.Shape...)
	scale := -1 / float32(max(normTokens, 1))
	for i, t := range targets {
		if t != data.IgnoreIndex {
			w.Data[i] = scale
		}
	}
	return tensor.Sum(tp, tensor.Mul(tp, logProbs, w))
}
