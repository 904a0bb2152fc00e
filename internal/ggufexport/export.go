// Package ggufexport turns a Llama-family model and its tokenizer into the
// metadata and tensors of a GGUF file that llama.cpp and ollama load
// (architecture "llama"): llama.cpp's tensor names, its hyper-parameter
// keys, the vocabulary with scores and token types, the chat template, and
// the query and key weights in the interleaved rotary layout GGML's RoPE
// expects.
package ggufexport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/gguf"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Source is what goes into one GGUF file.
type Source struct {
	// Name is general.name.
	Name string
	// Model must be a plain Llama (*llama.Model without q/k/v biases, q/k
	// norms or RoPE scaling).
	Model model.CausalLM
	// Tok is the model's tokenizer; TokenizerJSON is its tokenizer.json
	// when it has one (the BPE merges and added tokens are read from it).
	Tok           tokenizer.Tokenizer
	TokenizerJSON []byte
	// ChatTemplate is written as tokenizer.chat_template when not empty.
	ChatTemplate string
	// AddBOS says whether prompts start with BOS (tokenizer.ggml.add_bos_token).
	AddBOS bool
	// EOS is the end-of-sequence id; -1 takes the tokenizer's.
	EOS int
}

// Alignment is the data alignment written to general.alignment.
const Alignment = 32

// File types (general.file_type) as llama.cpp numbers them.
const (
	fileTypeAllF32    = 0
	fileTypeMostlyF16 = 1
)

// Llama returns the metadata and tensors of src as a GGUF file with its
// matrices stored as dtype (F32 or F16; 1-D tensors such as norms stay F32,
// as llama.cpp's converter keeps them).
func Llama(src Source, dtype gguf.TensorType) ([]gguf.KV, []gguf.Tensor, error) {
	m, err := checkModel(src.Model)
	if err != nil {
		return nil, nil, err
	}
	if dtype != gguf.F32 && dtype != gguf.F16 {
		return nil, nil, fmt.Errorf("ggufexport: tensor type %v: want F32 or F16", dtype)
	}
	meta := hyperParams(src.Name, m.Config, dtype)
	vocab, err := vocabulary(src)
	if err != nil {
		return nil, nil, err
	}
	meta = append(meta, vocab...)
	if src.ChatTemplate != "" {
		meta = append(meta, gguf.KV{Key: "tokenizer.chat_template", Value: src.ChatTemplate})
	}
	tensors, err := weights(m, dtype)
	if err != nil {
		return nil, nil, err
	}
	return meta, tensors, nil
}

// checkModel accepts plain Llama models only, and says why not otherwise.
func checkModel(cm model.CausalLM) (*llama.Model, error) {
	m, ok := cm.(*llama.Model)
	if !ok {
		return nil, fmt.Errorf("ggufexport: %T: only the Llama family is exported to GGUF so far (GPT-2 may come later)", cm)
	}
	c := m.Config
	var errs []error
	if c.AttentionBias {
		errs = append(errs, errors.New("q/k/v biases (Qwen2: llama.cpp architecture qwen2, not exported yet)"))
	}
	if c.QKNorm {
		errs = append(errs, errors.New("q/k norms (Qwen3: llama.cpp architecture qwen3, not exported yet)"))
	}
	if c.RopeScaling != nil {
		errs = append(errs, fmt.Errorf("RoPE scaling %q (the rope_freqs tensor is not written yet)", c.RopeScaling.Type))
	}
	if c.HeadDim%2 != 0 {
		errs = append(errs, fmt.Errorf("odd head_dim %d", c.HeadDim))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ggufexport: this Llama variant is not exported: %w", errors.Join(errs...))
	}
	return m, nil
}

