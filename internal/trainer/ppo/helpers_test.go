package ppo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/train"
)

// tinyConfig is a random 2-layer Llama with C = 32 over tok512's vocabulary.
const tinyConfig = `{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
"num_key_value_heads": 2, "rms_norm_eps": 1e-05, "tie_word_embeddings": true}`

// tinyEnv writes a random tiny model and the tok512 tokenizer to a folder
// and opens it.
func tinyEnv(t testing.TB) train.Setup {
	t.Helper()
	m, err := llama.New(llama.Config{VocabSize: 512, Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2,
		RMSNormEps: 1e-5, TieWordEmbeddings: true, MaxPositions: 2048})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(rand.New(rand.NewPCG(7, 7)))
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := load.Save(dir, m, []byte(tinyConfig), safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.bin"), assets.Tok512(), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := load.Open(dir, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return train.Setup{Bundle: b}
}

// writePrompts writes n story prompts with labels to a JSONL file.
func writePrompts(t testing.TB, n int) string {
	t.Helper()
	var b strings.Builder
	names := []string{"Lily", "Tom", "Sue", "Max", "Ben", "Mia"}
	for i := range n {
		rec := map[string]any{"input": fmt.Sprintf("Once upon a time, %s saw a %d.", names[i%len(names)], i), "label": i % 7}
		line, _ := json.Marshal(rec)
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tinyConfigFor returns a small, fast configuration for an estimator:
// 4 prompts × 4 samples of ≤ 12 tokens, a length reward (varied values,
// so every estimator has non-zero advantages), high learning rates.
func tinyConfigFor(t testing.TB, est rl.Estimator) Config {
	c := DefaultConfig()
	c.Data.PromptDataset = writePrompts(t, 12)
	c.Data.MaxLen = 64
	c.Rollout.BatchSize, c.Rollout.MaxNewTokens = 4, 12
	c.Algo.Advantage.Estimator, c.Algo.Advantage.SamplesPerPrompt = est, 4
	c.Train.BatchSize, c.Train.MicroBatchSize, c.Train.MaxIterations = 8, 4, 2
	c.Reward.Rule = grade.RuleConfig{Kind: grade.RuleLength, Length: grade.LengthConfig{Target: 20, Unit: grade.UnitChars}}
	c.Actor.Optim.LR, c.Critic.Optim.LR = 1e-3, 1e-3
	c.Actor.Optim.WarmupRatio, c.Critic.Optim.WarmupRatio = 0, 0
	c.Ckpt.OutputDir = filepath.Join(t.TempDir(), "run")
	return c
}

// newTrainer builds in-process roles and a trainer; both are closed when
// the test ends.
func newTrainer(t testing.TB, c Config, env train.Setup) (*Trainer, *inproc.Roles) {
	t.Helper()
	p, err := inproc.Build(c.RoleSpec(), env, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tr, err := New(context.Background(), c, p.Set, Runtime{Tok: env.Tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, p
}

// loadModel is the loader of the tests' roles.
func loadModel(ref string) (*load.Loaded, error) { return load.Load(ref, load.Options{}) }

// snapshot copies every parameter.
func snapshot(ps []role.Param) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range ps {
		out[p.Name] = append([]float32(nil), p.Data...)
	}
	return out
}

// snapshotModel copies every parameter of a model.
func snapshotModel(ps nn.Params) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range ps {
		out[p.Name] = append([]float32(nil), p.Tensor.Data...)
	}
	return out
}

// changed counts the parameters whose values differ from a snapshot.
func changed(before map[string][]float32, ps []role.Param) int {
	n := 0
	for _, p := range ps {
		for i, v := range p.Data {
			if before[p.Name][i] != v {
				n++
				break
			}
		}
	}
	return n
}

// maxAbsDiff is the largest difference between a snapshot and ps.
func maxAbsDiff(a map[string][]float32, ps []role.Param) float64 {
	var d float64
	for _, p := range ps {
		for i, v := range p.Data {
			d = math.Max(d, math.Abs(float64(a[p.Name][i]-v)))
		}
	}
	return d
}

// finiteAll checks that every listed metric is present and finite.
func finiteAll(t testing.TB, m map[string]float64, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, ok := m[k]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("metric %s = %v (present %v); all: %v", k, v, ok, m)
		}
	}
}
