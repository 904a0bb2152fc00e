package kto

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

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/collective/collectivetest"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/train"
)

// samples share prompts; the happy endings are desirable.
var samples = [][2]string{
	{"Lily went to the park.", " She was very happy."}, {"Lily went to the park.", " She was sad."},
	{"Tom ate the cake.", " It was yummy!"}, {"Tom ate the cake.", " It was bad."},
	{"The dog saw Ben.", " The dog was kind."}, {"The dog saw Ben.", " The dog was mean."},
	{"Sue got a new toy.", " She loved it."}, {"Sue got a new toy.", " She broke it and cried."},
	{"The sun came out.", " It was warm and nice."}, {"The sun came out.", " It was cold and dark."},
	{"Mom came home.", " She gave Ben a hug."}, {"Mom came home.", " She was mad."},
	{"They went to the beach.", " They laughed all day."}, {"They went to the beach.", " They were angry."},
	{"The bird sang.", " Everyone smiled."}, {"The bird sang.", " Nobody liked it."},
}

// dataset writes the samples (even ones desirable) with labels as
// label(i) gives them.
func dataset(t testing.TB, label func(i int) string) string {
	t.Helper()
	var b strings.Builder
	for i, s := range samples {
		fmt.Fprintf(&b, "{\"input\": %q, \"output\": %q, \"label\": %s}\n", s[0], s[1], label(i))
	}
	path := filepath.Join(t.TempDir(), "kto.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func evenDesirable(i int) string { return fmt.Sprint(i%2 == 0) }

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
	c.Data.Dataset, c.Data.OutputKey, c.Data.InputTemplate, c.Data.MaxLen = ds, "output", "", 64
	c.Loss.Beta = 0.1
	tc := &c.Train
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs = 4, 8, 3
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

// TestTrainer_Run: KTO raises the implicit reward of the desirable samples
// above the undesirable ones' and leaves the reference alone.
func TestTrainer_Run(t *testing.T) {
	for _, v := range []struct {
		name string
		set  func(*Config)
	}{
		{"Default", func(*Config) {}},
		{"WeightedPacked", func(c *Config) {
			c.Loss.DesirableWeight, c.Loss.UndesirableWeight, c.Train.Packing = 1.5, 0.7, true
		}},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := testConfig(t, dataset(t, evenDesirable))
			c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 3
			v.set(&c)
			tr, ref := newTrainer(t, c)
			before := snapshot(ref.Params())
			first := tr.evaluate()
			if first["margin"] != 0 || first["kl"] != 0 || math.Abs(first["loss"]-(c.Loss.DesirableWeight+c.Loss.UndesirableWeight)/4) > 1e-6 {
				t.Fatalf("before training the policy is the reference, yet %v", first)
			}
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var margin, loss []float64
			for _, r := range tr.Session().Metrics() {
				if r.Split == "eval" {
					margin, loss = append(margin, r.Values["margin"]), append(loss, r.Values["loss"])
				}
			}
			if len(margin) != 3 || margin[0] != 0 || !(margin[2] > 0.5) || !(loss[2] < loss[0]) {
				t.Fatalf("eval margins %v, losses %v: KTO did not learn", margin, loss)
			}
			if !slices.EqualFunc(before, snapshot(ref.Params()), slices.Equal) {
				t.Fatal("the reference model changed")
			}
		})
	}
}

func snapshot(ps nn.Params) [][]float32 {
	var out [][]float32
	for _, p := range ps {
		out = append(out, slices.Clone(p.Tensor.Data))
	}
	return out
}

// TestTrainer_Mismatched: the KL half pairs prompt i with response i+1,
// cyclically, and trains on that response.
func TestTrainer_Mismatched(t *testing.T) {
	c := testConfig(t, dataset(t, evenDesirable))
	tr, _ := newTrainer(t, c)
	us := tr.train[:3]
	mb := tr.collate(us)
	if mb.matched.B != 3 || mb.mismatched.B != 3 {
		t.Fatalf("rows %d and %d", mb.matched.B, mb.mismatched.B)
	}
	for i := range us {
		want := tr.enc.Mismatched(us[i], us[(i+1)%3])
		if got := tr.enc.Mismatched(us[i], us[(i+1)%3]); !slices.Equal(got.IDs, want.IDs) {
			t.Fatal("Mismatched is not deterministic")
		}
		p, r := us[i].Sample, us[(i+1)%3].Sample
		// the prompt tokens of sample i, then the response tokens of sample i+1
		if !slices.Equal(want.IDs[:p.PromptLen()], p.IDs[:p.PromptLen()]) ||
			!slices.Equal(want.IDs[p.PromptLen():], r.IDs[r.PromptLen():]) {
			t.Errorf("mismatched %d: %v from %v and %v", i, want.IDs, p.IDs, r.IDs)
		}
		if want.PromptLen() != p.PromptLen() || want.LossTokens() != r.LossTokens() {
			t.Errorf("mismatched %d: loss mask %v", i, want.Loss)
		}
	}
}

