package kd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/collective/collectivetest"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// stories are prompt/response records in the style stories260K was
// trained on.
var stories = [][2]string{
	{"Who did Lily see?", " Lily saw a big dog in the park."},
	{"What did Tom like?", " Tom liked to play with his red ball."},
	{"Where was the cat?", " The cat was on the mat."},
	{"What did Mom say?", " Mom said it was time for bed, so Ben went to sleep."},
	{"Why was Sue sad?", " Sue was sad because her toy was broken."},
	{"What did the bird do?", " The bird sang a happy song in the tree."},
	{"Who helped Max?", " His friend Sam helped Max find his hat."},
	{"What was in the box?", " There was a small toy car in the box."},
}

func dataset(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, s := range stories {
		fmt.Fprintf(&b, "{\"input\": %q, \"output\": %q}\n", s[0], s[1])
	}
	p := filepath.Join(t.TempDir(), "stories.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t testing.TB, ref string) *load.Bundle {
	t.Helper()
	b, err := load.Open(ref, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConfig(t testing.TB, ds, teacher string) Config {
	t.Helper()
	c := DefaultConfig()
	out := t.TempDir()
	c.Teacher = teacher
	c.Data.Dataset, c.Data.InputTemplate, c.Data.MaxLen = ds, "", 64
	tc := &c.Train
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs = 2, 4, 3
	tc.Optim.LR, tc.Optim.WarmupRatio = 2e-3, 0
	tc.Ckpt.OutputDir, tc.Ckpt.Path = out, filepath.Join(out, "checkpoints")
	return c
}

// teacherOnce is a teacher trained here: stories260K fine-tuned by SFT on
// the stories for 4 epochs.
var teacherOnce struct {
	sync.Once
	dir string
	err error
}

func teacherDir(t *testing.T) string {
	t.Helper()
	teacherOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kd-teacher-")
		if err != nil {
			teacherOnce.err = err
			return
		}
		c := sft.DefaultConfig()
		c.Data.Dataset, c.Data.OutputKey, c.Data.InputTemplate, c.Data.MaxLen = dataset(t), "output", "", 64
		c.Samples = 0
		c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxEpochs = 4, 8, 4
		c.Train.Optim.LR, c.Train.Optim.WarmupRatio = 3e-3, 0
		c.Train.Ckpt.OutputDir, c.Train.Ckpt.Path = dir, filepath.Join(dir, "checkpoints")
		tr, err := sft.New(c, train.Setup{Bundle: open(t, load.DefaultModel)})
		if err == nil {
			err = tr.Run(context.Background())
		}
		teacherOnce.dir, teacherOnce.err = dir, err
	})
	if teacherOnce.err != nil {
		t.Fatalf("teacher: %v", teacherOnce.err)
	}
	return teacherOnce.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if teacherOnce.dir != "" {
		os.RemoveAll(teacherOnce.dir)
	}
	os.Exit(code)
}

// TestTrainer_Run: distilling (kd_coef 1) brings the student's
// distributions closer to the teacher's than plain SFT (kd_coef 0) in the
// same steps (10 epochs: plain SFT overshoots the teacher towards the
// one-hot targets), and the teacher stays as it was.
func TestTrainer_Run(t *testing.T) {
	teacher := teacherDir(t)
	ds := dataset(t)
	kl := map[float64][]float64{}
	for _, coef := range []float64{0, 1} {
		c := testConfig(t, ds, teacher)
		c.KDCoef = coef
		c.Train.Eval.Dataset, c.Train.Eval.Steps, c.Train.MaxEpochs = ds, 10, 10
		tb := open(t, teacher)
		tr, err := New(c, train.Setup{Bundle: open(t, load.DefaultModel)}, tb)
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(tb.Params())
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, r := range tr.Session().Metrics() {
			if r.Split == "eval" {
				kl[coef] = append(kl[coef], r.Values["kl"])
			}
		}
		if collectivetest.FirstDifferent(tb.Params(), before) != "" {
			t.Fatal("the teacher changed")
		}
	}
	t.Logf("eval KL(teacher ‖ student) by step: SFT %.4f, KD %.4f", kl[0], kl[1])
	sft, dist := kl[0], kl[1]
	if len(sft) != 3 || sft[0] != dist[0] || !(dist[2] < sft[2]) || !(dist[2] < dist[0]/2) {
		t.Fatalf("KL to the teacher: SFT %v, KD %v: distillation did not pull the student to the teacher", sft, dist)
	}
}

func snapshot(ps nn.Params) nn.Params {
	out := make(nn.Params, len(ps))
	for i, p := range ps {
		c := *p.Tensor
		c.Data = append([]float32(nil), p.Tensor.Data...)
		out[i] = p
		out[i].Tensor = &c
	}
	return out
}

// TestDataParallel_MatchesOneProcess: a student distilled on 2 goroutine
// ranks equals the one-process run within 1e-6, and ZeRO stage 3 equals
// stage 0 bit for bit.
func TestDataParallel_MatchesOneProcess(t *testing.T) {
	teacher := teacherDir(t)
	ds := dataset(t)
	collectivetest.MatchesOneProcess(t, []int{2}, 1e-6, func(t *testing.T, n, stage int) nn.Params {
		c := testConfig(t, ds, teacher)
		c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxSteps, c.Train.ZeroStage = 1, 4, 3, stage
		collectivetest.Ranks(t, n, func(comm collective.Comm) error {
			env := train.Setup{Bundle: open(t, load.DefaultModel), Comm: comm}
			tr, err := New(c, env, open(t, teacher))
			if err != nil {
				return err
			}
			return tr.Run(context.Background())
		})
		back, err := load.Load(c.Train.Ckpt.OutputDir, load.Options{})
		if err != nil {
			t.Fatalf("saved student: %v", err)
		}
		return back.Params()
	})
}

// TestNew_Rejects: a teacher with another tokenizer, the student as its
// own teacher, bad settings.
func TestNew_Rejects(t *testing.T) {
	ds := dataset(t)
	env := train.Setup{Bundle: open(t, load.DefaultModel)}
	other := open(t, load.DefaultModel)
	gpt2, err := tokenizer.Load(filepath.Join("..", "..", "tokenizer", "testdata", "gpt2", "tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	other.Tok = gpt2
	c := testConfig(t, ds, "gpt2-tokenizer-teacher")
	if _, err := New(c, env, other); err == nil || !strings.Contains(err.Error(), "tokenizers differ: 50257 tokens vs 512") ||
		!strings.Contains(err.Error(), "gpt2-tokenizer-teacher") {
		t.Errorf("other tokenizer: %v", err)
	}
	if _, err := New(c, env, env.Bundle); err == nil || !strings.Contains(err.Error(), "shares weights") {
		t.Errorf("student as its own teacher: %v", err)
	}
	c.Teacher = ""
	if _, err := New(c, env, open(t, load.DefaultModel)); err == nil || !strings.Contains(err.Error(), "--teacher.model_name_or_path is required") {
		t.Errorf("no teacher: %v", err)
	}
	c = testConfig(t, ds, "x")
	c.KDCoef = 1.5
	if _, err := New(c, env, open(t, load.DefaultModel)); err == nil || !strings.Contains(err.Error(), "--model.kd_coef must be in [0, 1]") {
		t.Errorf("kd_coef 1.5: %v", err)
	}
}
