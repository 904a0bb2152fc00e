package gpt2

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model"
)

// hfConfig holds the GPT2Config fields of a config.json (with the generic
// names some exporters use instead). Pointers tell "absent or null" from
// a value.
type hfConfig struct {
	VocabSize            *int     `json:"vocab_size"`
	NEmbd                *int     `json:"n_embd"`
	HiddenSize           *int     `json:"hidden_size"`
	NLayer               *int     `json:"n_layer"`
	NumHiddenLayers      *int     `json:"num_hidden_layers"`
	NHead                *int     `json:"n_head"`
	NumAttentionHeads    *int     `json:"num_attention_heads"`
	NPositions           *int     `json:"n_positions"`
	MaxPositionEmbedding *int     `json:"max_position_embeddings"`
	NInner               *int     `json:"n_inner"`
	LayerNormEpsilon     *float64 `json:"layer_norm_epsilon"`
	ActivationFunction   *string  `json:"activation_function"`
	ScaleAttnWeights     *bool    `json:"scale_attn_weights"`
	ScaleAttnByLayerIdx  *bool    `json:"scale_attn_by_inverse_layer_idx"`
	TieWordEmbeddings    *bool    `json:"tie_word_embeddings"`
}

// ParseHF reads a GPT-2 config.json into the model's spec (a Config).
// Only HF's default GPT-2 variant is implemented: GELU-tanh, 4·n_embd MLP,
// 1/√D attention scaling, tied LM head. score says the model is a
// GPT2ForSequenceClassification (no LM head). Errors name the field at
// fault.
func ParseHF(data []byte, score bool) (model.Spec, []string, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, nil, err
	}
	var c Config
	var err error
	for _, f := range []struct {
		dst       *int
		src, alt  *int
		field, as string
	}{{&c.VocabSize, h.VocabSize, nil, "vocab_size", ""}, {&c.Hidden, h.NEmbd, h.HiddenSize, "n_embd", "hidden_size"},
		{&c.Layers, h.NLayer, h.NumHiddenLayers, "n_layer", "num_hidden_layers"},
		{&c.Heads, h.NHead, h.NumAttentionHeads, "n_head", "num_attention_heads"},
		{&c.MaxPositions, h.NPositions, h.MaxPositionEmbedding, "n_positions", "max_position_embeddings"}} {
		src := f.src
		if src == nil {
			src = f.alt
		}
		if *f.dst, err = model.HFSize(src, f.field); err != nil {
			return nil, nil, err
		}
	}
	c.LayerNormEps = float32(model.HFOr(h.LayerNormEpsilon, 1e-5))
	switch act := model.HFOr(h.ActivationFunction, "gelu_new"); act {
	case "gelu_new", "gelu_pytorch_tanh":
	default:
		return nil, nil, fmt.Errorf("activation_function %q is not supported (only gelu_new)", act)
	}
	if h.NInner != nil && *h.NInner != 4*c.Hidden {
		return nil, nil, fmt.Errorf("n_inner = %d is not supported (only 4·n_embd = %d)", *h.NInner, 4*c.Hidden)
	}
	if !model.HFOr(h.ScaleAttnWeights, true) || model.HFOr(h.ScaleAttnByLayerIdx, false) {
		return nil, nil, errors.New("only scale_attn_weights = true with scale_attn_by_inverse_layer_idx = false is supported")
	}
	if !score && !model.HFOr(h.TieWordEmbeddings, true) {
		return nil, nil, errors.New("tie_word_embeddings = false is not supported for GPT-2")
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	return c, nil, nil
}

// TensorName maps a stored tensor name to the parameter name: the causal
// mask buffers of old checkpoints are not weights (""), and
// openai-community/gpt2 stores the GPT2Model without its "transformer."
// prefix.
func TensorName(stored string) string {
	switch {
	case strings.HasSuffix(stored, ".attn.bias") || strings.HasSuffix(stored, ".attn.masked_bias"):
		return ""
	case !strings.HasPrefix(stored, "transformer.") && !strings.HasPrefix(stored, "score.") && !strings.HasPrefix(stored, "lm_head."):
		return "transformer." + stored
	}
	return stored
}
