package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Family is the architecture family a checkpoint belongs to.
type Family string

// The supported families; all but GPT2 are built by package llama.
const (
	Llama   Family = "llama"
	Mistral Family = "mistral"
	Qwen2   Family = "qwen2"
	Qwen3   Family = "qwen3"
	GPT2    Family = "gpt2"
)

// ErrUnsupportedArch is returned (wrapped) for a config.json whose
// architecture gorlhf does not implement.
var ErrUnsupportedArch = errors.New("unsupported architecture")

// archInfo is one supported Hugging Face architecture name.
type archInfo struct {
	name   string
	family Family
	score  bool // *ForSequenceClassification: backbone + scalar head
}

// archs is the explicit list of what Load accepts, by architectures[0].
var archs = []archInfo{
	{"LlamaForCausalLM", Llama, false},
	{"MistralForCausalLM", Mistral, false},
	{"Qwen2ForCausalLM", Qwen2, false},
	{"Qwen3ForCausalLM", Qwen3, false},
	{"GPT2LMHeadModel", GPT2, false},
	{"LlamaForSequenceClassification", Llama, true},
	{"MistralForSequenceClassification", Mistral, true},
	{"Qwen2ForSequenceClassification", Qwen2, true},
	{"Qwen3ForSequenceClassification", Qwen3, true},
	{"GPT2ForSequenceClassification", GPT2, true},
}

// openRLHFScoreArchs are the class names OpenRLHF gives its reward and
// critic models; the backbone then comes from model_type.
var openRLHFScoreArchs = []string{"RewardModel", "CriticModel"}

// SupportedArchitectures lists the architecture names Load accepts.
func SupportedArchitectures() []string {
	out := make([]string, 0, len(archs)+len(openRLHFScoreArchs))
	for _, a := range archs {
		out = append(out, a.name)
	}
	return append(out, openRLHFScoreArchs...)
}

// spec is a parsed config.json: which model to build and how.
type spec struct {
	Arch          string
	Family        Family
	Score         bool
	Llama         llama.Config // Family != GPT2
	GPT2          gpt2.Config  // Family == GPT2
	TorchDType    string       // as written in config.json ("" if absent)
	SlidingWindow int          // 0: none; see Loaded.SlidingWindow
	PadTokenID    int          // -1: none
	Norm          head.Norm    // reward normalisation (score models)
	Warnings      []string
}

