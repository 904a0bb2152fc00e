package load

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// brokenFolder copies the tiny llama folder into a temporary one, lets
// editConfig change its config.json and editTensors its weights.
func brokenFolder(t *testing.T, editConfig func(map[string]any), editTensors func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	src := filepath.Join("testdata", "tiny", "llama")
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if editConfig != nil {
		editConfig(cfg)
	}
	f, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		data, shape, err := f.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: n, Shape: shape, Data: data})
	}
	if editTensors != nil {
		ts = editTensors(ts)
	}
	dir := t.TempDir()
	out, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dropTensor(name string) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		out := ts[:0]
		for _, x := range ts {
			if x.Name != name {
				out = append(out, x)
			}
		}
		return out
	}
}

// TestLoad_Errors feeds broken folders to Load: each must fail with an
// error that names what is wrong, never panic.
func TestLoad_Errors(t *testing.T) {
	cases := []struct {
		name    string
		cfg     func(map[string]any)
		tensors func([]safetensors.Tensor) []safetensors.Tensor
		want    []string // substrings of the error
		is      error
	}{
		{name: "unknown architecture", cfg: func(c map[string]any) {
			c["architectures"], c["model_type"] = []string{"FalconForCausalLM"}, "falcon"
		}, want: []string{"FalconForCausalLM", "LlamaForCausalLM", "GPT2LMHeadModel"}, is: ErrUnsupportedArch},
		{name: "missing tensor", tensors: dropTensor("model.layers.1.mlp.up_proj.weight"),
			want: []string{`"model.layers.1.mlp.up_proj.weight"`, "missing", "[24 16]"}},
		{name: "wrong shape", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "model.layers.0.self_attn.k_proj.weight" {
					ts[i].Shape = []int{16, 8}
				}
			}
			return ts
		}, want: []string{`"model.layers.0.self_attn.k_proj.weight"`, "[16 8]", "[8 16]"}},
		{name: "extra tensor", tensors: func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.2.mlp.up_proj.weight", Shape: []int{2}, Data: []float32{1, 2}})
		}, want: []string{"unexpected tensor", `"model.layers.2.mlp.up_proj.weight"`}},
		{name: "untied head dropped", tensors: dropTensor("lm_head.weight"), want: []string{`"lm_head.weight"`, "missing"}},
		{name: "tied but different head", cfg: func(c map[string]any) { c["tie_word_embeddings"] = true },
			want: []string{`"lm_head.weight"`, "differs from the embedding"}},
		{name: "kv heads", cfg: func(c map[string]any) { c["num_key_value_heads"] = 3 },
			want: []string{"num_attention_heads 4", "num_key_value_heads 3"}},
		{name: "hidden not divisible", cfg: func(c map[string]any) { c["num_attention_heads"] = 6 },
			want: []string{"hidden_size 16", "num_attention_heads 6"}},
		{name: "missing size", cfg: func(c map[string]any) { delete(c, "hidden_size") }, want: []string{"hidden_size is missing"}},
		{name: "rope type", cfg: func(c map[string]any) {
			c["rope_scaling"] = map[string]any{"type": "yarn", "factor": 4.0}
		}, want: []string{`"yarn"`, "rope_scaling"}},
		{name: "activation", cfg: func(c map[string]any) { c["hidden_act"] = "gelu" }, want: []string{`hidden_act "gelu"`}},
		{name: "attention bias", cfg: func(c map[string]any) { c["attention_bias"] = true }, want: []string{"attention_bias"}},
		{name: "model type mismatch", cfg: func(c map[string]any) { c["model_type"] = "gpt2" }, want: []string{"model_type"}},
		{name: "wrong field type", cfg: func(c map[string]any) { c["hidden_size"] = "sixteen" }, want: []string{"config.json", "hidden_size"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := brokenFolder(t, c.cfg, c.tensors)
			_, err := Load(dir, Options{})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
		})
	}
}

// TestLoad_BadFiles covers unreadable inputs: bad JSON, no weights, a
// llama2.c file that is too short, a missing reference.
func TestLoad_BadFiles(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for n, s := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	cases := []struct {
		name string
		ref  func(t *testing.T) string
		want string
	}{
		{"bad json", func(t *testing.T) string { return write(t, map[string]string{"config.json": "{not json"}) }, "config.json"},
		{"no weights", func(t *testing.T) string {
			raw, _ := os.ReadFile(filepath.Join("testdata", "tiny", "llama", "config.json"))
			return write(t, map[string]string{"config.json": string(raw)})
		}, "model.safetensors"},
		{"short llama2.c file", func(t *testing.T) string {
			return filepath.Join(write(t, map[string]string{"m.bin": "abc"}), "m.bin")
		}, "header"},
		{"no such model", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.ref(t), Options{Hub: hubOptionsIn(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
