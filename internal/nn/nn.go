// Package nn holds the layers transformers are built from (Linear,
// Embedding, RMSNorm, LayerNorm) and the named parameter list that every
// model exposes.
//
// A model's Params() returns its parameters in a fixed order under their
// Hugging Face names ("model.layers.0.self_attn.q_proj.weight"). That one
// list drives loading, the optimizer, checkpoints and weight sync, so the
// four can never disagree about which tensor is which.
package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Param is one named trainable tensor.
type Param struct {
	Name   string
	Tensor *tensor.Tensor
}

// Params is an ordered parameter list.
type Params []Param

// Find returns the tensor called name, or nil.
func (ps Params) Find(name string) *tensor.Tensor {
	for _, p := range ps {
		if p.Name == name {
			return p.Tensor
		}
	}
	return nil
}

// Shares reports whether ps and o hold a common tensor (a frozen copy that
// must not alias the trained model, e.g. a reference or teacher).
func (ps Params) Shares(o Params) bool {
	seen := make(map[*tensor.Tensor]bool, len(ps))
	for _, p := range ps {
		seen[p.Tensor] = true
	}
	for _, p := range o {
		if seen[p.Tensor] {
			return true
		}
	}
	return false
}

// Count returns the total number of scalar parameters.
func (ps Params) Count() int {
	n := 0
	for _, p := range ps {
		n += p.Tensor.Numel()
	}
	return n
}

// ZeroGrad zeroes every gradient buffer.
func (ps Params) ZeroGrad() {
	for _, p := range ps {
		p.Tensor.ZeroGrad()
	}
}

// Validate checks that names are unique and non-empty.
func (ps Params) Validate() error {
	seen := make(map[string]bool, len(ps))
	for i, p := range ps {
		if p.Name == "" || p.Tensor == nil {
			return fmt.Errorf("nn: parameter %d has no name or tensor", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("nn: parameter name %q appears twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// Linear is y = x·Wᵀ + b with W [out, in] (Hugging Face nn.Linear layout).
type Linear struct {
	Weight *tensor.Tensor // [out, in]
	Bias   *tensor.Tensor // [out] or nil
	// LoRA is an optional low-rank adapter added to the output (nil: none).
	LoRA *LoRA
}

// NewLinear returns a zero Linear layer.
func NewLinear(in, out int, bias bool) *Linear {
	l := &Linear{Weight: tensor.Param(out, in)}
	if bias {
		l.Bias = tensor.Param(out)
	}
	return l
}

// Forward maps x [..., in] to [..., out].
func (l *Linear) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	if l.LoRA != nil {
		return l.LoRA.Apply(tp, x, l.Weight, l.Bias, true)
	}
	return tensor.Linear(tp, x, l.Weight, l.Bias)
}

// Target describes the layer as a LoRA target called module.
func (l *Linear) Target(module string) LoRATarget {
	return LoRATarget{Module: module, Weight: l.Weight, Slot: &l.LoRA}
}

// Params names the weight prefix+"weight" and the bias prefix+"bias" (an
// adapter's parameters are listed apart, see package lora).
func (l *Linear) Params(prefix string) Params {
	ps := Params{{prefix + "weight", l.Weight}}
	if l.Bias != nil {
		ps = append(ps, Param{prefix + "bias", l.Bias})
	}
	return ps
}

// RMSNorm is x/rms(x)·w over the last dimension.
type RMSNorm struct {
	Weight *tensor.Tensor // [C], initialised to 1
	Eps    float32
}

// NewRMSNorm returns an RMSNorm with unit weight.
func NewRMSNorm(c int, eps float32) *RMSNorm {
	return &RMSNorm{Weight: ones(c), Eps: eps}
}

// Forward normalises x [..., C].
func (n *RMSNorm) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	return tensor.RMSNorm(tp, x, n.Weight, n.Eps)
}

// Params names the weight prefix+"weight".
func (n *RMSNorm) Params(prefix string) Params { return Params{{prefix + "weight", n.Weight}} }

// LayerNorm is (x−μ)/σ·w + b over the last dimension.
type LayerNorm struct {
	Weight, Bias *tensor.Tensor // [C]; Bias may be nil
	Eps          float32
}

// NewLayerNorm returns a LayerNorm with unit weight and zero bias.
func NewLayerNorm(c int, eps float32) *LayerNorm {
	return &LayerNorm{Weight: ones(c), Bias: tensor.Param(c), Eps: eps}
}

// Forward normalises x [..., C].
func (n *LayerNorm) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	return tensor.LayerNorm(tp, x, n.Weight, n.Bias, n.Eps)
}

// Params names prefix+"weight" and prefix+"bias".
func (n *LayerNorm) Params(prefix string) Params {
	ps := Params{{prefix + "weight", n.Weight}}
	if n.Bias != nil {
		ps = append(ps, Param{prefix + "bias", n.Bias})
	}
	return ps
}

func ones(n int) *tensor.Tensor {
	t := tensor.Param(n)
	for i := range t.Data {
		t.Data[i] = 1
	}
	return t
}

// InitNormal fills the tensors with N(0, std²) from r (GPT-2/Llama use
// std 0.02 for weights; norms keep 1, biases 0).
func InitNormal(r *rand.Rand, std float32, ts ...*tensor.Tensor) {
	for _, t := range ts {
		for i := range t.Data {
			t.Data[i] = float32(r.NormFloat64()) * std
		}
	}
}
