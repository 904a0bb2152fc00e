package load

import (
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/model/llama"
)

func hubOptionsIn(t *testing.T) hub.Options { return hub.Options{HubCache: t.TempDir()} }

// llamaOf is the Llama-family configuration a spec holds.
func llamaOf(t *testing.T, sp *spec) llama.Config {
	t.Helper()
	c, ok := sp.Backbone.(llama.Config)
	if !ok {
		t.Fatalf("backbone spec %T, want llama.Config", sp.Backbone)
	}
	return c
}

// sizes are the size fields every Llama-family test config shares.
const sizes = `"vocab_size": 10, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 32`

// TestParseConfig_Defaults checks the defaults of transformers for fields a
// config.json may leave out (the per-variant ones are tested in packages
// llama and gpt2), and how the architecture is found.
func TestParseConfig_Defaults(t *testing.T) {
	cases := []struct {
		name, json string
		check      func(t *testing.T, sp *spec)
	}{
		{"rope_scaling llama3 (older 'type' key), torch_dtype",
			`{"architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16", "rope_theta": 500000, ` + sizes + `,
			 "rope_scaling": {"type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}}`,
			func(t *testing.T, sp *spec) {
				s := llamaOf(t, sp).RopeScaling
				if s == nil || s.Type != "llama3" || s.Factor != 8 || s.OriginalMaxPositions != 8192 || llamaOf(t, sp).RopeTheta != 500000 || sp.TorchDType != "bfloat16" {
					t.Errorf("%+v %+v %q", llamaOf(t, sp), s, sp.TorchDType)
				}
			}},
		{"transformers v5 rope_parameters and dtype",
			`{"architectures": ["LlamaForCausalLM"], "dtype": "float16", ` + sizes + `,
			 "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}`,
			func(t *testing.T, sp *spec) {
				if llamaOf(t, sp).RopeTheta != 1e6 || llamaOf(t, sp).RopeScaling != nil || sp.TorchDType != "float16" {
					t.Errorf("%+v %q", llamaOf(t, sp), sp.TorchDType)
				}
			}},
		{"no architectures: model_type decides",
			`{"model_type": "qwen3", "head_dim": 16, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if sp.Arch != "Qwen3ForCausalLM" || sp.Score || llamaOf(t, sp).HeadDim != 16 {
					t.Errorf("%s %v %+v", sp.Arch, sp.Score, llamaOf(t, sp))
				}
			}},
		{"OpenRLHF reward model class, normalisation fields",
			`{"architectures": ["RewardModel"], "model_type": "llama", "normalize_reward": true, "mean": -1.5, "std": 3, "pad_token_id": 7, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if !sp.Score || sp.arch.ModelType != "llama" || !llamaOf(t, sp).TieWordEmbeddings || sp.PadTokenID != 7 ||
					!sp.Norm.Normalize || sp.Norm.Mean != -1.5 || sp.Norm.Std != 3 {
					t.Errorf("%+v", sp)
				}
			}},
		{"sequence classification: no norm fields",
			`{"architectures": ["Qwen2ForSequenceClassification"], "id2label": {"0": "LABEL_0"}, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if !sp.Score || sp.PadTokenID != -1 || sp.Norm.Normalize || sp.Norm.Mean != 0 || sp.Norm.Std != 1 {
					t.Errorf("%+v", sp)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp, err := parseConfig([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, sp)
		})
	}
}

// TestParseConfig_Errors checks config-only failures.
func TestParseConfig_Errors(t *testing.T) {
	cases := []struct{ name, json, want string }{
		{"not an object", `[1, 2]`, "config.json"},
		{"two labels", `{"architectures": ["LlamaForSequenceClassification"], "id2label": {"0": "a", "1": "b"}, ` + sizes + `}`, "num_labels = 2"},
		{"zero std", `{"architectures": ["LlamaForSequenceClassification"], "std": 0, ` + sizes + `}`, "std"},
		{"llama3 missing factors", `{"architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "llama3"}, ` + sizes + `}`, "llama3"},
		{"rope_parameters type", `{"architectures": ["LlamaForCausalLM"], "rope_parameters": {"rope_type": "dynamic", "factor": 2}, ` + sizes + `}`, `rope_parameters type "dynamic"`},
		{"gpt2 activation", `{"architectures": ["GPT2LMHeadModel"], "activation_function": "relu", "vocab_size": 5, "n_positions": 4, "n_embd": 4, "n_layer": 1, "n_head": 2}`, "relu"},
		{"gpt2 untied", `{"architectures": ["GPT2LMHeadModel"], "tie_word_embeddings": false, "vocab_size": 5, "n_positions": 4, "n_embd": 4, "n_layer": 1, "n_head": 2}`, "tie_word_embeddings"},
		{"gpt2 n_inner", `{"architectures": ["GPT2LMHeadModel"], "n_inner": 7, "vocab_size": 5, "n_positions": 4, "n_embd": 4, "n_layer": 1, "n_head": 2}`, "n_inner"},
		{"unknown model_type", `{"model_type": "falcon"}`, "supported:"},
		{"negative size", `{"architectures": ["LlamaForCausalLM"], "vocab_size": -1, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 32}`, "vocab_size = -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