func TestTrainer_Resume(t *testing.T) {
	ds := dataset(t, evenDesirable)
	base := func() Config {
		c := testConfig(t, ds)
		c.Train.Ckpt.SaveSteps, c.Train.MaxEpochs = 2, 2
		return c
	}
	full, _ := newTrainer(t, base())
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := base()
	c.Train.StopAtStep = 2
	first, _ := newTrainer(t, c)
	if err := first.Run(context.Background()); !errors.Is(err, train.ErrStopped) {
		t.Fatalf("stop: %v", err)
	}
	c.Train.StopAtStep, c.Train.Ckpt.LoadEnable = 0, true
	resumed, _ := newTrainer(t, c)
	if err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if name := collectivetest.FirstDifferent(resumed.params, full.params); name != "" {
		t.Fatalf("%s differs after resume", name)
	}
}

// TestDataParallel_Stages: on 2 goroutine ranks (whose micro-batches
// average their KL estimates) ZeRO stage 3 trains the same policy as
// stage 0 bit for bit. (A data-parallel KTO run does not equal the
// one-process run: as in OpenRLHF, the KL estimate of a micro-batch is
// averaged over the ranks' micro-batches of the same index.)
func TestDataParallel_Stages(t *testing.T) {
	ds := dataset(t, evenDesirable)
	run := func(stage int) nn.Params {
		c := testConfig(t, ds)
		c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxSteps, c.Train.ZeroStage = 2, 8, 3, stage
		collectivetest.Ranks(t, 2, func(comm collective.Comm) error {
			env := testEnv(t)
			env.Comm = comm
			tr, err := New(c, env, loadStories(t).Model)
			if err != nil {
				return err
			}
			return tr.Run(context.Background())
		})
		back, err := load.Load(c.Train.Ckpt.OutputDir, load.Options{})
		if err != nil {
			t.Fatalf("saved policy: %v", err)
		}
		return back.Params()
	}
	s0 := run(0)
	if name := collectivetest.FirstDifferent(run(3), s0); name != "" {
		t.Fatalf("stage 3: %s differs from stage 0", name)
	}
}

// TestNew_Rejects: one class only, the policy as its own reference, bad
// settings.
func TestNew_Rejects(t *testing.T) {
	env := testEnv(t)
	for _, v := range []struct {
		label func(int) string
		want  string
	}{
		{func(int) string { return "true" }, `field "label" has no undesirable (false/0) sample: all 16 are desirable`},
		{func(int) string { return "0" }, `field "label" has no desirable (true/1) sample: all 16 are undesirable`},
	} {
		ds := dataset(t, v.label)
		_, err := New(testConfig(t, ds), env, loadStories(t).Model)
		if err == nil || !strings.Contains(err.Error(), v.want) || !strings.Contains(err.Error(), ds) {
			t.Errorf("one class: %v", err)
		}
	}
	c := testConfig(t, dataset(t, evenDesirable))
	if _, err := New(c, env, env.Model); err == nil || !strings.Contains(err.Error(), "shares weights") {
		t.Fatalf("policy as its own reference: %v", err)
	}
	c.Train.MicroBatchSize = 1
	if _, err := New(c, env, loadStories(t).Model); err == nil || !strings.Contains(err.Error(), "micro_batch_size must be ≥ 2") {
		t.Fatalf("micro-batch 1: %v", err)
	}
	c = testConfig(t, dataset(t, evenDesirable))
	c.Loss.Beta = 0
	if _, err := New(c, env, loadStories(t).Model); err == nil {
		t.Fatal("beta 0 accepted")
	}
	bad := dataset(t, func(i int) string { return `"yes"` })
	if _, err := New(testConfig(t, bad), env, loadStories(t).Model); err == nil || !strings.Contains(err.Error(), "not a label") {
		t.Fatalf("bad labels: %v", err)
	}
}
