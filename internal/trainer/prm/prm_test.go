package prm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// steps are step-tagged solutions (tag "@") with their labels.
var steps = []struct {
	input string
	label string // JSON list
}{
	{"3+4=?\n3+4=7 @", `["+"]`},
	{"3+4=?\n3+4=8 @", `["-"]`},
	{"5+2+1=?\n5+2=7 @\n7+1=8 @", `["+","+"]`},
	{"5+2+1=?\n5+2=6 @\n6+1=7 @", `["-","-"]`},
	{"9-3+2=?\n9-3=6 @\n6+2=9 @", `["+","-"]`},
	{"8-1=?\n8-1=7 @", `["+"]`},
}

func write(t testing.TB, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "steps.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func dataset(t testing.TB) string {
	var lines []string
	for _, s := range steps {
		lines = append(lines, fmt.Sprintf(`{"input": %q, "label": %s}`, s.input, s.label))
	}
	return write(t, lines)
}

func testEnv(t testing.TB) train.Setup {
	t.Helper()
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return train.Setup{Bundle: b}
}

func testConfig(t testing.TB, ds string) Config {
	t.Helper()
	c := DefaultConfig()
	c.PlaceholderToken, c.RewardTokens = "@", []string{"+", "-"}
	out := t.TempDir()
	c.Data.Dataset, c.Data.MaxLen = ds, 64
	tc := &c.Train
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs = 2, 6, 150
	tc.Optim.LR, tc.Optim.WarmupRatio = 3e-3, 0
	tc.Ckpt.OutputDir, tc.Ckpt.Path = out, filepath.Join(out, "checkpoints")
	return c
}

// TestTrainer_Run trains on a few solutions until the step accuracy on
// them is perfect, and checks the outputs: an HF causal LM that scores as
// the trained one, and prm.json.
func TestTrainer_Run(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 75
	tr, err := New(c, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if tr.tokens.Placeholder != 67 || !slices.Equal(tr.tokens.Reward, []int32{496, 464}) {
		t.Fatalf("tokens %+v, want tok512's @ (67), + (496), - (464)", tr.tokens)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var acc, loss []float64
	for _, r := range tr.Session().Metrics() {
		if r.Split == "eval" {
			acc, loss = append(acc, r.Values["acc"]), append(loss, r.Values["loss"])
			if r.Values["tags"] != 9 {
				t.Fatalf("eval over %v tags, want 9", r.Values["tags"])
			}
		}
	}
	if len(acc) != 3 || !(loss[2] < loss[0]) || acc[2] != 1 {
		t.Fatalf("eval loss %v, acc %v: the PRM did not learn the 9 steps", loss, acc)
	}
	out := c.Train.Ckpt.OutputDir
	spec, err := prmodel.ReadSpec(out)
	if err != nil || spec.PlaceholderToken != "@" || !slices.Equal(spec.RewardTokens, []string{"+", "-"}) {
		t.Fatalf("prm.json: %+v, %v", spec, err)
	}
	back, err := load.Load(out, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := Evaluate(back.Model, tr.tokens, tr.eval, 4, tr.pad)
	if m["acc"] != acc[2] || m["loss"] != loss[2] {
		t.Fatalf("reloaded model: %v; trained: acc %v loss %v", m, acc[2], loss[2])
	}
}

// TestTrainer_PackedEqualsPadded compares the loss and gradients of a
// micro-batch laid out padded and packed.
func TestTrainer_PackedEqualsPadded(t *testing.T) {
	tr, err := New(testConfig(t, dataset(t)), testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Session().Close()
	run := func(packed bool) (float32, [][]float32) {
		tr.cfg.Train.Packing = packed
		for _, p := range tr.model.Params() {
			p.Tensor.Grad = nil
		}
		tp := tensor.NewTape()
		z, target, _ := tr.forward(tp, tr.train)
		loss := Loss(tp, z, target, 0.1)
		tp.Backward(loss)
		var g [][]float32
		for _, p := range tr.model.Params() {
			g = append(g, slices.Clone(p.Tensor.Grad))
		}
		return loss.Item(), g
	}
	l1, g1 := run(false)
	l2, g2 := run(true)
	if d := l1 - l2; d > 1e-5 || d < -1e-5 {
		t.Fatalf("loss padded %v, packed %v", l1, l2)
	}
	for i := range g1 {
		for j := range g1[i] {
			if d := g1[i][j] - g2[i][j]; d > 1e-4 || d < -1e-4 {
				t.Fatalf("param %d elem %d: grad padded %v, packed %v", i, j, g1[i][j], g2[i][j])
			}
		}
	}
}

// TestRead_Soft reads soft labels into [p, 1−p] targets.
func TestRead_Soft(t *testing.T) {
	ds := write(t, []string{`{"input": "1+1=2 @ 2+1=3 @", "label": [0.9, 0.25]}`})
	tok := testEnv(t).Tok
	tokens, err := NewTokens(tok, "@", []string{"+", "-"})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := Reader{Tok: tok, Tokens: tokens, InputKey: "input", LabelKey: "label", MaxLen: 64}.Read(ds, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := Targets(s, 2); !slices.Equal(got, []float32{0.9, 1 - float32(0.9), 0.25, 0.75}) {
		t.Fatalf("targets %v", got)
	}
}

// TestRead_BadInput checks that a dataset a PRM cannot learn from is an
// error naming the file and line, before anything is written.
func TestRead_BadInput(t *testing.T) {
	cases := []struct {
		name, line, reward, want string
	}{
		{"no step tags", `{"input": "3+4=7", "label": ["+"]}`, "+,-", `:2: no step tag: key "input" holds no placeholder token`},
		{"label count", `{"input": "3+4=7 @ 7+1=8 @", "label": ["+"]}`, "+,-", ":2: 1 labels for 2 step tags"},
		{"not a reward token", `{"input": "3+4=7 @", "label": ["x"]}`, "+,-", `:2: label 1: "x" is not a reward token`},
		{"soft needs two", `{"input": "3+4=7 @", "label": [0.5]}`, "", ":2: soft (numeric) labels need exactly two reward tokens"},
		{"soft range", `{"input": "3+4=7 @", "label": [1.5]}`, "+,-", ":2: label 1: soft label 1.5 is not a probability"},
		{"mixed kinds", `{"input": "3+4=7 @", "label": [0.5]}`, "+,-", ":2: soft (numeric) labels after hard (token) ones"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := write(t, []string{`{"input": "1+1=2 @", "label": ["+"]}`, c.line})
			cfg := testConfig(t, ds)
			cfg.RewardTokens = nil
			if c.reward != "" {
				cfg.RewardTokens = strings.Split(c.reward, ",")
			}
			_, err := New(cfg, testEnv(t))
			if err == nil || !strings.Contains(err.Error(), ds+c.want) {
				t.Fatalf("error %v, want %q", err, ds+c.want)
			}
			if ents, _ := os.ReadDir(cfg.Train.Ckpt.OutputDir); len(ents) != 0 {
				t.Fatalf("run folder holds %d entries after a data error", len(ents))
			}
		})
	}
	// a placeholder that is several tokens
	cfg := testConfig(t, dataset(t))
	cfg.PlaceholderToken = "ки"
	if _, err := New(cfg, testEnv(t)); err == nil || !strings.Contains(err.Error(), `placeholder token: "ки" is 5 tokens`) {
		t.Fatalf("error %v", err)
	}
}
