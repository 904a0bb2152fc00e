package llama

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Variant is a member of the Llama family as transformers names it
// (config.json's model_type). The variants share this package's network
// and differ in their config defaults: Mistral and Qwen default to
// grouped KV heads, Qwen2 always has q/k/v biases, Qwen3 has q/k norms
// and a head_dim of 128.
type Variant string

// The supported variants.
const (
	Llama   Variant = "llama"
	Mistral Variant = "mistral"
	Qwen2   Variant = "qwen2"
	Qwen3   Variant = "qwen3"
)

// hfConfig holds the config.json fields the family reads. Pointers tell
// "absent or null" from a value.
type hfConfig struct {
	VocabSize         *int        `json:"vocab_size"`
	HiddenSize        *int        `json:"hidden_size"`
	IntermediateSize  *int        `json:"intermediate_size"`
	NumHiddenLayers   *int        `json:"num_hidden_layers"`
	NumAttentionHeads *int        `json:"num_attention_heads"`
	NumKeyValueHeads  *int        `json:"num_key_value_heads"`
	HeadDim           *int        `json:"head_dim"`
	MaxPositions      *int        `json:"max_position_embeddings"`
	HiddenAct         *string     `json:"hidden_act"`
	RMSNormEps        *float64    `json:"rms_norm_eps"`
	RopeTheta         *float64    `json:"rope_theta"`
	RopeScaling       *ropeParams `json:"rope_scaling"`
	RopeParameters    *ropeParams `json:"rope_parameters"` // transformers v5
	TieWordEmbeddings *bool       `json:"tie_word_embeddings"`
	AttentionBias     *bool       `json:"attention_bias"`
	MLPBias           *bool       `json:"mlp_bias"`
	SlidingWindow     *int        `json:"sliding_window"`
	UseSlidingWindow  *bool       `json:"use_sliding_window"`

	present map[string]bool // top-level keys, null or not
}

// ropeParams is rope_scaling (transformers ≤ 4) or rope_parameters (v5).
type ropeParams struct {
	RopeType       string   `json:"rope_type"`
	Type           string   `json:"type"` // older spelling of rope_type
	RopeTheta      *float64 `json:"rope_theta"`
	Factor         float64  `json:"factor"`
	LowFreqFactor  float64  `json:"low_freq_factor"`
	HighFreqFactor float64  `json:"high_freq_factor"`
	OriginalMax    int      `json:"original_max_position_embeddings"`
}

// hfResult is a parsed config.json: the configuration and what gorlhf
// does differently from Hugging Face.
type hfResult struct {
	Config Config
	// SlidingWindow is the attention window HF would use (0: none). gorlhf
	// attends to the full causal context, which gives the same results
	// only for sequences of at most SlidingWindow tokens.
	SlidingWindow int
	Warnings      []string
}

// ParseHF reads a config.json of variant v into the model's spec (a
// Config), with the defaults of v's transformers config class. score says
// the model is a *ForSequenceClassification: it has no LM head, so the
// embedding is tied. The warnings are for the user (an ignored sliding
// window). Errors name the field at fault.
func (v Variant) ParseHF(data []byte, score bool) (model.Spec, []string, error) {
	r, err := v.parseHF(data, score)
	if err != nil {
		return nil, nil, err
	}
	return r.Config, r.Warnings, nil
}

func (v Variant) parseHF(data []byte, score bool) (hfResult, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return hfResult{}, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return hfResult{}, err
	}
	h.present = make(map[string]bool, len(keys))
	for k := range keys {
		h.present[k] = true
	}
	c, err := v.config(&h, score)
	if err != nil {
		return hfResult{}, err
	}
	w, warnings := v.slidingWindow(&h)
	return hfResult{Config: c.withDefaults(), SlidingWindow: w, Warnings: warnings}, c.Validate()
}

// config fills a Config from h.
func (v Variant) config(h *hfConfig, score bool) (Config, error) {
	var c Config
	var err error
	for _, f := range []struct {
		dst   *int
		src   *int
		field string
	}{{&c.VocabSize, h.VocabSize, "vocab_size"}, {&c.Hidden, h.HiddenSize, "hidden_size"},
		{&c.Intermediate, h.IntermediateSize, "intermediate_size"}, {&c.Layers, h.NumHiddenLayers, "num_hidden_layers"},
		{&c.Heads, h.NumAttentionHeads, "num_attention_heads"}} {
		if *f.dst, err = model.HFSize(f.src, f.field); err != nil {
			return c, err
		}
	}
	if act := model.HFOr(h.HiddenAct, "silu"); act != "silu" {
		return c, fmt.Errorf("hidden_act %q is not supported (only silu)", act)
	}
	if model.HFOr(h.MLPBias, false) {
		return c, errors.New("mlp_bias = true is not supported")
	}
	if c.KVHeads, err = v.kvHeads(h, c.Heads); err != nil {
		return c, err
	}
	if c.HeadDim, err = v.headDim(h, c.Hidden, c.Heads); err != nil {
		return c, err
	}
	switch {
	case v == Qwen2:
		c.AttentionBias = true // Qwen2 always has q/k/v biases; no config field
	case model.HFOr(h.AttentionBias, false):
		return c, fmt.Errorf("attention_bias = true is not supported for %s (it adds an o_proj bias too)", v)
	}
	if c.MaxPositions, err = v.maxPositions(h); err != nil {
		return c, err
	}
	c.QKNorm = v == Qwen3
	c.RMSNormEps = float32(model.HFOr(h.RMSNormEps, 1e-6))
	if !(c.RMSNormEps > 0) {
		return c, fmt.Errorf("rms_norm_eps = %g, want > 0", c.RMSNormEps)
	}
	if c.RopeTheta, c.RopeScaling, err = rope(h); err != nil {
		return c, err
	}
	c.TieWordEmbeddings = model.HFOr(h.TieWordEmbeddings, false) || score // no LM head in *ForSequenceClassification
	return c, nil
}

