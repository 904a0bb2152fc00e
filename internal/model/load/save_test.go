package load

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// storedNames lists the tensor names of a saved folder.
func storedNames(t *testing.T, dir string) []string {
	t.Helper()
	f, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Names()
}

func readConfigKeys(t *testing.T, dir string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSave_RoundTrip saves every tiny model and loads it back: same
// architecture, bit-identical parameters, and the files HF would write
// (tied heads once, GPT-2 under "transformer." without mask buffers).
func TestSave_RoundTrip(t *testing.T) {
	for _, c := range tinyCases {
		t.Run(c.name, func(t *testing.T) {
			l, err := Load(filepath.Join("testdata", "tiny", c.name), Options{})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "out")
			if err := Save(dir, l.Module(), l.Config, safetensors.F32); err != nil {
				t.Fatal(err)
			}
			back, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if back.Arch != l.Arch || back.DType != "F32" {
				t.Errorf("reloaded %s %s, want %s F32", back.Arch, back.DType, l.Arch)
			}
			assertSameParams(t, l, back)
			names := storedNames(t, dir)
			var want []string
			for _, p := range l.Params() {
				want = append(want, p.Name)
			}
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Errorf("stored tensors %v, want %v", names, want)
			}
			keys := readConfigKeys(t, dir)
			if keys["torch_dtype"] != "float32" {
				t.Errorf("torch_dtype %v", keys["torch_dtype"])
			}
			if l.Score != nil {
				if keys["normalize_reward"] != true || keys["mean"] != 0.5 || keys["std"] != 2.0 {
					t.Errorf("reward normalisation not kept: %v %v %v", keys["normalize_reward"], keys["mean"], keys["std"])
				}
				if back.Score.Norm != l.Score.Norm {
					t.Errorf("reloaded norm %+v, want %+v", back.Score.Norm, l.Score.Norm)
				}
			}
		})
	}
}

func assertSameParams(t *testing.T, a, b *Loaded) {
	t.Helper()
	pa, pb := a.Params(), b.Params()
	if len(pa) != len(pb) {
		t.Fatalf("%d parameters, want %d", len(pb), len(pa))
	}
	for i, p := range pa {
		q := pb[i]
		if p.Name != q.Name {
			t.Fatalf("parameter %d is %s, want %s", i, q.Name, p.Name)
		}
		for j, v := range p.Tensor.Data {
			if math.Float32bits(v) != math.Float32bits(q.Tensor.Data[j]) {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, j, q.Tensor.Data[j], v)
			}
		}
	}
}

// TestSave_TiedAndGPT2Names checks the stored names: no lm_head.weight for
// tied models, a separate one for untied models, GPT-2 with its prefix.
func TestSave_TiedAndGPT2Names(t *testing.T) {
	for _, c := range []struct {
		name       string
		has, hasNo string
	}{
		{"qwen2", "model.embed_tokens.weight", "lm_head.weight"},
		{"qwen3", "lm_head.weight", ""},
		{"gpt2", "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.bias"},
		{"llama_seqcls", "score.weight", "lm_head.weight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := Load(filepath.Join("testdata", "tiny", c.name), Options{})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "out")
			if err := Save(dir, l.Module(), l.Config, safetensors.BF16); err != nil {
				t.Fatal(err)
			}
			names := storedNames(t, dir)
			if !slices.Contains(names, c.has) || (c.hasNo != "" && slices.Contains(names, c.hasNo)) {
				t.Errorf("stored %v: want %q and not %q", names, c.has, c.hasNo)
			}
			if keys := readConfigKeys(t, dir); keys["torch_dtype"] != "bfloat16" {
				t.Errorf("torch_dtype %v, want bfloat16", keys["torch_dtype"])
			}
		})
	}
}

