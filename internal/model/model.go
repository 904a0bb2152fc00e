// Package model defines what every architecture provides: a causal LM over
// token ids with Hugging Face-named parameters, its sizes (Dims) and its
// hyper-parameters (Spec), from which a like model is built. Callers use
// these instead of switching on concrete types, so a new architecture
// needs only its own package and one registration line in model/load.
// Architectures live in sub-packages (gpt2, llama); loading from files
// lives in model/load.
package model

import (
	"fmt"
	"iter"

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
	// Dims returns the sizes callers need without knowing the architecture.
	Dims() Dims
	// Spec returns the hyper-parameters; Spec().New() builds a like model.
	Spec() Spec
}

// Dims are a model's sizes.
type Dims struct {
	Vocab  int // V: size of the token embedding and of the logits
	Hidden int // C: width of the hidden states Hidden returns
	Layers int // L
	// MaxPositions is the longest sequence the model can encode (learned
	// position tables); 0 means no limit (rotary positions).
	MaxPositions int
}

// Spec is an architecture's hyper-parameters: everything but the weights.
// Two specs describe the same model exactly when reflect.DeepEqual says
// so; model/load relies on that to check that a config.json describes the
// model it saves.
type Spec interface {
	// New builds the model with zero weights.
	New() (CausalLM, error)
	// ScoreBackbone is the spec of the same network used as the backbone
	// of a score model (package head): the scalar head replaces the LM
	// head, so a separate LM head is dropped (it becomes tied). A spec
	// without a separate LM head returns itself.
	ScoreBackbone() Spec
}

// Shaper is a Spec that lists its model's parameters — Hugging Face name
// and shape, in Params order — without allocating them, so that a loader
// can check a checkpoint against its config before it allocates (an
// absurd config.json then fails with both shapes instead of running out
// of memory). It yields nothing for a spec that does not validate.
type Shaper interface {
	ParamShapes() iter.Seq2[string, []int]
}

// NewLike returns a model of m's architecture and configuration with zero
// weights.
func NewLike(m CausalLM) (CausalLM, error) { return m.Spec().New() }

// Clone returns a deep copy of m: a model of the same architecture and
// configuration with its own copy of every weight (tied weights stay
// tied). It is how one loaded model becomes the frozen reference, the
// trained actor and the rollout engine's copy without reading the files
// three times.
func Clone(m CausalLM) (CausalLM, error) {
	out, err := NewLike(m)
	if err != nil {
		return nil, fmt.Errorf("model: clone: %w", err)
	}
	dst, src := out.Params(), m.Params()
	if len(dst) != len(src) {
		return nil, fmt.Errorf("model: clone has %d parameters, the model %d", len(dst), len(src))
	}
	for _, p := range dst {
		s := src.Find(p.Name)
		if s == nil || len(s.Data) != len(p.Tensor.Data) {
			return nil, fmt.Errorf("model: clone: parameter %s does not match", p.Name)
		}
		copy(p.Tensor.Data, s.Data)
	}
	return out, nil
}

// TokenLogProbs returns log π(targets[n] | ids[..n]) [B, T] for a causal LM:
// the fused log-prob of the target token at every position (targets < 0
// give 0). It never materialises the [B, T, V] log-softmax.
func TokenLogProbs(tp *tensor.Tape, m CausalLM, ids, pos, seg, targets []int32, b, t int) *tensor.Tensor {
	return tensor.TokenLogProbs(tp, m.Forward(tp, ids, pos, seg, b, t), targets)
}

// Block is one transformer block's forward pass: its output [B, T, C]
// from its input x [B, T, C], reading nothing but x and the block's own
// parameters.
type Block func(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor

// BlockRunner runs the transformer blocks of a forward pass: directly,
// with their activations recomputed in the backward pass (gradient
// checkpointing), or with their parameters gathered around each use
// (ZeRO stage 3). A model with a runner calls it once per block and layer,
// in order.
type BlockRunner interface {
	RunBlock(tp *tensor.Tape, layer int, x *tensor.Tensor, f Block) *tensor.Tensor
}

// Blocked is a model whose transformer blocks a BlockRunner can run.
// Every architecture of this module implements it.
type Blocked interface {
	// SetBlockRunner sets the runner of later forward passes (nil: run each
	// block directly).
	SetBlockRunner(r BlockRunner)
	// BlockParams lists block layer's parameters (a subset of Params, in
	// Params order); the parameters of no block (embeddings, final norm,
	// LM head) are the rest.
	BlockParams(layer int) nn.Params
}

// RunBlock runs f as block layer through r, or directly when r is nil.
func RunBlock(r BlockRunner, tp *tensor.Tape, layer int, x *tensor.Tensor, f Block) *tensor.Tensor {
	if r == nil {
		return f(tp, x)
	}
	return r.RunBlock(tp, layer, x, f)
}

// Adaptable is a model whose linear maps can carry LoRA adapters (package
// lora attaches them). Every architecture of this module implements it.
type Adaptable interface {
	// LoRATargets lists every linear map of the transformer blocks (not
	// the embeddings or the LM head), in Params order.
	LoRATargets() []nn.LoRATarget
}

// UseRecompute makes m run its transformer blocks through Recompute
// (gradient checkpointing) from its next forward pass on. Every
// architecture of this module can; another model is an error.
func UseRecompute(m CausalLM) error {
	b, ok := m.(Blocked)
	if !ok {
		return fmt.Errorf("model: gradient checkpointing: %T does not implement model.Blocked", m)
	}
	b.SetBlockRunner(Recompute{})
	return nil
}

// Recompute is the BlockRunner of gradient checkpointing: each block's
// activations are dropped after the forward pass and recomputed in the
// backward pass, block by block; gradients are bit-identical to keeping
// them.
type Recompute struct{}

// RunBlock implements BlockRunner.
func (Recompute) RunBlock(tp *tensor.Tape, _ int, x *tensor.Tensor, f Block) *tensor.Tensor {
	return tensor.RunSegment(tp, x, tensor.Segment{Recompute: true}, f)
}