// hyperParams are the general.* and llama.* keys.
func hyperParams(name string, c llama.Config, dtype gguf.TensorType) []gguf.KV {
	ft := uint32(fileTypeAllF32)
	if dtype == gguf.F16 {
		ft = fileTypeMostlyF16
	}
	ctx := c.MaxPositions
	if ctx == 0 {
		ctx = 2048 // unknown: llama.cpp needs a value; transformers' LlamaConfig default
	}
	return []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: name},
		{Key: gguf.AlignmentKey, Value: uint32(Alignment)},
		{Key: "general.file_type", Value: ft},
		{Key: "llama.vocab_size", Value: uint32(c.VocabSize)},
		{Key: "llama.context_length", Value: uint32(ctx)},
		{Key: "llama.embedding_length", Value: uint32(c.Hidden)},
		{Key: "llama.block_count", Value: uint32(c.Layers)},
		{Key: "llama.feed_forward_length", Value: uint32(c.Intermediate)},
		{Key: "llama.attention.head_count", Value: uint32(c.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: "llama.attention.key_length", Value: uint32(c.HeadDim)},
		{Key: "llama.attention.value_length", Value: uint32(c.HeadDim)},
		{Key: "llama.rope.freq_base", Value: float32(c.RopeTheta)},
		{Key: "llama.rope.dimension_count", Value: uint32(c.HeadDim)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: c.RMSNormEps},
	}
}

// TensorName maps a Hugging Face Llama parameter name to llama.cpp's.
func TensorName(hf string) (string, bool) {
	switch hf {
	case llama.EmbedName:
		return "token_embd.weight", true
	case "model.norm.weight":
		return "output_norm.weight", true
	case "lm_head.weight":
		return "output.weight", true
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if !ok {
		return "", false
	}
	n, rest, ok := strings.Cut(rest, ".")
	if _, err := strconv.Atoi(n); !ok || err != nil {
		return "", false
	}
	short, ok := blockNames[rest]
	if !ok {
		return "", false
	}
	return "blk." + n + "." + short, true
}

var blockNames = map[string]string{
	"input_layernorm.weight":          "attn_norm.weight",
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"post_attention_layernorm.weight": "ffn_norm.weight",
	"mlp.gate_proj.weight":            "ffn_gate.weight",
	"mlp.up_proj.weight":              "ffn_up.weight",
	"mlp.down_proj.weight":            "ffn_down.weight",
}

// weights converts every parameter: llama.cpp names, dims innermost first,
// q and k rows back to interleaved rotary pairs.
func weights(m *llama.Model, dtype gguf.TensorType) ([]gguf.Tensor, error) {
	c := m.Config
	var out []gguf.Tensor
	for _, p := range m.Params() {
		name, ok := TensorName(p.Name)
		if !ok {
			return nil, fmt.Errorf("ggufexport: parameter %s has no llama.cpp name", p.Name)
		}
		data := p.Tensor.Data
		switch {
		case strings.HasSuffix(name, ".attn_q.weight"):
			data = ToInterleaved(data, c.Heads, c.HeadDim, c.Hidden)
		case strings.HasSuffix(name, ".attn_k.weight"):
			data = ToInterleaved(data, c.KVHeads, c.HeadDim, c.Hidden)
		}
		shape := p.Tensor.Shape
		dims := make([]uint64, len(shape))
		for i, d := range shape {
			dims[len(shape)-1-i] = uint64(d)
		}
		if dtype == gguf.F16 && len(shape) > 1 {
			out = append(out, gguf.NewF16(name, dims, data))
		} else {
			out = append(out, gguf.NewF32(name, dims, data))
		}
	}
	return out, nil
}

// ToInterleaved reorders the rows of a query or key projection w
// ([heads×headDim, cols], row-major) from Hugging Face's rotate-half RoPE
// layout, where row j of a head pairs with row j+headDim/2, to the
// interleaved layout of the original Llama checkpoints and GGML's RoPE,
// where row 2j pairs with row 2j+1: new row 2j is old row j and new row
// 2j+1 is old row headDim/2+j. It undoes llama2c.PermuteRotary.
func ToInterleaved(w []float32, heads, headDim, cols int) []float32 {
	if headDim%2 != 0 || len(w) != heads*headDim*cols {
		panic(fmt.Sprintf("ggufexport: ToInterleaved of %d values as %d heads × %d × %d", len(w), heads, headDim, cols))
	}
	out := make([]float32, len(w))
	half := headDim / 2
	for h := range heads {
		base := h * headDim
		for j := range half {
			copy(out[(base+2*j)*cols:][:cols], w[(base+j)*cols:][:cols])
			copy(out[(base+2*j+1)*cols:][:cols], w[(base+half+j)*cols:][:cols])
		}
	}
	return out
}