// TestSave_Folder checks the write discipline: a new folder appears whole
// (no temporary left), an existing folder keeps its other files and loses
// a stale sharded index, and a failed save leaves nothing behind.
func TestSave_Folder(t *testing.T) {
	l, err := Load(filepath.Join("testdata", "tiny", "qwen2"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("new", func(t *testing.T) {
		parent := t.TempDir()
		if err := Save(filepath.Join(parent, "a", "b"), l.Module(), l.Config, safetensors.F32); err != nil {
			t.Fatal(err)
		}
		ents, _ := os.ReadDir(filepath.Join(parent, "a"))
		if len(ents) != 1 || ents[0].Name() != "b" {
			t.Errorf("parent holds %v, want only b", ents)
		}
	})
	t.Run("existing", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join("testdata", "tiny", "mistral")
		for _, n := range []string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
			copyFile(t, filepath.Join(src, n), filepath.Join(dir, n))
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Save(dir, l.Module(), l.Config, safetensors.F32); err != nil {
			t.Fatal(err)
		}
		var names []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if want := []string{"config.json", "model.safetensors", "tokenizer.json"}; !slices.Equal(names, want) {
			t.Errorf("folder holds %v, want %v", names, want)
		}
		back, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		assertSameParams(t, l, back)
	})
	t.Run("replace", func(t *testing.T) {
		// A run folder holding an older (sharded) model, its logs and
		// tokenizer: the new model replaces the old one as a whole, the
		// rest stays, nothing temporary is left.
		dir := t.TempDir()
		src := filepath.Join("testdata", "tiny", "mistral")
		for _, n := range []string{"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
			copyFile(t, filepath.Join(src, n), filepath.Join(dir, n))
		}
		for _, n := range []string{"train.log", "tokenizer.json"} {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := SaveWith(dir, l.Module(), l.Config, safetensors.F32, map[string][]byte{"tokenizer.json": []byte("new")}); err != nil {
			t.Fatal(err)
		}
		var names []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if want := []string{"config.json", "model.safetensors", "tokenizer.json", "train.log"}; !slices.Equal(names, want) {
			t.Errorf("folder holds %v, want %v", names, want)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "tokenizer.json")); string(b) != "new" {
			t.Errorf("tokenizer.json = %q", b)
		}
		back, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		assertSameParams(t, l, back)
		if err := SaveWith(dir, l.Module(), l.Config, safetensors.F32, map[string][]byte{"../x": nil}); err == nil {
			t.Error("an extra file outside the folder was accepted")
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		parent := t.TempDir()
		other, err := os.ReadFile(filepath.Join("testdata", "tiny", "llama", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		err = Save(filepath.Join(parent, "x"), l.Module(), other, safetensors.F32)
		if err == nil || !strings.Contains(err.Error(), "does not describe the model") {
			t.Errorf("saving qwen2 weights with a llama config: %v", err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("a failed save left %v", ents)
		}
	})
	t.Run("dtype", func(t *testing.T) {
		if err := Save(filepath.Join(t.TempDir(), "x"), l.Module(), l.Config, safetensors.F16); err == nil {
			t.Error("saving F16 succeeded")
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSave_NewScoreModel builds a GPT-2 critic from scratch (backbone plus
// a fresh head), saves it as GPT2ForSequenceClassification and loads it.
func TestSave_NewScoreModel(t *testing.T) {
	cfg := gpt2.Config{VocabSize: 11, MaxPositions: 8, Hidden: 8, Layers: 1, Heads: 2, LayerNormEps: 1e-5}
	m, err := gpt2.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := tt.Rand(3)
	m.Init(r)
	s := head.NewScoreModel(m, cfg.Hidden)
	s.Head.Init(r)
	hf := `{"architectures": ["GPT2ForSequenceClassification"], "model_type": "gpt2", "vocab_size": 11,
		"n_positions": 8, "n_embd": 8, "n_layer": 1, "n_head": 2, "layer_norm_epsilon": 1e-05, "pad_token_id": 0}`
	dir := filepath.Join(t.TempDir(), "critic")
	if err := Save(dir, s, []byte(hf), safetensors.F32); err != nil {
		t.Fatal(err)
	}
	l, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, isGPT2 := l.Model.(*gpt2.Model); l.Score == nil || !isGPT2 || l.PadTokenID != 0 {
		t.Fatalf("loaded %s, score %v, pad %d", l.Arch, l.Score != nil, l.PadTokenID)
	}
	names := storedNames(t, dir)
	if !slices.Contains(names, "score.weight") || !slices.Contains(names, "transformer.wte.weight") {
		t.Errorf("stored %v", names)
	}
	ids, pos := []int32{3, 4, 5}, []int32{0, 1, 2}
	a, b := s.Values(nil, ids, pos, nil, 1, 3), l.Score.Values(nil, ids, pos, nil, 1, 3)
	if !slices.Equal(a.Data, b.Data) {
		t.Errorf("values %v after the round trip, want %v", b.Data, a.Data)
	}
}
