// Package model defines what every architecture provides: a causal LM over
// token ids with Hugging Face-named parameters. Architectures live in
// sub-packages (gpt2, llama); loading from files lives in model/load.
package model

import (
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// CausalLM is a decoder-only language model.
//
// ids, pos and seg are [B·T] row-major: token ids, their positions (they
// restart at 0 for each sample packed into a row) and optional segment ids
// (nil = one sample per row; otherwise attention never crosses segments).
// A nil tape runs inference. Implementations are not safe for concurrent
// use with a tape; concurrent inference (nil tape) is safe.
type CausalLM interface {
	// Hidden returns the final normalised hidden states [B, T, C].
	Hidden(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor
	// Forward returns the logits [B, T, V].
	Forward(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor
	// Params lists every parameter under its Hugging Face name, in a fixed order.
	Params() nn.Params
}

// TokenLogProbs returns log π(targets[n] | ids[..n]) [B, T] for a causal LM:
// the fused log-prob of the target token at every position (targets < 0
// give 0). It never materialises the [B, T, V] log-softmax.
func TokenLogProbs(tp *tensor.Tape, m CausalLM, ids, pos, seg, targets []int32, b, t int) *tensor.Tensor {
	return tensor.TokenLogProbs(tp, m.Forward(tp, ids, pos, seg, b, t), targets)
}
