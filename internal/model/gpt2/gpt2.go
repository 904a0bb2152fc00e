// Package gpt2 is the GPT-2 architecture (Radford et al. 2019): learned
// positions, pre-LayerNorm blocks, GELU-tanh MLP, biases everywhere and an
// LM head tied to the token embedding. Weights keep Hugging Face's names and
// Conv1D layout ([in, out]) so checkpoints load and save without transposes.
package gpt2

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Config holds the Hugging Face GPT2Config fields the model uses.
type Config struct {
	VocabSize    int     `json:"vocab_size"`
	MaxPositions int     `json:"n_positions"`
	Hidden       int     `json:"n_embd"`
	Layers       int     `json:"n_layer"`
	Heads        int     `json:"n_head"`
	LayerNormEps float32 `json:"layer_norm_epsilon"` // default 1e-5
}

// Validate checks that the sizes are consistent.
func (c Config) Validate() error {
	switch {
	case c.VocabSize <= 0 || c.MaxPositions <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0:
		return fmt.Errorf("gpt2: sizes must be positive: %+v", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("gpt2: n_embd %d is not a multiple of n_head %d", c.Hidden, c.Heads)
	case c.LayerNormEps <= 0:
		return fmt.Errorf("gpt2: layer_norm_epsilon must be > 0, got %g", c.LayerNormEps)
	}
	return nil
}

// New implements model.Spec: New(c).
func (c Config) New() (model.CausalLM, error) { return New(c) }

// ScoreBackbone implements model.Spec: GPT-2's LM head is always tied.
func (c Config) ScoreBackbone() model.Spec { return c }

// Block is one transformer layer.
type Block struct {
	LN1, LN2             *nn.LayerNorm
	AttnW, AttnB         *tensor.Tensor // c_attn: [C, 3C], [3C]
	AttnProjW, AttnProjB *tensor.Tensor // c_proj: [C, C], [C]
	FcW, FcB             *tensor.Tensor // mlp.c_fc: [C, 4C], [4C]
	MLPProjW, MLPProjB   *tensor.Tensor // mlp.c_proj: [4C, C], [C]
	// Optional LoRA adapters of c_attn, attn.c_proj, c_fc and mlp.c_proj
	// (nil: none).
	AttnLoRA, AttnProjLoRA, FcLoRA, MLPProjLoRA *nn.LoRA
}

// EmbedName is the token embedding's parameter name; GPT-2's LM head is
// always tied to it.
const EmbedName = "transformer.wte.weight"

// Model is a GPT-2 causal LM.
type Model struct {
	Config Config
	WTE    *tensor.Tensor // [V, C] token embedding, also the LM head
	WPE    *tensor.Tensor // [P, C] position embedding
	Blocks []*Block
	LNF    *nn.LayerNorm
	runner model.BlockRunner
	step   model.StepWeights // 16-bit copies Step reads (SetStepDType)
}

// New returns a model with zero weights (unit LayerNorm weights).
func New(c Config) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	C := c.Hidden
	m := &Model{Config: c, WTE: tensor.Param(c.VocabSize, C), WPE: tensor.Param(c.MaxPositions, C),
		LNF: nn.NewLayerNorm(C, c.LayerNormEps)}
	for i := 0; i < c.Layers; i++ {
		m.Blocks = append(m.Blocks, &Block{
			LN1: nn.NewLayerNorm(C, c.LayerNormEps), LN2: nn.NewLayerNorm(C, c.LayerNormEps),
			AttnW: tensor.Param(C, 3*C), AttnB: tensor.Param(3 * C),
			AttnProjW: tensor.Param(C, C), AttnProjB: tensor.Param(C),
			FcW: tensor.Param(C, 4*C), FcB: tensor.Param(4 * C),
			MLPProjW: tensor.Param(4*C, C), MLPProjB: tensor.Param(C),
		})
	}
	return m, nil
}

// ParamShapes implements model.Shaper: the names and shapes Params
// lists, without allocating (nothing for a config that does not
// validate).
func (c Config) ParamShapes() iter.Seq2[string, []int] {
	return func(yield func(string, []int) bool) {
		if c.Validate() != nil {
			return
		}
		C := c.Hidden
		if !yield(EmbedName, []int{c.VocabSize, C}) || !yield("transformer.wpe.weight", []int{c.MaxPositions, C}) {
			return
		}
		for i := 0; i < c.Layers; i++ {
			p := fmt.Sprintf("transformer.h.%d.", i)
			layer := []struct {
				name  string
				shape []int
			}{
				{"ln_1.weight", []int{C}}, {"ln_1.bias", []int{C}},
				{"attn.c_attn.weight", []int{C, 3 * C}}, {"attn.c_attn.bias", []int{3 * C}},
				{"attn.c_proj.weight", []int{C, C}}, {"attn.c_proj.bias", []int{C}},
				{"ln_2.weight", []int{C}}, {"ln_2.bias", []int{C}},
				{"mlp.c_fc.weight", []int{C, 4 * C}}, {"mlp.c_fc.bias", []int{4 * C}},
				{"mlp.c_proj.weight", []int{4 * C, C}}, {"mlp.c_proj.bias", []int{C}},
			}
			for _, t := range layer {
				if !yield(p+t.name, t.shape) {
					return
				}
			}
		}
		if yield("transformer.ln_f.weight", []int{C}) {
			yield("transformer.ln_f.bias", []int{C})
		}
	}
}

// Init draws weights as GPT-2 does: N(0, 0.02²), residual projections
// scaled by 1/√(2L), biases 0, LayerNorms 1.
func (m *Model) Init(r *rand.Rand) {
	nn.InitNormal(r, 0.02, m.WTE, m.WPE)
	res := float32(0.02 / math.Sqrt(2*float64(m.Config.Layers)))
	for _, b := range m.Blocks {
		nn.InitNormal(r, 0.02, b.AttnW, b.FcW)
		nn.InitNormal(r, res, b.AttnProjW, b.MLPProjW)
	}
}

