package rmodel

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// tinyRMConfig is a Llama reward model over the tok512 vocabulary, as
// gorlhf train rm writes one for a stories260K backbone.
const tinyRMConfig = `{"architectures": ["LlamaForSequenceClassification"], "model_type": "llama",
	"vocab_size": 512, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
	"num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
	"max_position_embeddings": 256, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
	"pad_token_id": 0}`

// saveTinyRM builds a random reward model with a stored normalisation,
// saves it with its tokenizer to a fresh folder and returns the folder.
func saveTinyRM(t *testing.T) string {
	t.Helper()
	m, err := llama.New(llama.Config{VocabSize: 512, Hidden: 16, Intermediate: 24, Layers: 2, Heads: 4, KVHeads: 2, RMSNormEps: 1e-5, MaxPositions: 256})
	if err != nil {
		t.Fatal(err)
	}
	r := tt.Rand(7)
	m.Init(r)
	s := head.NewScoreModel(m, 16)
	s.Head.Init(r)
	for i := range s.Head.Weight.Data { // larger head: rewards of order 1
		s.Head.Weight.Data[i] *= 20
	}
	s.Norm = head.Norm{Normalize: true, Mean: 0.25, Std: 2}
	dir := filepath.Join(t.TempDir(), "rm")
	if err := load.Save(dir, s, []byte(tinyRMConfig), safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.bin"), assets.Tok512(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadTinyRM(t *testing.T, dir string, mod func(*Config)) (*Source, *load.Loaded) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BatchSize = 3
	if mod != nil {
		mod(&cfg)
	}
	src, l, err := Load(dir, LoadOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return src, l
}

var storySamples = []grade.Sample{
	{Prompt: "Once upon a time, ", Response: "there was a happy little dog."},
	{Prompt: "Lily went to the park. ", Response: "She was sad.\n\n"},
	{Prompt: "Tom had a ball.", Response: ""},
	{Query: "The sun was shining and the birds sang all day long in the big green tree."},
	{Prompt: "A", Response: "B"},
	{Prompt: "One day, a cat ", Response: "found a box. The box was big. The cat jumped in and slept."},
	{Prompt: "x", Response: "y", Tokens: []int32{1, 400, 401, 402}},
}

// TestSource_Score checks batched scoring (sorted, padded, batches of
// 3) against scoring each sequence alone, straight from the model, and the
// stored normalisation.
func TestSource_Score(t *testing.T) {
	dir := saveTinyRM(t)
	raw, l := loadTinyRM(t, dir, nil)
	norm, _ := loadTinyRM(t, dir, func(c *Config) { c.Normalize = true })
	if l.Score.Norm != (head.Norm{Normalize: true, Mean: 0.25, Std: 2}) {
		t.Fatalf("stored norm %+v", l.Score.Norm)
	}
	got, err := raw.Score(context.Background(), storySamples)
	if err != nil {
		t.Fatal(err)
	}
	gotN, err := norm.Score(context.Background(), storySamples)
	if err != nil {
		t.Fatal(err)
	}
	spread := 0.0
	for i, s := range storySamples {
		ids, err := raw.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		pos := make([]int32, len(ids))
		for j := range pos {
			pos[j] = int32(j)
		}
		want := float64(l.Score.Rewards(nil, ids, pos, nil, 1, len(ids), []int{len(ids) - 1}).Data[0])
		if math.Abs(got[i].Reward-want) > 1e-5*max(1, math.Abs(want)) || got[i].Score != got[i].Reward {
			t.Errorf("sample %d: batched reward %v, alone %v", i, got[i], want)
		}
		if wantN := (want - 0.25) / 2; math.Abs(gotN[i].Reward-wantN) > 1e-5 {
			t.Errorf("sample %d: normalised %g, want %g", i, gotN[i].Reward, wantN)
		}
		spread = max(spread, math.Abs(got[i].Reward-got[0].Reward))
	}
	if spread < 1e-3 {
		t.Errorf("all rewards equal (%v): the test cannot tell samples apart", got)
	}
}

func TestSource_Encode(t *testing.T) {
	dir := saveTinyRM(t)
	src, _ := loadTinyRM(t, dir, func(c *Config) { c.MaxLen = 8 })
	ids, err := src.Encode(grade.Sample{Prompt: "Once", Response: " upon\n\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]int32{1}, toIDs(src.cfg.Tok.Encode("Once upon"))...), 2)
	if !slices.Equal(ids, want) {
		t.Errorf("ids %v, want BOS + text + EOS %v", ids, want)
	}
	long, err := src.Encode(grade.Sample{Response: strings.Repeat("the dog ran. ", 20)})
	if err != nil {
		t.Fatal(err)
	}
	if len(long) != 8 || long[0] != 1 || long[7] != 2 {
		t.Errorf("truncated ids %v: want 8 ids, BOS first, EOS last", long)
	}
	tok, err := src.Encode(grade.Sample{Response: "ignored", Tokens: []int32{5, 6, 7}})
	if err != nil || !slices.Equal(tok, []int32{5, 6, 7}) {
		t.Errorf("token ids %v, %v: want them as given", tok, err)
	}
	if _, err := src.Encode(grade.Sample{Tokens: []int32{1, 512}}); err == nil || !strings.Contains(err.Error(), "outside the model's vocabulary [0, 512)") {
		t.Errorf("out-of-vocabulary id: error %v", err)
	}
	if _, err := src.Score(context.Background(), []grade.Sample{{Response: "ok"}, {Tokens: []int32{-1}}}); err == nil || !strings.Contains(err.Error(), "sample 1") {
		t.Errorf("Score with a bad sample: error %v", err)
	}
}

func toIDs(xs []int) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = int32(x)
	}
	return out
}

func TestLoad_Errors(t *testing.T) {
	if _, _, err := Load(load.DefaultModel, LoadOptions{Config: DefaultConfig()}); err == nil || !strings.Contains(err.Error(), "not a reward model") {
		t.Errorf("causal LM: error %v", err)
	}
	dir := saveTinyRM(t)
	if err := os.Remove(filepath.Join(dir, "tokenizer.bin")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir, LoadOptions{Config: DefaultConfig()}); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("no tokenizer: error %v", err)
	}
	bad := DefaultConfig()
	bad.BatchSize = 0
	if _, _, err := Load(dir, LoadOptions{Config: bad, Tokenizer: "/nonexistent"}); err == nil {
		t.Error("bad config and tokenizer: no error")
	}
}
