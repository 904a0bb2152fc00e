package llama

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
)

// sizes are the size fields every test config shares.
const sizes = `"vocab_size": 10, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 32`

// defaultPositions are transformers' max_position_embeddings defaults.
var defaultPositions = map[Variant]int{Llama: 2048, Mistral: 131072, Qwen2: 32768, Qwen3: 32768}

// TestVariant_ParseHF checks the per-class defaults of transformers for
// fields a config.json may leave out.
func TestVariant_ParseHF(t *testing.T) {
	cases := []struct {
		name    string
		variant Variant
		json    string
		check   func(t *testing.T, r hfResult)
	}{
		{"llama kv absent = heads, untied, eps 1e-6, theta 1e4", Llama,
			`{"architectures": ["LlamaForCausalLM"], "model_type": "llama", ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				c := r.Config
				if c.KVHeads != 32 || c.HeadDim != 2 || c.TieWordEmbeddings || c.RMSNormEps != 1e-6 || c.RopeTheta != 10000 || c.AttentionBias || c.QKNorm {
					t.Errorf("%+v", c)
				}
			}},
		{"mistral kv absent = 8, window absent = 4096", Mistral,
			`{"architectures": ["MistralForCausalLM"], ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if r.Config.KVHeads != 8 || r.SlidingWindow != 4096 || len(r.Warnings) != 1 {
					t.Errorf("kv %d window %d warnings %q", r.Config.KVHeads, r.SlidingWindow, r.Warnings)
				}
			}},
		{"mistral kv null = heads, window null = none", Mistral,
			`{"architectures": ["MistralForCausalLM"], "num_key_value_heads": null, "sliding_window": null, ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if r.Config.KVHeads != 32 || r.SlidingWindow != 0 || len(r.Warnings) != 0 {
					t.Errorf("kv %d window %d warnings %q", r.Config.KVHeads, r.SlidingWindow, r.Warnings)
				}
			}},
		{"qwen2 biases implied, kv absent = 32, window off by default", Qwen2,
			`{"architectures": ["Qwen2ForCausalLM"], "sliding_window": 128, ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if !r.Config.AttentionBias || r.Config.KVHeads != 32 || r.SlidingWindow != 0 {
					t.Errorf("%+v window %d", r.Config, r.SlidingWindow)
				}
			}},
		{"qwen2 use_sliding_window warns", Qwen2,
			`{"architectures": ["Qwen2ForCausalLM"], "use_sliding_window": true, "sliding_window": 128, ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if r.SlidingWindow != 128 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "128") {
					t.Errorf("window %d warnings %q", r.SlidingWindow, r.Warnings)
				}
			}},
		{"qwen3 head_dim absent = 128, q/k norm", Qwen3,
			`{"architectures": ["Qwen3ForCausalLM"], ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if r.Config.HeadDim != 128 || !r.Config.QKNorm || r.Config.AttentionBias {
					t.Errorf("%+v", r.Config)
				}
			}},
		{"max_position_embeddings given", Qwen2,
			`{"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 4096, ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if r.Config.MaxPositions != 4096 {
					t.Errorf("MaxPositions %d, want 4096", r.Config.MaxPositions)
				}
			}},
		{"score model: no LM head, so tied", Llama,
			`{"architectures": ["LlamaForSequenceClassification"], "tie_word_embeddings": false, ` + sizes + `}`,
			func(t *testing.T, r hfResult) {
				if !r.Config.TieWordEmbeddings {
					t.Errorf("%+v", r.Config)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := c.variant.parseHF([]byte(c.json), strings.Contains(c.name, "score"))
			if err == nil && !strings.Contains(c.json, "max_position_embeddings") && r.Config.MaxPositions != defaultPositions[c.variant] {
				t.Errorf("max_position_embeddings absent: %d, want %s's default %d", r.Config.MaxPositions, c.variant, defaultPositions[c.variant])
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, r)
			// The spec builds the model it describes, and the model
			// reports that spec back.
			m, err := r.Config.New()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Spec(); !reflect.DeepEqual(got, model.Spec(r.Config)) {
				t.Errorf("model spec %+v, parsed %+v", got, r.Config)
			}
		})
	}
}

// TestModel_PositionLimit: the context length of config.json (or the
// class default) is the model's position limit, in Dims and KVShape, and
// a bad one is an error naming the field.
func TestModel_PositionLimit(t *testing.T) {
	r, err := Llama.parseHF([]byte(`{"max_position_embeddings": 512, `+sizes+`}`), false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	if d, s := m.Dims(), m.KVShape(); d.MaxPositions != 512 || s.MaxPositions != 512 {
		t.Errorf("Dims %+v, KVShape %+v: want MaxPositions 512", d, s)
	}
	for _, bad := range []string{`0`, `-3`} {
		_, err := Llama.parseHF([]byte(`{"max_position_embeddings": `+bad+`, `+sizes+`}`), false)
		if err == nil || !strings.Contains(err.Error(), "max_position_embeddings") {
			t.Errorf("max_position_embeddings %s: err %v", bad, err)
		}
	}
}
