// Package llama is the Llama family of decoder-only transformers: Llama 2/3
// (incl. Llama 3.1 RoPE scaling), Mistral, Qwen2/2.5 (q/k/v biases) and
// Qwen3 (per-head q/k RMSNorm). Pre-RMSNorm blocks, rotary positions
// (rotate-half, as Hugging Face stores the weights), grouped-query attention
// and a SwiGLU MLP; the LM head is tied to the embedding or separate.
package llama

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Config holds the Hugging Face LlamaConfig/Qwen2Config/Qwen3Config fields
// the model uses.
type Config struct {
	VocabSize         int                 `json:"vocab_size"`
	Hidden            int                 `json:"hidden_size"`
	Intermediate      int                 `json:"intermediate_size"`
	Layers            int                 `json:"num_hidden_layers"`
	Heads             int                 `json:"num_attention_heads"`
	KVHeads           int                 `json:"num_key_value_heads"` // 0 means Heads (no GQA)
	HeadDim           int                 `json:"head_dim"`            // 0 means Hidden/Heads
	RMSNormEps        float32             `json:"rms_norm_eps"`
	RopeTheta         float64             `json:"rope_theta"` // 0 means 10000
	RopeScaling       *tensor.RoPEScaling `json:"-"`
	TieWordEmbeddings bool                `json:"tie_word_embeddings"`
	AttentionBias     bool                `json:"attention_bias"` // q/k/v biases (Qwen2)
	QKNorm            bool                `json:"-"`              // per-head RMSNorm of q and k (Qwen3)
	// MaxPositions is the context length the model was trained for
	// (max_position_embeddings; llama2.c's seq_len): rotary positions
	// have no table, but past it the model's output is garbage, so
	// generation and training stay within it. 0 means unknown (no limit).
	MaxPositions int `json:"max_position_embeddings"`
}

// withDefaults fills the zero-means-default fields.
func (c Config) withDefaults() Config {
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.RopeScaling != nil && (c.RopeScaling.Type == "" || c.RopeScaling.Type == "default") {
		c.RopeScaling = nil // no scaling, spelled one way so that specs compare
	}
	return c
}

// New implements model.Spec: New(c).
func (c Config) New() (model.CausalLM, error) { return New(c) }

// ScoreBackbone implements model.Spec: under a scalar head the LM head is
// dropped, so the backbone is tied.
func (c Config) ScoreBackbone() model.Spec {
	c.TieWordEmbeddings = true
	return c
}

// Validate checks that the sizes are consistent.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.VocabSize <= 0 || c.Hidden <= 0 || c.Intermediate <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.HeadDim <= 0:
		return fmt.Errorf("llama: sizes must be positive: %+v", c)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("llama: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("llama: head_dim %d must be even for RoPE", c.HeadDim)
	case c.RMSNormEps <= 0:
		return fmt.Errorf("llama: rms_norm_eps must be > 0, got %g", c.RMSNormEps)
	case c.MaxPositions < 0:
		return fmt.Errorf("llama: max_position_embeddings must be ≥ 0, got %d", c.MaxPositions)
	}
	return nil
}

// Block is one decoder layer.
type Block struct {
	InputNorm, PostAttnNorm *nn.RMSNorm
	Q, K, V, O              *nn.Linear
	QNorm, KNorm            *nn.RMSNorm // Qwen3 only
	Gate, Up, Down          *nn.Linear
}

// EmbedName is the token embedding's parameter name, which a tied LM head
// shares.
const EmbedName = "model.embed_tokens.weight"

// Model is a Llama-family causal LM.
type Model struct {
	Config Config
	Embed  *tensor.Tensor // [V, C]
	Blocks []*Block
	Norm   *nn.RMSNorm
	LMHead *tensor.Tensor // [V, C]; the same tensor as Embed when tied
	rope   *tensor.RoPE
	runner model.BlockRunner
	step   model.StepWeights // 16-bit copies Step reads (SetStepDType)
}

