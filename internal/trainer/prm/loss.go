package prm

import (
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// TagLogits picks the classifier logits at the step tags: rows of logits
// [B, T, V] (flat row b·T+t) → [P, V], then, when cols is not nil, the
// reward tokens' columns → [P, K] (OpenRLHF's logits[placeholder_mask],
// then logits[..., reward_token_ids]). Columns are picked with a one-hot
// matrix product, which is exact.
func TagLogits(tp *tensor.Tape, logits *tensor.Tensor, rows []int, cols []int32) *tensor.Tensor {
	v := logits.Dim(-1)
	flat := tensor.Reshape(tp, logits, logits.Numel()/v, v)
	z := tensor.GatherRows(tp, flat, rows) // [P, V]
	if cols == nil {
		return z
	}
	pick := tensor.New(v, len(cols)) // [V, K] one-hot, no gradient
	for k, c := range cols {
		pick.Data[int(c)*len(cols)+k] = 1
	}
	return tensor.MatMul(tp, z, pick, false, false)
}

// Targets lays out the label distributions [P, K] of samples' tags, in
// sample then tag order: one-hot rows for hard labels (class index), and
// [p, 1−p] over the positive and negative reward tokens for soft ones
// (OpenRLHF's PRMLoss stacks positive_labels and 1 − positive_labels).
func Targets(samples []Sample, classes int) []float32 {
	n := 0
	for _, s := range samples {
		n += len(s.Tags)
	}
	out := make([]float32, n*classes)
	row := 0
	for _, s := range samples {
		for j := range s.Tags {
			if s.Soft != nil {
				out[row*classes] = s.Soft[j]
				out[row*classes+1] = 1 - s.Soft[j]
			} else {
				out[row*classes+int(s.Hard[j])] = 1
			}
			row++
		}
	}
	return out
}

// Loss is OpenRLHF's PRMLoss, the cross-entropy of the classifier at the
// step tags against the labels, scaled:
//
//	L = −scale · Σ_p Σ_k target[p,k] · log softmax(z_p)_k
//
// z [P, K] are the tag logits (TagLogits), target [P·K] their label
// distributions (Targets). PyTorch's cross-entropy takes the mean over
// the tags (scale = 1/P); a step of several micro-batches averages their
// means, as DeepSpeed's gradient accumulation does (scale = 1/(P·M)).
func Loss(tp *tensor.Tape, z *tensor.Tensor, target []float32, scale float32) *tensor.Tensor {
	w := tensor.New(z.Shape...)
	for i, t := range target {
		w.Data[i] = -scale * t
	}
	return tensor.Sum(tp, tensor.Mul(tp, tensor.LogSoftmax(tp, z), w))
}

// Correct counts the tags whose top logit is the label's top class
// (argmax, first on ties, as torch.argmax), split by whether the label's
// top class is the first one (the positive reward token): [right, total]
// for positive and for the other labels.
func Correct(z *tensor.Tensor, target []float32) (pos, neg [2]int) {
	k := z.Dim(-1)
	for p := 0; p < z.Numel()/k; p++ {
		want := argmax(target[p*k : (p+1)*k])
		got := argmax(z.Data[p*k : (p+1)*k])
		c := &neg
		if want == 0 {
			c = &pos
		}
		c[1]++
		if got == want {
			c[0]++
		}
	}
	return pos, neg
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
