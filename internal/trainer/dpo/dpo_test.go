package dpo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/train"
)

// pairs share a prompt; the chosen ending is the happy one.
var pairs = [][3]string{
	{"Lily went to the park.", " She was very happy.", " She was sad."},
	{"Tom ate the cake.", " It was yummy!", " It was bad."},
	{"The dog saw Ben.", " The dog was kind.", " The dog was mean."},
	{"Sue got a new toy.", " She loved it.", " She broke it and cried."},
	{"The sun came out.", " It was warm and nice.", " It was cold and dark."},
	{"Mom came home.", " She gave Ben a hug.", " She was mad."},
	{"They went to the beach.", " They laughed all day.", " They were angry."},
	{"The bird sang.", " Everyone smiled.", " Nobody liked it."},
}

func dataset(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "{\"prompt\": %q, \"chosen\": %q, \"rejected\": %q}\n", p[0], p[1], p[2])
	}
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadStories(t testing.TB) *load.Loaded {
	t.Helper()
	m, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
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
	out := t.TempDir()
	c.Data.Dataset, c.Data.PromptKey, c.Data.MaxLen = ds, "prompt", 64
	tc := &c.Train
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs = 2, 4, 3
	tc.Optim.LR, tc.Optim.WarmupRatio = 2e-3, 0
	tc.Ckpt.OutputDir, tc.Ckpt.Path = out, filepath.Join(out, "checkpoints")
	return c
}

func newTrainer(t testing.TB, c Config) (*Trainer, model.CausalLM) {
	t.Helper()
	ref := loadStories(t).Model
	tr, err := New(c, testEnv(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	return tr, ref
}

func TestTrainer_Run(t *testing.T) {
	for _, variant := range []struct {
		name string
		set  func(*Config)
	}{
		{"DPO", func(*Config) {}},
		{"IPO", func(c *Config) { c.Loss.IPO, c.Train.Optim.LR = true, 5e-4 }},
		{"CDPOWithNLL", func(c *Config) { c.Loss.LabelSmoothing, c.NLLCoef = 0.1, 0.2 }},
	} {
		t.Run(variant.name, func(t *testing.T) {
			c := testConfig(t, dataset(t))
			c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 3
			variant.set(&c)
			tr, ref := newTrainer(t, c)
			before := refSnapshot(ref)
			first := tr.evaluate()
			if first["acc"] != 0 || first["chosen_reward"] != 0 {
				t.Fatalf("before training the policy is the reference, yet %v", first)
			}
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var acc, margin []float64
			for _, r := range tr.Session().Metrics() {
				if r.Split == "eval" {
					acc, margin = append(acc, r.Values["acc"]), append(margin, r.Values["margin"])
				}
			}
			// eval at steps 0 (policy = reference: every reward is 0), 3 and 6
			if len(acc) != 3 || acc[0] != 0 || margin[0] != 0 || acc[2] < 0.75 || !(margin[2] > 0) {
				t.Fatalf("eval reward accuracy %v, margins %v: DPO did not learn", acc, margin)
			}
			if !slices.EqualFunc(before, refSnapshot(ref), slices.Equal) {
				t.Fatal("the reference model changed")
			}
		})
	}
}

func refSnapshot(m model.CausalLM) [][]float32 {
	var out [][]float32
	for _, p := range m.Params() {
		out = append(out, slices.Clone(p.Tensor.Data))
	}
	return out
}

// TestTrainer_PackedEqualsPadded compares sequence log-probs, loss and
// gradients of a micro-batch laid out padded and packed.
func TestTrainer_PackedEqualsPadded(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.NLLCoef = 0.5
	tr, _ := newTrainer(t, c)
	// Move the policy off the reference so that the loss has a slope.
	r := tt.Rand(3)
	for _, p := range tr.params {
		for i := range p.Tensor.Data {
			p.Tensor.Data[i] += 0.01 * float32(r.NormFloat64())
		}
	}
	run := func(packed bool) (float32, [][]float32) {
		tr.cfg.Train.Packing = packed
		b := tr.collate(tr.train[:4])
		if packed && b.B >= 8 {
			t.Fatalf("packing used %d rows for 8 sequences", b.B)
		}
		refC, refR := tr.refLogProbs(b)
		tp := tensor.NewTape()
		res := tr.forward(tp, b, refC, refR, 4)
		tp.Backward(res.loss)
		var g [][]float32
		for _, p := range tr.params {
			g = append(g, slices.Clone(p.Tensor.Grad))
		}
		tr.params.ZeroGrad()
		return res.loss.Item(), g
	}
	lPad, gPad := run(false)
	lPack, gPack := run(true)
	if math.Abs(float64(lPad-lPack)) > 1e-5*math.Abs(float64(lPad)) {
		t.Errorf("loss %v vs %v", lPad, lPack)
	}
	for i := range gPad {
		if e := tt.MaxRelErr(gPack[i], gPad[i], 1e-8); e > 3e-5 {
			t.Errorf("gradient of %s: max relative error %.3g", tr.params[i].Name, e)
		}
	}
}

func TestTrainer_Resume(t *testing.T) {
	ds := dataset(t)
	base := func() Config {
		c := testConfig(t, ds)
		c.Train.Ckpt.SaveSteps = 2
		return c
	}
	full, _ := newTrainer(t, base())
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := base()
	c.Train.StopAtStep = 3
	first, _ := newTrainer(t, c)
	if err := first.Run(context.Background()); !errors.Is(err, train.ErrStopped) {
		t.Fatalf("stop: %v", err)
	}
	c.Train.StopAtStep, c.Train.Ckpt.LoadEnable = 0, true
	resumed, _ := newTrainer(t, c)
	if err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, p := range full.params {
		for j, v := range p.Tensor.Data {
			if math.Float32bits(v) != math.Float32bits(resumed.params[i].Tensor.Data[j]) {
				t.Fatalf("%s differs at %d after resume", p.Name, j)
			}
		}
	}
}

func TestNew_Rejects(t *testing.T) {
	env := testEnv(t)
	c := testConfig(t, dataset(t))
	if _, err := New(c, env, env.Model); err == nil || !strings.Contains(err.Error(), "shares weights") {
		t.Fatalf("policy as its own reference: %v", err)
	}
	c.Loss.Beta = 0
	if _, err := New(c, env, loadStories(t).Model); err == nil {
		t.Fatal("beta 0 accepted")
	}
}
