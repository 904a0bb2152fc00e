package lora

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

var update = flag.Bool("update", false, "rewrite testdata/lora_peft: the adapters, and the logits of tools/lora_peft_apply.py (needs /usr/bin/python3 with torch)")

// peftCase is a base model built the same way every run (the embedded
// stories260K, or a seeded tiny GPT-2) with seeded adapters.
type peftCase struct {
	name   string
	base   func(t *testing.T) (model.CausalLM, []byte) // the model and its config.json
	cfg    Config
	ids    [][]int32
	bScale float32
}

func peftCases() []peftCase {
	return []peftCase{
		{name: "stories260K", cfg: Config{Rank: 4, Alpha: 8, TargetModules: AllLinear},
			ids: [][]int32{{1, 403, 27, 311, 9, 66, 120, 4}, {1, 22, 5, 300, 301, 2, 8, 9}},
			base: func(t *testing.T) (model.CausalLM, []byte) {
				l, err := load.Load(load.DefaultModel, load.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return l.Model, l.Config
			}},
		{name: "gpt2", cfg: Config{Rank: 2, Alpha: 6, TargetModules: "c_attn,c_proj,c_fc"},
			ids: [][]int32{{1, 5, 9, 2, 16, 3}},
			base: func(t *testing.T) (model.CausalLM, []byte) {
				return tinyGPT2(t, 11), []byte(`{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 17,
  "n_positions": 8, "n_embd": 8, "n_layer": 2, "n_head": 2, "layer_norm_epsilon": 1e-5}`)
			}},
	}
}

// TestPEFT_TorchAppliesOurAdapter: an adapter folder gorlhf writes,
// applied to its base by PEFT's documented merge rule in PyTorch
// (tools/lora_peft_apply.py, run with -update), gives the logits our
// unmerged adapters compute (≤ 1e-5). The committed folder is also what
// Save writes today, tensor for tensor, and what Read and File.Attach
// read back.
func TestPEFT_TorchAppliesOurAdapter(t *testing.T) {
	for _, c := range peftCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := modeltest.RepoFile("testdata", "lora_peft", c.name)
			m, cfgJSON := c.base(t)
			a, err := Attach(m, c.cfg, 21)
			if err != nil {
				t.Fatal(err)
			}
			randomB(a, 22)
			fresh := t.TempDir()
			if err := a.Save(fresh, c.name, nil); err != nil {
				t.Fatal(err)
			}
			if *update {
				regenerate(t, c, dir, fresh, m, cfgJSON)
			}
			sameTensors(t, filepath.Join(dir, WeightsFile), filepath.Join(fresh, WeightsFile))

			f, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			base, _ := c.base(t)
			if _, err := f.Attach(base); err != nil {
				t.Fatal(err)
			}
			var want struct {
				Logits []float32 `json:"logits"`
			}
			b, err := os.ReadFile(filepath.Join(dir, "torch_logits.json"))
			if err != nil {
				t.Fatalf("%v (regenerate: go test ./internal/lora -run PEFT -update)", err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			var ids, pos []int32
			for _, row := range c.ids {
				ids = append(ids, row...)
				for j := range row {
					pos = append(pos, int32(j))
				}
			}
			got := base.Forward(nil, ids, pos, nil, len(c.ids), len(c.ids[0]))
			e := tt.MaxRelErr(got.Data, want.Logits, 1e-6)
			t.Logf("logits vs PyTorch's PEFT merge: max relative error %.2g", e)
			if e > 1e-5 {
				t.Fatalf("logits max relative error %.3g > 1e-5", e)
			}
		})
	}
}

// regenerate rewrites the committed adapter folder and the PyTorch logits.
func regenerate(t *testing.T, c peftCase, dir, fresh string, m model.CausalLM, cfgJSON []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ConfigFile, WeightsFile} {
		b, err := os.ReadFile(filepath.Join(fresh, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inputs, _ := json.Marshal(map[string]any{"ids": c.ids})
	if err := os.WriteFile(filepath.Join(dir, "inputs.json"), inputs, 0o644); err != nil {
		t.Fatal(err)
	}
	// the base, without its adapters (they are saved apart)
	base, _ := c.base(t)
	baseDir := t.TempDir()
	if err := load.Save(baseDir, base, cfgJSON, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", modeltest.RepoFile("tools", "lora_peft_apply.py"), baseDir, dir,
		filepath.Join(dir, "inputs.json"), filepath.Join(dir, "torch_logits.json"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lora_peft_apply.py: %v\n%s", err, out)
	}
}

func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	fa, err := safetensors.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := safetensors.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if !slices.Equal(fa.Names(), fb.Names()) {
		t.Fatalf("tensor names differ:\n%v\n%v", fa.Names(), fb.Names())
	}
	for _, n := range fa.Names() {
		x, _, _ := fa.Float32(n)
		y, _, _ := fb.Float32(n)
		if !slices.Equal(x, y) {
			t.Fatalf("tensor %s differs from what Save writes now", n)
		}
	}
}
