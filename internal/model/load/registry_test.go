package load_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// The "toy" architecture exists only in this test binary: its own
// config.json keys (toy_vocab, toy_width), its own tensor names ("toy."),
// and one Llama block inside. Registering it is all a program needs to
// load, generate with, train and save it; no other package knows it.

// toySpec is the toy's hyper-parameters.
type toySpec struct{ Vocab, Width int }

func (s toySpec) New() (model.CausalLM, error) {
	m, err := llama.New(llama.Config{VocabSize: s.Vocab, Hidden: s.Width, Intermediate: 2 * s.Width, Layers: 1, Heads: 2,
		RMSNormEps: 1e-5, TieWordEmbeddings: true})
	if err != nil {
		return nil, err
	}
	return &toyModel{Model: m, spec: s}, nil
}

func (s toySpec) ScoreBackbone() model.Spec { return s }

// toyModel reuses a Llama block's forward and decode passes.
type toyModel struct {
	*llama.Model
	spec toySpec
}

func (m *toyModel) Spec() model.Spec { return m.spec }

// Params renames the Llama parameters "model.*" to "toy.*".
func (m *toyModel) Params() nn.Params {
	ps := m.Model.Params()
	for i := range ps {
		ps[i].Name = "toy." + strings.TrimPrefix(ps[i].Name, "model.")
	}
	return ps
}

func parseToy(configJSON []byte, score bool) (model.Spec, []string, error) {
	var c struct {
		Vocab int `json:"toy_vocab"`
		Width int `json:"toy_width"`
	}
	if err := json.Unmarshal(configJSON, &c); err != nil {
		return nil, nil, err
	}
	if c.Vocab <= 0 || c.Width <= 0 || c.Width%4 != 0 {
		return nil, nil, fmt.Errorf("toy_vocab %d and toy_width %d must be > 0, the width a multiple of 4", c.Vocab, c.Width)
	}
	return toySpec{Vocab: c.Vocab, Width: c.Width}, nil, nil
}

var registerToy = sync.OnceValue(func() error {
	return load.Register(load.Arch{ModelType: "toy", CausalLM: "ToyForCausalLM", Score: "ToyForSequenceClassification",
		Parse: parseToy, TiedEmbedding: "toy.embed_tokens.weight"})
})