// New returns a model with zero weights (unit norms).
func New(c Config) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	rope, err := tensor.NewRoPE(c.HeadDim, c.RopeTheta, tensor.RotateHalf, c.RopeScaling)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	C, qd, kd := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	m := &Model{Config: c, Embed: tensor.Param(c.VocabSize, C), Norm: nn.NewRMSNorm(C, c.RMSNormEps), rope: rope}
	m.LMHead = m.Embed
	if !c.TieWordEmbeddings {
		m.LMHead = tensor.Param(c.VocabSize, C)
	}
	for i := 0; i < c.Layers; i++ {
		b := &Block{
			InputNorm: nn.NewRMSNorm(C, c.RMSNormEps), PostAttnNorm: nn.NewRMSNorm(C, c.RMSNormEps),
			Q: nn.NewLinear(C, qd, c.AttentionBias), K: nn.NewLinear(C, kd, c.AttentionBias),
			V: nn.NewLinear(C, kd, c.AttentionBias), O: nn.NewLinear(qd, C, false),
			Gate: nn.NewLinear(C, c.Intermediate, false), Up: nn.NewLinear(C, c.Intermediate, false),
			Down: nn.NewLinear(c.Intermediate, C, false),
		}
		if c.QKNorm {
			b.QNorm, b.KNorm = nn.NewRMSNorm(c.HeadDim, c.RMSNormEps), nn.NewRMSNorm(c.HeadDim, c.RMSNormEps)
		}
		m.Blocks = append(m.Blocks, b)
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
		c = c.withDefaults()
		C, qd, kd := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
		if !yield(EmbedName, []int{c.VocabSize, C}) {
			return
		}
		for i := 0; i < c.Layers; i++ {
			p := fmt.Sprintf("model.layers.%d.", i)
			layer := []struct {
				name  string
				shape []int
				ok    bool
			}{
				{"input_layernorm.weight", []int{C}, true},
				{"self_attn.q_proj.weight", []int{qd, C}, true}, {"self_attn.q_proj.bias", []int{qd}, c.AttentionBias},
				{"self_attn.k_proj.weight", []int{kd, C}, true}, {"self_attn.k_proj.bias", []int{kd}, c.AttentionBias},
				{"self_attn.v_proj.weight", []int{kd, C}, true}, {"self_attn.v_proj.bias", []int{kd}, c.AttentionBias},
				{"self_attn.o_proj.weight", []int{C, qd}, true},
				{"self_attn.q_norm.weight", []int{c.HeadDim}, c.QKNorm}, {"self_attn.k_norm.weight", []int{c.HeadDim}, c.QKNorm},
				{"post_attention_layernorm.weight", []int{C}, true},
				{"mlp.gate_proj.weight", []int{c.Intermediate, C}, true}, {"mlp.up_proj.weight", []int{c.Intermediate, C}, true},
				{"mlp.down_proj.weight", []int{C, c.Intermediate}, true},
			}
			for _, t := range layer {
				if t.ok && !yield(p+t.name, t.shape) {
					return
				}
			}
		}
		if !yield("model.norm.weight", []int{C}) {
			return
		}
		if !c.TieWordEmbeddings {
			yield("lm_head.weight", []int{c.VocabSize, C})
		}
	}
}

// Init draws weights N(0, 0.02²), output projections scaled by 1/√(2L).
func (m *Model) Init(r *rand.Rand) {
	nn.InitNormal(r, 0.02, m.Embed)
	if m.LMHead != m.Embed {
		nn.InitNormal(r, 0.02, m.LMHead)
	}
	res := float32(0.02 / math.Sqrt(2*float64(m.Config.Layers)))
	for _, b := range m.Blocks {
		nn.InitNormal(r, 0.02, b.Q.Weight, b.K.Weight, b.V.Weight, b.Gate.Weight, b.Up.Weight)
		nn.InitNormal(r, res, b.O.Weight, b.Down.Weight)
	}
}

// Params lists every parameter under its Hugging Face name.
func (m *Model) Params() nn.Params {
	ps := nn.Params{{Name: EmbedName, Tensor: m.Embed}}
	for i := range m.Blocks {
		ps = append(ps, m.BlockParams(i)...)
	}
	ps = append(ps, m.Norm.Params("model.norm.")...)
	if m.LMHead != m.Embed {
		ps = append(ps, nn.Param{Name: "lm_head.weight", Tensor: m.LMHead})
	}
	return ps
}