// hfConfig holds the config.json fields any supported family reads.
// Pointers tell "absent or null" from a value.
type hfConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`
	TorchDType    *string  `json:"torch_dtype"`
	DType         *string  `json:"dtype"` // transformers v5 name

	VocabSize         *int        `json:"vocab_size"`
	HiddenSize        *int        `json:"hidden_size"`
	IntermediateSize  *int        `json:"intermediate_size"`
	NumHiddenLayers   *int        `json:"num_hidden_layers"`
	NumAttentionHeads *int        `json:"num_attention_heads"`
	NumKeyValueHeads  *int        `json:"num_key_value_heads"`
	HeadDim           *int        `json:"head_dim"`
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

	NEmbd                *int     `json:"n_embd"`
	NLayer               *int     `json:"n_layer"`
	NHead                *int     `json:"n_head"`
	NPositions           *int     `json:"n_positions"`
	NInner               *int     `json:"n_inner"`
	LayerNormEpsilon     *float64 `json:"layer_norm_epsilon"`
	ActivationFunction   *string  `json:"activation_function"`
	ScaleAttnWeights     *bool    `json:"scale_attn_weights"`
	ScaleAttnByLayerIdx  *bool    `json:"scale_attn_by_inverse_layer_idx"`
	MaxPositionEmbedding *int     `json:"max_position_embeddings"`

	ID2Label        map[string]string `json:"id2label"`
	NumLabels       *int              `json:"num_labels"`
	PadTokenID      json.RawMessage   `json:"pad_token_id"`
	NormalizeReward *bool             `json:"normalize_reward"`
	Mean            *float64          `json:"mean"`
	Std             *float64          `json:"std"`

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

// parseConfig reads a config.json and decides what to build. The errors
// name the field at fault.
func parseConfig(data []byte) (*spec, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	h.present = make(map[string]bool, len(keys))
	for k := range keys {
		h.present[k] = true
	}
	a, err := pickArch(&h)
	if err != nil {
		return nil, err
	}
	sp := &spec{Arch: a.name, Family: a.family, Score: a.score, PadTokenID: -1, Norm: head.DefaultNorm()}
	switch {
	case h.TorchDType != nil:
		sp.TorchDType = *h.TorchDType
	case h.DType != nil:
		sp.TorchDType = *h.DType
	}
	if a.family == GPT2 {
		err = gpt2Spec(&h, sp)
	} else {
		err = llamaSpec(&h, sp)
	}
	if err != nil {
		return nil, fmt.Errorf("config.json (%s): %w", sp.Arch, err)
	}
	if sp.Score {
		if err := scoreSpec(&h, sp); err != nil {
			return nil, fmt.Errorf("config.json (%s): %w", sp.Arch, err)
		}
	}
	return sp, nil
}

// pickArch is the explicit switch on architectures[0], falling back to
// model_type (as a causal LM) when architectures is absent.
func pickArch(h *hfConfig) (archInfo, error) {
	name := ""
	if len(h.Architectures) > 0 {
		name = h.Architectures[0]
	}
	for _, a := range archs {
		if a.name == name {
			if mt := h.ModelType; mt != "" && mt != string(a.family) {
				return archInfo{}, fmt.Errorf("config.json: architecture %s with model_type %q (want %q)", name, mt, a.family)
			}
			return a, nil
		}
	}
	fam, famOK := familyOf(h.ModelType)
	switch {
	case name == "" && famOK:
		return archInfo{name: causalName(fam), family: fam}, nil
	case (name == "RewardModel" || name == "CriticModel") && famOK:
		return archInfo{name: name, family: fam, score: true}, nil
	}
	return archInfo{}, fmt.Errorf("config.json: %w %q (model_type %q); supported: %s",
		ErrUnsupportedArch, name, h.ModelType, strings.Join(SupportedArchitectures(), ", "))
}

func familyOf(modelType string) (Family, bool) {
	for _, f := range []Family{Llama, Mistral, Qwen2, Qwen3, GPT2} {
		if string(f) == modelType {
			return f, true
		}
	}
	return "", false
}

// causalName is the HF causal-LM architecture name of a family.
func causalName(f Family) string {
	for _, a := range archs {
		if a.family == f && !a.score {
			return a.name
		}
	}
	return ""
}

// need returns *p or an error naming the missing size field. Sizes have
// HF defaults (those of a 7B model), but a config.json without them is
// broken, not a 7B model.
func need(p *int, field string) (int, error) {
	if p == nil {
		return 0, fmt.Errorf("%s is missing", field)
	}
	if *p <= 0 {
		return 0, fmt.Errorf("%s = %d, want > 0", field, *p)
	}
	return *p, nil
}

// llamaSpec fills sp.Llama for Llama, Mistral, Qwen2 and Qwen3 with the
// defaults of each transformers config class.
func llamaSpec(h *hfConfig, sp *spec) error {
	var c llama.Config
	var err error
	for _, f := range []struct {
		dst   *int
		src   *int
		field string
	}{{&c.VocabSize, h.VocabSize, "vocab_size"}, {&c.Hidden, h.HiddenSize, "hidden_size"},
		{&c.Intermediate, h.IntermediateSize, "intermediate_size"}, {&c.Layers, h.NumHiddenLayers, "num_hidden_layers"},
		{&c.Heads, h.NumAttentionHeads, "num_attention_heads"}} {
		if *f.dst, err = need(f.src, f.field); err != nil {
			return err
		}
	}
	if act := deref(h.HiddenAct, "silu"); act != "silu" {
		return fmt.Errorf("hidden_act %q is not supported (only silu)", act)
	}
	if deref(h.MLPBias, false) {
		return errors.New("mlp_bias = true is not supported")
	}
	if c.KVHeads, err = kvHeads(h, sp.Family, c.Heads); err != nil {
		return err
	}
	if c.HeadDim, err = headDim(h, sp.Family, c.Hidden, c.Heads); err != nil {
		return err
	}
	switch {
	case sp.Family == Qwen2:
		c.AttentionBias = true // Qwen2 always has q/k/v biases; no config field
	case deref(h.AttentionBias, false):
		return fmt.Errorf("attention_bias = true is not supported for %s (it adds an o_proj bias too)", sp.Family)
	}
	c.QKNorm = sp.Family == Qwen3
	c.RMSNormEps = float32(deref(h.RMSNormEps, 1e-6))
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("rms_norm_eps = %g, want > 0", c.RMSNormEps)
	}
	if c.RopeTheta, c.RopeScaling, err = rope(h); err != nil {
		return err
	}
	c.TieWordEmbeddings = deref(h.TieWordEmbeddings, false)
	if sp.Score {
		c.TieWordEmbeddings = true // no LM head in *ForSequenceClassification
	}
	sp.SlidingWindow, sp.Warnings = slidingWindow(h, sp.Family)
	sp.Llama = c
	return c.Validate()
}

// kvHeads applies each config class's default for num_key_value_heads:
// absent means num_attention_heads for Llama but 8 for Mistral and 32 for
// Qwen2/Qwen3 (their signature defaults); null means num_attention_heads.
func kvHeads(h *hfConfig, f Family, heads int) (int, error) {
	kv := heads
	switch {
	case h.NumKeyValueHeads != nil:
		kv = *h.NumKeyValueHeads
	case h.present["num_key_value_heads"]: // null
	case f == Mistral:
		kv = 8
	case f == Qwen2 || f == Qwen3:
		kv = 32
	}
	if kv <= 0 || kv > heads || heads%kv != 0 {
		src := "num_key_value_heads"
		if h.NumKeyValueHeads == nil {
			src += fmt.Sprintf(" (absent: %s default %d)", f, kv)
		}
		return 0, fmt.Errorf("num_attention_heads %d is not a multiple of %s %d", heads, src, kv)
	}
	return kv, nil
}

// headDim is head_dim when given, 128 for Qwen3 (its default), else
// hidden_size / num_attention_heads, which must then divide exactly.
func headDim(h *hfConfig, f Family, hidden, heads int) (int, error) {
	switch {
	case h.HeadDim != nil:
		if *h.HeadDim <= 0 {
			return 0, fmt.Errorf("head_dim = %d, want > 0", *h.HeadDim)
		}
		return *h.HeadDim, nil
	case f == Qwen3:
		return 128, nil
	case hidden%heads != 0:
		return 0, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d (and head_dim is not set)", hidden, heads)
	}
	return hidden / heads, nil
}

// rope returns θ and the scaling from rope_theta/rope_scaling or from
// transformers v5's rope_parameters. Only "default" and "llama3" are
// implemented; any other type is an error that names it.
func rope(h *hfConfig) (float64, *tensor.RoPEScaling, error) {
	theta := deref(h.RopeTheta, 10000)
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
func slidingWindow(h *hfConfig, f Family) (int, []string) {
	w := 0
	switch f {
	case Mistral:
		switch {
		case h.SlidingWindow != nil:
			w = *h.SlidingWindow
		case !h.present["sliding_window"]:
			w = 4096 // MistralConfig default
		}
	case Qwen2, Qwen3:
		if deref(h.UseSlidingWindow, false) {
			w = deref(h.SlidingWindow, 4096)
		}
	}
	if w <= 0 {
		return 0, nil
	}
	return w, []string{fmt.Sprintf("%s: sliding_window = %d is ignored: gorlhf uses full attention, "+
		"which matches Hugging Face only for sequences of at most %d tokens", f, w, w)}
}

// gpt2Spec fills sp.GPT2. Only HF's default GPT-2 variant is implemented:
// GELU-tanh, 4·n_embd MLP, 1/√D attention scaling, tied LM head.
func gpt2Spec(h *hfConfig, sp *spec) error {
	var c gpt2.Config
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
		if *f.dst, err = need(src, f.field); err != nil {
			return err
		}
	}
	c.LayerNormEps = float32(deref(h.LayerNormEpsilon, 1e-5))
	switch act := deref(h.ActivationFunction, "gelu_new"); act {
	case "gelu_new", "gelu_pytorch_tanh":
	default:
		return fmt.Errorf("activation_function %q is not supported (only gelu_new)", act)
	}
	if h.NInner != nil && *h.NInner != 4*c.Hidden {
		return fmt.Errorf("n_inner = %d is not supported (only 4·n_embd = %d)", *h.NInner, 4*c.Hidden)
	}
	if !deref(h.ScaleAttnWeights, true) || deref(h.ScaleAttnByLayerIdx, false) {
		return errors.New("only scale_attn_weights = true with scale_attn_by_inverse_layer_idx = false is supported")
	}
	if !sp.Score && !deref(h.TieWordEmbeddings, true) {
		return errors.New("tie_word_embeddings = false is not supported for GPT-2")
	}
	sp.GPT2 = c
	return c.Validate()
}

// scoreSpec reads the head size, the pad token and OpenRLHF's reward
// normalisation. num_labels comes from id2label as in transformers; when
// neither id2label nor num_labels is given we assume 1 (transformers would
// assume 2, which is not a scalar head).
func scoreSpec(h *hfConfig, sp *spec) error {
	n := 1
	switch {
	case len(h.ID2Label) > 0:
		n = len(h.ID2Label)
	case h.NumLabels != nil:
		n = *h.NumLabels
	}
	if n != 1 {
		return fmt.Errorf("num_labels = %d (from id2label): only a scalar head (1 label) is supported", n)
	}
	if len(h.PadTokenID) > 0 && string(h.PadTokenID) != "null" {
		var pad int
		if err := json.Unmarshal(h.PadTokenID, &pad); err != nil {
			return fmt.Errorf("pad_token_id: %w", err)
		}
		sp.PadTokenID = pad
	}
	sp.Norm.Normalize = deref(h.NormalizeReward, false)
	sp.Norm.Mean = deref(h.Mean, 0)
	sp.Norm.Std = deref(h.Std, 1)
	if !(sp.Norm.Std > 0) {
		return fmt.Errorf("std = %g, want > 0", sp.Norm.Std)
	}
	return nil
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