// TestRegister_ThrowAwayArchitecture registers the toy architecture and
// runs it through load → generate → one SFT step → save → load.
func TestRegister_ThrowAwayArchitecture(t *testing.T) {
	if err := registerToy(); err != nil {
		t.Fatal(err)
	}
	if err := load.Register(load.Arch{ModelType: "toy", CausalLM: "Toy2", Score: "Toy2Score", Parse: parseToy}); err == nil {
		t.Error("a second architecture with model_type toy was registered")
	}
	if !slices.Contains(load.SupportedArchitectures(), "ToyForCausalLM") {
		t.Errorf("supported: %v", load.SupportedArchitectures())
	}
	dir := writeToy(t)

	// load
	b, err := load.Open(dir, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Model.(*toyModel); !ok || b.Arch != "ToyForCausalLM" || b.ModelType != "toy" {
		t.Fatalf("loaded a %T (%s, %s)", b.Model, b.Arch, b.ModelType)
	}
	if d := b.Model.Dims(); d != (model.Dims{Vocab: 512, Hidden: 16, Layers: 1}) {
		t.Errorf("dims %+v", d)
	}
	if c, err := model.Clone(b.Model); err != nil || c.Spec() != model.Spec(toySpec{512, 16}) {
		t.Errorf("clone %T, %v", c, err)
	}

	// generate: the engine's cached decoding equals the full-recompute twin.
	enc := data.PromptEncoder{Tok: b.Tok, BOS: b.BOS()}
	p, err := enc.Text("Once upon a time")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := generate.New(b.Model.(model.Decoder), b.Tok, generate.Config{EOS: b.StopIDs})
	if err != nil {
		t.Fatal(err)
	}
	req := generate.Request{Prompt: p.IDs, Params: generate.SamplingParams{N: 1, MaxNewTokens: 6}}
	res, err := eng.Generate(context.Background(), []generate.Request{req})
	eng.Close()
	if err != nil {
		t.Fatal(err)
	}
	naive, err := generate.Naive(context.Background(), b.Model.(model.Decoder), nil, b.StopIDs, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res[0].Completions[0].Tokens, naive.Completions[0].Tokens; len(got) == 0 || !slices.Equal(got, want) {
		t.Errorf("engine %v, naive %v", got, want)
	}

	// one SFT step, saved at the end of the run
	out := filepath.Join(t.TempDir(), "sft")
	before := b.Model.Params().Find("toy.embed_tokens.weight").Clone()
	tr, err := sft.New(toySFTConfig(t, out), train.Setup{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(before.Data, b.Model.Params().Find("toy.embed_tokens.weight").Data) {
		t.Error("the SFT step did not change the weights")
	}

	// save → load: the saved folder is a toy with the trained weights.
	back, err := load.Open(out, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Model.(*toyModel); !ok {
		t.Fatalf("reloaded a %T", back.Model)
	}
	want := b.Model.Params()
	for i, q := range back.Model.Params() {
		for j, v := range q.Tensor.Data {
			if math.Float32bits(v) != math.Float32bits(want[i].Tensor.Data[j]) {
				t.Fatalf("%s[%d] = %v after the round trip, want %v", q.Name, j, v, want[i].Tensor.Data[j])
			}
		}
	}

	// a fresh score head on the toy saves as ToyForSequenceClassification.
	sm, cfg, err := load.ScoreModel(b.Loaded, b.Model, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	rmDir := filepath.Join(t.TempDir(), "rm")
	if err := load.Save(rmDir, sm, cfg, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	rm, err := load.Load(rmDir, load.Options{})
	if err != nil || rm.Score == nil || rm.Arch != "ToyForSequenceClassification" {
		t.Fatalf("reward model %+v, %v", rm, err)
	}
}

// writeToy saves a random toy with tok512 and returns its folder.
func writeToy(t *testing.T) string {
	t.Helper()
	m, err := toySpec{Vocab: 512, Width: 16}.New()
	if err != nil {
		t.Fatal(err)
	}
	m.(*toyModel).Init(rand.New(rand.NewPCG(5, 5)))
	dir := filepath.Join(t.TempDir(), "toy")
	cfg := []byte(`{"architectures": ["ToyForCausalLM"], "model_type": "toy", "toy_vocab": 512, "toy_width": 16}`)
	if err := load.Save(dir, m, cfg, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := load.Save(filepath.Join(t.TempDir(), "x"), m, []byte(`{"model_type": "toy", "toy_vocab": 512, "toy_width": 32}`), safetensors.F32); err == nil {
		t.Error("saved a toy with a config.json that does not describe it")
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.bin"), assets.Tok512(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// toySFTConfig is one SFT step over two examples.
func toySFTConfig(t *testing.T, out string) sft.Config {
	t.Helper()
	ds := filepath.Join(t.TempDir(), "sft.jsonl")
	recs := `{"input": "Once upon a time", "output": " there was a cat."}` + "\n" + `{"input": "Lily saw", "output": " a dog."}` + "\n"
	if err := os.WriteFile(ds, []byte(recs), 0o644); err != nil {
		t.Fatal(err)
	}
	c := sft.DefaultConfig()
	c.Samples = 0
	c.Data.Dataset, c.Data.InputKey, c.Data.OutputKey, c.Data.MaxLen = ds, "input", "output", 32
	c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxEpochs = 2, 2, 1
	c.Train.Optim.LR, c.Train.Optim.WarmupRatio = 1e-3, 0 // the one step moves the weights
	c.Train.Ckpt.OutputDir = out
	return c
}