// BlockParams implements model.Blocked: block layer's parameters.
func (m *Model) BlockParams(layer int) nn.Params {
	b, i := m.Blocks[layer], layer
	var ps nn.Params
	p := fmt.Sprintf("model.layers.%d.", i)
	ps = append(ps, b.InputNorm.Params(p+"input_layernorm.")...)
	ps = append(ps, b.Q.Params(p+"self_attn.q_proj.")...)
	ps = append(ps, b.K.Params(p+"self_attn.k_proj.")...)
	ps = append(ps, b.V.Params(p+"self_attn.v_proj.")...)
	ps = append(ps, b.O.Params(p+"self_attn.o_proj.")...)
	if b.QNorm != nil {
		ps = append(ps, b.QNorm.Params(p+"self_attn.q_norm.")...)
		ps = append(ps, b.KNorm.Params(p+"self_attn.k_norm.")...)
	}
	ps = append(ps, b.PostAttnNorm.Params(p+"post_attention_layernorm.")...)
	ps = append(ps, b.Gate.Params(p+"mlp.gate_proj.")...)
	ps = append(ps, b.Up.Params(p+"mlp.up_proj.")...)
	ps = append(ps, b.Down.Params(p+"mlp.down_proj.")...)
	return ps
}

// LoRATargets implements model.Adaptable: each block's q/k/v/o and
// gate/up/down projections.
func (m *Model) LoRATargets() []nn.LoRATarget {
	var ts []nn.LoRATarget
	for i, b := range m.Blocks {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts, b.Q.Target(p+"self_attn.q_proj"), b.K.Target(p+"self_attn.k_proj"),
			b.V.Target(p+"self_attn.v_proj"), b.O.Target(p+"self_attn.o_proj"),
			b.Gate.Target(p+"mlp.gate_proj"), b.Up.Target(p+"mlp.up_proj"), b.Down.Target(p+"mlp.down_proj"))
	}
	return ts
}

// SetBlockRunner implements model.Blocked.
func (m *Model) SetBlockRunner(r model.BlockRunner) { m.runner = r }

// Dims implements model.CausalLM. The position limit is the trained
// context length (Config.MaxPositions).
func (m *Model) Dims() model.Dims {
	c := m.Config
	return model.Dims{Vocab: c.VocabSize, Hidden: c.Hidden, Layers: c.Layers, MaxPositions: c.MaxPositions}
}

// Spec implements model.CausalLM: the configuration, defaults filled in.
func (m *Model) Spec() model.Spec { return m.Config }

// Hidden returns the final hidden states [B, T, C] for ids [B·T] at
// positions pos [B·T]; seg [B·T] (optional) isolates packed samples.
func (m *Model) Hidden(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	if len(ids) != b*t || len(pos) != b*t {
		panic(fmt.Sprintf("llama: %d ids and %d positions for B=%d, T=%d", len(ids), len(pos), b, t))
	}
	x := tensor.Reshape(tp, tensor.Embedding(tp, m.Embed, ids), b, t, m.Config.Hidden)
	for i, blk := range m.Blocks {
		x = model.RunBlock(m.runner, tp, i, x, func(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
			return blk.forward(tp, x, m, pos, seg)
		})
	}
	return m.Norm.Forward(tp, x)
}

// Forward returns logits [B, T, V].
func (m *Model) Forward(tp *tensor.Tape, ids, pos, seg []int32, b, t int) *tensor.Tensor {
	return tensor.Linear(tp, m.Hidden(tp, ids, pos, seg, b, t), m.LMHead, nil)
}

func (blk *Block) forward(tp *tensor.Tape, x *tensor.Tensor, m *Model, pos, seg []int32) *tensor.Tensor {
	c := m.Config
	h := blk.InputNorm.Forward(tp, x)
	q, k, v := blk.Q.Forward(tp, h), blk.K.Forward(tp, h), blk.V.Forward(tp, h)
	if blk.QNorm != nil { // RMSNorm over each head's D values: view as [B·T·H, D]
		q = tensor.Reshape(tp, blk.QNorm.Forward(tp, tensor.Reshape(tp, q, len(q.Data)/c.HeadDim, c.HeadDim)), q.Shape...)
		k = tensor.Reshape(tp, blk.KNorm.Forward(tp, tensor.Reshape(tp, k, len(k.Data)/c.HeadDim, c.HeadDim)), k.Shape...)
	}
	q, k = tensor.ApplyRoPE(tp, q, pos, m.rope), tensor.ApplyRoPE(tp, k, pos, m.rope)
	a := tensor.Attention(tp, q, k, v, c.Heads, c.KVHeads, seg)
	x = tensor.Add(tp, x, blk.O.Forward(tp, a))
	h = blk.PostAttnNorm.Forward(tp, x)
	return tensor.Add(tp, x, blk.Down.Forward(tp, tensor.SwiGLU(tp, blk.Gate.Forward(tp, h), blk.Up.Forward(tp, h))))
}

var (
	_ model.CausalLM  = (*Model)(nil)
	_ model.Blocked   = (*Model)(nil)
	_ model.Adaptable = (*Model)(nil)
)
