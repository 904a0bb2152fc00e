package load

import (
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/hub"
)

func hubOptionsIn(t *testing.T) hub.Options { return hub.Options{HubCache: t.TempDir()} }

// sizes are the size fields every Llama-family test config shares.
const sizes = `"vocab_size": 10, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 32`

// TestParseConfig_Defaults checks the per-class defaults of transformers
// for fields a config.json may leave out.
func TestParseConfig_Defaults(t *testing.T) {
	cases := []struct {
		name, json string
		check      func(t *testing.T, sp *spec)
	}{
		{"llama kv absent = heads, untied, eps 1e-6, theta 1e4",
			`{"architectures": ["LlamaForCausalLM"], "model_type": "llama", ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				c := sp.Llama
				if c.KVHeads != 32 || c.HeadDim != 2 || c.TieWordEmbeddings || c.RMSNormEps != 1e-6 || c.RopeTheta != 10000 || c.AttentionBias || c.QKNorm {
					t.Errorf("%+v", c)
				}
			}},
		{"mistral kv absent = 8, window absent = 4096",
			`{"architectures": ["MistralForCausalLM"], ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if sp.Llama.KVHeads != 8 || sp.SlidingWindow != 4096 || len(sp.Warnings) != 1 {
					t.Errorf("kv %d window %d warnings %q", sp.Llama.KVHeads, sp.SlidingWindow, sp.Warnings)
				}
			}},
		{"mistral kv null = heads, window null = none",
			`{"architectures": ["MistralForCausalLM"], "num_key_value_heads": null, "sliding_window": null, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if sp.Llama.KVHeads != 32 || sp.SlidingWindow != 0 || len(sp.Warnings) != 0 {
					t.Errorf("kv %d window %d warnings %q", sp.Llama.KVHeads, sp.SlidingWindow, sp.Warnings)
				}
			}},
		{"qwen2 biases implied, kv absent = 32, window off by default",
			`{"architectures": ["Qwen2ForCausalLM"], "sliding_window": 128, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if !sp.Llama.AttentionBias || sp.Llama.KVHeads != 32 || sp.SlidingWindow != 0 {
					t.Errorf("%+v window %d", sp.Llama, sp.SlidingWindow)
				}
			}},
		{"qwen2 use_sliding_window warns",
			`{"architectures": ["Qwen2ForCausalLM"], "use_sliding_window": true, "sliding_window": 128, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if sp.SlidingWindow != 128 || len(sp.Warnings) != 1 || !strings.Contains(sp.Warnings[0], "128") {
					t.Errorf("window %d warnings %q", sp.SlidingWindow, sp.Warnings)
				}
			}},
		{"qwen3 head_dim absent = 128, q/k norm",
			`{"architectures": ["Qwen3ForCausalLM"], ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if sp.Llama.HeadDim != 128 || !sp.Llama.QKNorm || sp.Llama.AttentionBias {
					t.Errorf("%+v", sp.Llama)
				}
			}},
		{"gpt2 tied by default, eps 1e-5",
			`{"architectures": ["GPT2LMHeadModel"], "vocab_size": 5, "n_positions": 4, "n_embd": 4, "n_layer": 1, "n_head": 2}`,
			func(t *testing.T, sp *spec) {
				if sp.GPT2.LayerNormEps != 1e-5 || sp.GPT2.MaxPositions != 4 {
					t.Errorf("%+v", sp.GPT2)
				}
			}},
		{"rope_scaling llama3 (older 'type' key), torch_dtype",
			`{"architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16", "rope_theta": 500000, ` + sizes + `,
			 "rope_scaling": {"type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}}`,
			func(t *testing.T, sp *spec) {
				s := sp.Llama.RopeScaling
				if s == nil || s.Type != "llama3" || s.Factor != 8 || s.OriginalMaxPositions != 8192 || sp.Llama.RopeTheta != 500000 || sp.TorchDType != "bfloat16" {
					t.Errorf("%+v %+v %q", sp.Llama, s, sp.TorchDType)
				}
			}},
		{"transformers v5 rope_parameters and dtype",
			`{"architectures": ["LlamaForCausalLM"], "dtype": "float16", ` + sizes + `,
			 "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}`,
			func(t *testing.T, sp *spec) {
				if sp.Llama.RopeTheta != 1e6 || sp.Llama.RopeScaling != nil || sp.TorchDType != "float16" {
					t.Errorf("%+v %q", sp.Llama, sp.TorchDType)
				}
			}},
		{"no architectures: model_type decides",
			`{"model_type": "qwen3", "head_dim": 16, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if sp.Arch != "Qwen3ForCausalLM" || sp.Score || sp.Llama.HeadDim != 16 {
					t.Errorf("%s %v %+v", sp.Arch, sp.Score, sp.Llama)
				}
			}},
		{"OpenRLHF reward model class, normalisation fields",
			`{"architectures": ["RewardModel"], "model_type": "llama", "normalize_reward": true, "mean": -1.5, "std": 3, "pad_token_id": 7, ` + sizes + `}`,
			func(t *testing.T, sp *spec) {
				if !sp.Score || sp.Family != Llama || !sp.Llama.TieWordEmbeddings || sp.PadTokenID != 7 ||
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
