// Package head is the scalar head that turns a causal LM into a reward
// model or a critic: one bias-free linear map from the last hidden state to
// a number per token, stored as Hugging Face's *ForSequenceClassification
// models store it ("score.weight", [1, C]).
//
// Keeping HF's layout (backbone under "model." or "transformer.", head
// under "score.") means a reward model trained by OpenRLHF or TRL loads
// without renaming, and one trained here loads in transformers.
package head

import (
	"fmt"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// WeightName is the HF name of the head's weight.
const WeightName = "score.weight"

// Head maps hidden states [B, T, C] to values [B, T]: v = h·wᵀ.
type Head struct {
	Weight *tensor.Tensor // [1, C]
}

// New returns a head of width c with zero weights.
func New(c int) *Head {
	if c <= 0 {
		panic(fmt.Sprintf("head: width %d must be positive", c))
	}
	return &Head{Weight: tensor.Param(1, c)}
}

// Init draws the weights N(0, (1/(C+1))²), as OpenRLHF initialises a fresh
// value head, so that initial values are small whatever the width.
func (h *Head) Init(r *rand.Rand) {
	c := h.Weight.Shape[1]
	nn.InitNormal(r, float32(1/float64(c+1)), h.Weight)
}

// Params lists the head weight under its HF name.
func (h *Head) Params() nn.Params { return nn.Params{{Name: WeightName, Tensor: h.Weight}} }

// Values returns one value per token, [B, T], from hidden states [B, T, C]:
// the per-token values a critic needs, or the scores a reward model picks
// from (see LastNonPad and Pick).
func (h *Head) Values(tp *tensor.Tape, hidden *tensor.Tensor) *tensor.Tensor {
	if len(hidden.Shape) != 3 || hidden.Shape[2] != h.Weight.Shape[1] {
		panic(fmt.Sprintf("head: hidden states %v do not match head width %d", hidden.Shape, h.Weight.Shape[1]))
	}
	b, t := hidden.Shape[0], hidden.Shape[1]
	return tensor.Reshape(tp, tensor.Linear(tp, hidden, h.Weight, nil), b, t)
}

// LastNonPad returns, for each of the b rows of ids [B·T], the index of the
// rightmost token that is not pad: where a reward model reads its score.
// This is Hugging Face's rule for *ForSequenceClassification (it works for
// left and right padding alike); a row made only of padding gives 0, as it
// does there.
func LastNonPad(ids []int32, b, t int, pad int32) []int {
	if len(ids) != b*t {
		panic(fmt.Sprintf("head: %d ids for B=%d, T=%d", len(ids), b, t))
	}
	out := make([]int, b)
	for i := range b {
		for j := t - 1; j >= 0; j-- {
			if ids[i*t+j] != pad {
				out[i] = j
				break
			}
		}
	}
	return out
}

// LastValid is LastNonPad for an attention mask [B·T] (non-zero = real
// token), OpenRLHF's rule: the last position whose mask is set; an all-zero
// row gives T−1, as OpenRLHF's flip-and-argmax does.
func LastValid(mask []float32, b, t int) []int {
	if len(mask) != b*t {
		panic(fmt.Sprintf("head: %d mask values for B=%d, T=%d", len(mask), b, t))
	}
	out := make([]int, b)
	for i := range b {
		out[i] = t - 1
		for j := t - 1; j >= 0; j-- {
			if mask[i*t+j] != 0 {
				out[i] = j
				break
			}
		}
	}
	return out
}

// Pick returns values[b, idx[b]] for each row of values [B, T]: [B].
func Pick(tp *tensor.Tape, values *tensor.Tensor, idx []int) *tensor.Tensor {
	if len(values.Shape) != 2 || len(idx) != values.Shape[0] {
		panic(fmt.Sprintf("head: Pick of %d indices from values %v", len(idx), values.Shape))
	}
	t := values.Shape[1]
	rows := make([]int, len(idx))
	for i, j := range idx {
		if j < 0 || j >= t {
			panic(fmt.Sprintf("head: Pick index %d out of range [0, %d)", j, t))
		}
		rows[i] = i*t + j
	}
	flat := tensor.Reshape(tp, values, values.Numel(), 1)
	return tensor.Reshape(tp, tensor.GatherRows(tp, flat, rows), len(idx))
}