// kvHeads applies each config class's default for num_key_value_heads:
// absent means num_attention_heads for Llama but 8 for Mistral and 32 for
// Qwen2/Qwen3 (their signature defaults); null means num_attention_heads.
func (v Variant) kvHeads(h *hfConfig, heads int) (int, error) {
	kv := heads
	switch {
	case h.NumKeyValueHeads != nil:
		kv = *h.NumKeyValueHeads
	case h.present["num_key_value_heads"]: // null
	case v == Mistral:
		kv = 8
	case v == Qwen2 || v == Qwen3:
		kv = 32
	}
	if kv <= 0 || kv > heads || heads%kv != 0 {
		src := "num_key_value_heads"
		if h.NumKeyValueHeads == nil {
			src += fmt.Sprintf(" (absent: %s default %d)", v, kv)
		}
		return 0, fmt.Errorf("num_attention_heads %d is not a multiple of %s %d", heads, src, kv)
	}
	return kv, nil
}

// headDim is head_dim when given, 128 for Qwen3 (its default), else
// hidden_size / num_attention_heads, which must then divide exactly.
func (v Variant) headDim(h *hfConfig, hidden, heads int) (int, error) {
	switch {
	case h.HeadDim != nil:
		if *h.HeadDim <= 0 {
			return 0, fmt.Errorf("head_dim = %d, want > 0", *h.HeadDim)
		}
		return *h.HeadDim, nil
	case v == Qwen3:
		return 128, nil
	case hidden%heads != 0:
		return 0, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d (and head_dim is not set)", hidden, heads)
	}
	return hidden / heads, nil
}

// maxPositions is max_position_embeddings, or when absent (or null) the
// default of v's config class: 2048 for Llama, 4096·32 for Mistral, 32768
// for Qwen2 and Qwen3.
func (v Variant) maxPositions(h *hfConfig) (int, error) {
	def := 2048
	switch v {
	case Mistral:
		def = 4096 * 32
	case Qwen2, Qwen3:
		def = 32768
	}
	n := model.HFOr(h.MaxPositions, def)
	if n <= 0 {
		return 0, fmt.Errorf("max_position_embeddings = %d, want > 0", n)
	}
	return n, nil
}

// rope returns θ and the scaling from rope_theta/rope_scaling or from
// transformers v5's rope_parameters. Only "default" and "llama3" are
// implemented; any other type is an error that names it.
func rope(h *hfConfig) (float64, *tensor.RoPEScaling, error) {
	theta := model.HFOr(h.RopeTheta, 10000)
	p, field := h.RopeScaling, "rope_scaling"
	if h.RopeParameters != nil {
		p, field = h.RopeParameters, "rope_parameters"
		if p.RopeTheta != nil {
			theta = *p.RopeTheta
		}
	}
	if !(theta > 0) || math.IsInf(theta, 0) {
		return 0, nil, fmt.Errorf("rope_theta = %g, want > 0", theta)
	}
	if p == nil {
		return theta, nil, nil
	}
	typ := p.RopeType
	if typ == "" {
		typ = p.Type
	}
	switch typ {
	case "", "default":
		return theta, nil, nil
	case "llama3":
	default:
		return 0, nil, fmt.Errorf("%s type %q is not supported (only default and llama3)", field, typ)
	}
	if !(p.Factor > 0) || !(p.LowFreqFactor > 0) || !(p.HighFreqFactor > p.LowFreqFactor) || p.OriginalMax <= 0 {
		return 0, nil, fmt.Errorf("%s llama3: need factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, got %+v", field, *p)
	}
	return theta, &tensor.RoPEScaling{Type: "llama3", Factor: p.Factor, LowFreqFactor: p.LowFreqFactor,
		HighFreqFactor: p.HighFreqFactor, OriginalMaxPositions: p.OriginalMax}, nil
}

// slidingWindow reports the window HF would apply and a warning: gorlhf
// always uses full causal attention, which equals sliding-window attention
// only while sequences are no longer than the window.
func (v Variant) slidingWindow(h *hfConfig) (int, []string) {
	w := 0
	switch v {
	case Mistral:
		switch {
		case h.SlidingWindow != nil:
			w = *h.SlidingWindow
		case !h.present["sliding_window"]:
			w = 4096 // MistralConfig default
		}
	case Qwen2, Qwen3:
		if model.HFOr(h.UseSlidingWindow, false) {
			w = model.HFOr(h.SlidingWindow, 4096)
		}
	}
	if w <= 0 {
		return 0, nil
	}
	return w, []string{fmt.Sprintf("%s: sliding_window = %d is ignored: gorlhf uses full attention, "+
		"which matches Hugging Face only for sequences of at most %d tokens", v, w, w)}
}

// TensorName maps a stored tensor name to the parameter name: old Llama
// checkpoints store the rotary inverse frequencies, a buffer ("").
func TensorName(stored string) string {
	if strings.HasSuffix(stored, ".rotary_emb.inv_freq") {
		return ""
	}
	return stored
}