// Params lists every parameter under its Hugging Face name.
func (m *Model) Params() nn.Params {
	ps := nn.Params{{Name: EmbedName, Tensor: m.WTE}, {Name: "transformer.wpe.weight", Tensor: m.WPE}}
	for i := range m.Blocks {
		ps = append(ps, m.BlockParams(i)...)
	}
	return append(ps, m.LNF.Params("transformer.ln_f.")...)
}

// BlockParams implements model.Blocked: block layer's parameters.
func (m *Model) BlockParams(layer int) nn.Params {
	b, p := m.Blocks[layer], fmt.Sprintf("transformer.h.%d.", layer)
	var ps nn.Params
	ps = append(ps, b.LN1.Params(p+"ln_1.")...)
	ps = append(ps, nn.Params{
		{Name: p + "attn.c_attn.weight", Tensor: b.AttnW}, {Name: p + "attn.c_attn.bias", Tensor: b.AttnB},
		{Name: p + "attn.c_proj.weight", Tensor: b.AttnProjW}, {Name: p + "attn.c_proj.bias", Tensor: b.AttnProjB},
	}...)
	ps = append(ps, b.LN2.Params(p+"ln_2.")...)
	ps = append(ps, nn.Params{
		{Name: p + "mlp.c_fc.weight", Tensor: b.FcW}, {Name: p + "mlp.c_fc.bias", Tensor: b.FcB},
		{Name: p + "mlp.c_proj.weight", Tensor: b.MLPProjW}, {Name: p + "mlp.c_proj.bias", Tensor: b.MLPProjB},
	}...)
	return ps
}

// LoRATargets implements model.Adaptable: each block's c_attn,
// attn.c_proj, c_fc and mlp.c_proj (Conv1D weights: fan_in_fan_out).
func (m *Model) LoRATargets() []nn.LoRATarget {
	var ts []nn.LoRATarget
	for i, b := range m.Blocks {
		p := fmt.Sprintf("transformer.h.%d.", i)
		ts = append(ts,
			nn.LoRATarget{Module: p + "attn.c_attn", Weight: b.AttnW, FanInFanOut: true, Slot: &b.AttnLoRA},
			nn.LoRATarget{Module: p + "attn.c_proj", Weight: b.AttnProjW, FanInFanOut: true, Slot: &b.AttnProjLoRA},
			nn.LoRATarget{Module: p + "mlp.c_fc", Weight: b.FcW, FanInFanOut: true, Slot: &b.FcLoRA},
			nn.LoRATarget{Module: p + "mlp.c_proj", Weight: b.MLPProjW, FanInFanOut: true, Slot: &b.MLPProjLoRA})
	}
	return ts
}

// conv is Conv1D x·W + b plus the adapter a's Δy when a is set.
func conv(tp *tensor.Tape, x, w, b *tensor.Tensor, a *nn.LoRA) *tensor.Tensor {
	if a != nil {
		return a.Apply(tp, x, w, b, false)
	}
	return tensor.Conv1D(tp, x, w, b)
}

// SetBlockRunner implements model.Blocked.
func (m *Model) SetBlockRunner(r model.BlockRunner) { m.runner = r }

// Dims implements model.CausalLM.
func (m *Model) Dims() model.Dims {
	c := m.Config
	return model.Dims{Vocab: c.VocabSize, Hidden: c.Hidden, Layers: c.Layers, MaxPositions: c.MaxPositions}
}

// Spec implements model.CausalLM: the configuration.
func (m *Model) Spec() model.Spec { return m.Config }

// Hidden returns the final hidden states [B, T, C] for ids [B·T] at
// positions pos [B·T]; seg [B·T] (optional) isolates packed samples.
func (m *Model) Hidden(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	c := m.Config
	if len(ids) != b*t || len(pos) != b*t {
		panic(fmt.Sprintf("gpt2: %d ids and %d positions for B=%d, T=%d", len(ids), len(pos), b, t))
	}
	x := tensor.Add(tp, tensor.Embedding(tp, m.WTE, ids), tensor.Embedding(tp, m.WPE, pos))
	x = tensor.Reshape(tp, x, b, t, c.Hidden)
	for i, blk := range m.Blocks {
		x = model.RunBlock(m.runner, tp, i, x, func(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
			return blk.forward(tp, x, c, seg)
		})
	}
	return m.LNF.Forward(tp, x)
}

// Forward returns logits [B, T, V].
func (m *Model) Forward(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	return tensor.Linear(tp, m.Hidden(tp, ids, pos, seg, b, t), m.WTE, nil)
}

func (blk *Block) forward(tp *tensor.Tape, x *tensor.Tensor, c Config, seg []int32) *tensor.Tensor {
	h := blk.LN1.Forward(tp, x)
	a := tensor.AttentionQKV(tp, conv(tp, h, blk.AttnW, blk.AttnB, blk.AttnLoRA), c.Heads, c.Heads, seg) // q|k|v read in place
	x = tensor.Add(tp, x, conv(tp, a, blk.AttnProjW, blk.AttnProjB, blk.AttnProjLoRA))
	h = blk.LN2.Forward(tp, x)
	h = tensor.GELU(tp, conv(tp, h, blk.FcW, blk.FcB, blk.FcLoRA))
	return tensor.Add(tp, x, conv(tp, h, blk.MLPProjW, blk.MLPProjB, blk.MLPProjLoRA))
}

var (
	_ model.CausalLM  = (*Model)(nil)
	_ model.Blocked   = (*Model)(nil)
	_ model.Adaptable = (*Model)(nil)
)
