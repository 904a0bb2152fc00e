package sft

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

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/train"
)

// stories are prompt/response records in the style stories260K was
// trained on, of varied lengths.
var stories = [][2]string{
	{"Who did Lily see?", "Lily saw a big dog in the park."},
	{"What did Tom like?", "Tom liked to play with his red ball."},
	{"Where was the cat?", "The cat was on the mat."},
	{"What did Mom say?", "Mom said it was time for bed, so Ben went to sleep."},
	{"Why was Sue sad?", "Sue was sad because her toy was broken."},
	{"What did the bird do?", "The bird sang a happy song in the tree."},
	{"Who helped Max?", "His friend Sam helped Max find his hat."},
	{"What was in the box?", "There was a small toy car in the box."},
	{"Where did they go?", "They went to the beach and played in the sand all day."},
	{"What did Anna eat?", "Anna ate a yummy cake."},
	{"Who was happy?", "Everyone was happy at the end."},
	{"What did the dog find?", "The dog found a big stick and ran home with it."},
}

// dataset writes the stories as JSONL.
func dataset(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, s := range stories {
		fmt.Fprintf(&b, "{\"question\": %q, \"answer\": %q}\n", s[0], s[1])
	}
	p := filepath.Join(t.TempDir(), "stories.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testEnv loads a fresh copy of the embedded stories260K and its tokenizer.
func testEnv(t testing.TB) train.Setup {
	t.Helper()
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return train.Setup{Bundle: b}
}

// testConfig is a small, fast run on the stories.
func testConfig(t testing.TB, dataset string) Config {
	t.Helper()
	c := DefaultConfig()
	out := t.TempDir()
	c.Data.Dataset, c.Data.InputKey, c.Data.OutputKey, c.Data.MaxLen = dataset, "question", "answer", 64
	c.Samples = 0
	tc := &c.Train
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs = 2, 4, 2
	tc.Optim.LR, tc.Optim.WarmupRatio = 3e-3, 0.2
	tc.Ckpt.OutputDir, tc.Ckpt.Path = out, filepath.Join(out, "checkpoints")
	return c
}

func newTrainer(t testing.TB, c Config) *Trainer {
	t.Helper()
	tr, err := New(c, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTrainer_Run(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 3
	c.Samples, c.SampleTokens = 1, 8
	tr := newTrainer(t, c)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := c.Train.Ckpt.OutputDir
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var trainLoss, evalLoss []float64
	for _, r := range rows {
		if r.Split == "train" {
			trainLoss = append(trainLoss, r.Values["loss"])
		} else {
			evalLoss = append(evalLoss, r.Values["loss"])
		}
	}
	// 12 samples / batch 4 = 3 steps per epoch, 2 epochs; eval at 0, 3 and 6.
	if len(trainLoss) != 6 || len(evalLoss) != 3 {
		t.Fatalf("%d train rows, %d eval rows", len(trainLoss), len(evalLoss))
	}
	if !(evalLoss[2] < evalLoss[1] && evalLoss[1] < evalLoss[0]) {
		t.Errorf("eval loss did not fall: %v", evalLoss)
	}
	for _, f := range []string{"loss.png", "train.log", "samples.txt", "config.json", "model.safetensors", "tokenizer.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	events, _ := filepath.Glob(filepath.Join(out, "tensorboard", "events.out.tfevents.*"))
	if len(events) != 1 {
		t.Errorf("tensorboard event files: %v", events)
	}
	// The saved model loads back with the trained weights.
	back, err := load.Load(out, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, tr.params, back.Params())
}

// assertSameParams checks two parameter lists are equal bit for bit.
func assertSameParams(t *testing.T, a, b nn.Params) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d vs %d parameters", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(bits(a[i].Tensor.Data), bits(b[i].Tensor.Data)) {
			t.Fatalf("parameter %s differs", a[i].Name)
		}
	}
}

func bits(x []float32) []uint32 {
	out := make([]uint32, len(x))
	for i, v := range x {
		out[i] = math.Float32bits(v)
	}
	return out
}

// grads runs forward/backward of samples in the given micro-batches (each
// normalised by the total loss-token count) and returns the loss and a
// copy of every gradient.
func grads(t *testing.T, tr *Trainer, micro [][]data.Sample, packed bool) (float64, [][]float32) {
	t.Helper()
	tr.cfg.Train.Packing = packed
	var batches []*data.Batch
	n := 0
	for _, m := range micro {
		b := tr.collate(m)
		batches = append(batches, b)
		n += b.LossTokens()
	}
	var loss float64
	for _, b := range batches {
		l, err := tr.backward(context.Background(), b, n)
		if err != nil {
			panic(err)
		}
		loss += l
	}
	var out [][]float32
	for _, p := range tr.params {
		out = append(out, append([]float32(nil), p.Tensor.Grad...))
	}
	tr.params.ZeroGrad()
	return loss, out
}

func compareGrads(t *testing.T, names nn.Params, la, lb float64, ga, gb [][]float32, tol float64) {
	t.Helper()
	if d := math.Abs(la-lb) / math.Abs(la); d > tol {
		t.Errorf("loss %v vs %v (rel. error %.2g)", la, lb, d)
	}
	for i := range ga {
		if e := tt.MaxRelErr(gb[i], ga[i], 1e-8); e > tol {
			t.Errorf("gradient of %s: max relative error %.3g", names[i].Name, e)
		}
	}
}

// TestTrainer_PackedEqualsPadded: packing samples into shared rows with
// per-sample attention and restarting positions gives the loss and the
// gradients of padding them one per row.
func TestTrainer_PackedEqualsPadded(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.Data.MaxLen = 128
	tr := newTrainer(t, c)
	samples := tr.train[:6]
	b := data.Pack(samples, 128, 0)
	if b.B >= len(samples) {
		t.Fatalf("packing put %d samples in %d rows: nothing shared a row", len(samples), b.B)
	}
	lPad, gPad := grads(t, tr, [][]data.Sample{samples}, false)
	lPack, gPack := grads(t, tr, [][]data.Sample{samples}, true)
	compareGrads(t, tr.params, lPad, lPack, gPad, gPack, 2e-5)
}

// TestTrainer_GradAccumInvariance: one micro-batch of 4 and four
// micro-batches of 1 accumulate the same loss and gradients (the loss is
// normalised by the step's token count, not the micro-batch's).
func TestTrainer_GradAccumInvariance(t *testing.T) {
	tr := newTrainer(t, testConfig(t, dataset(t)))
	s := tr.train[:4]
	l4, g4 := grads(t, tr, [][]data.Sample{s}, false)
	l1, g1 := grads(t, tr, [][]data.Sample{s[:1], s[1:2], s[2:3], s[3:]}, false)
	compareGrads(t, tr.params, l4, l1, g4, g1, 2e-5)

	t.Run("WholeSteps", func(t *testing.T) {
		// Three optimizer steps each way end at the same weights.
		run := func(micro int) nn.Params {
			c := testConfig(t, tr.cfg.Data.Dataset)
			c.Train.MicroBatchSize, c.Train.MaxSteps = micro, 3
			c.Train.Optim.Adam.Eps = 1e-3 // keep Adam from amplifying float noise in tiny gradients
			x := newTrainer(t, c)
			if err := x.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			return x.params
		}
		a, b := run(4), run(1)
		for i := range a {
			if e := tt.MaxRelErr(b[i].Tensor.Data, a[i].Tensor.Data, 1e-6); e > 1e-4 {
				t.Errorf("%s after 3 steps: max relative error %.3g", a[i].Name, e)
			}
		}
	})
}

// TestTrainer_Resume: a run stopped after step 3 and resumed ends with the
// weights, optimizer state and metrics of an uninterrupted run, bit for bit.
func TestTrainer_Resume(t *testing.T) {
	ds := dataset(t)
	base := func() Config {
		c := testConfig(t, ds)
		c.Train.MaxEpochs, c.Train.Ckpt.SaveSteps, c.Train.Ckpt.MaxNum = 3, 2, 2
		return c
	}
	full := newTrainer(t, base())
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	c := base()
	c.Train.StopAtStep = 3
	first := newTrainer(t, c)
	err := first.Run(context.Background())
	if !errors.Is(err, train.ErrStopped) {
		t.Fatalf("stop at step 3: %v", err)
	}
	dirs, _ := filepath.Glob(filepath.Join(c.Train.Ckpt.Path, "global_step*"))
	if len(dirs) != 2 { // steps 2 and 3 (max_num 2)
		t.Fatalf("checkpoints %v", dirs)
	}
	c.Train.StopAtStep, c.Train.Ckpt.LoadEnable = 0, true
	resumed := newTrainer(t, c)
	if got := resumed.Session().Step(); got != 3 {
		t.Fatalf("resumed at step %d, want 3", got)
	}
	if err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, full.params, resumed.params)

	a, _ := train.ReadMetrics(filepath.Join(full.cfg.Train.Ckpt.OutputDir, train.MetricsFile))
	b, _ := train.ReadMetrics(filepath.Join(c.Train.Ckpt.OutputDir, train.MetricsFile))
	if len(a) != len(b) {
		t.Fatalf("%d vs %d metric rows", len(a), len(b))
	}
	for i := range a {
		if a[i].Step != b[i].Step || a[i].Values["loss"] != b[i].Values["loss"] {
			t.Fatalf("metric row %d: step %d loss %v vs step %d loss %v", i, a[i].Step, a[i].Values["loss"], b[i].Step, b[i].Values["loss"])
		}
	}
}

// TestTrainer_NonFinite: with non-finite weights every step is skipped, and
// MaxNonFinite of them in a row stop the run with ErrNonFinite (the
// skip-and-continue path is tested on train.Session).
func TestTrainer_NonFinite(t *testing.T) {
	t.Run("StopAfterK", func(t *testing.T) {
		c := testConfig(t, dataset(t))
		c.Train.MaxNonFinite = 2
		tr := newTrainer(t, c)
		for _, p := range tr.params {
			p.Tensor.Data[0] = float32(math.Inf(1))
		}
		err := tr.Run(context.Background())
		if !errors.Is(err, train.ErrNonFinite) || tr.Session().Step() != 2 {
			t.Fatalf("err %v at step %d; want ErrNonFinite at step 2", err, tr.Session().Step())
		}
	})
}

// TestTrainer_PretrainMode trains on every token of the input field.
func TestTrainer_PretrainMode(t *testing.T) {
	c := testConfig(t, dataset(t))
	c.PretrainMode, c.Data.InputKey, c.Data.OutputKey = true, "answer", ""
	c.Train.MaxSteps = 1
	tr := newTrainer(t, c)
	for _, s := range tr.train {
		if s.LossTokens() != s.Len()-1 || s.PromptLen() != 1 {
			t.Fatalf("pretrain sample trains on %d of %d tokens from %d", s.LossTokens(), s.Len(), s.PromptLen())
		}
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tr.Session().Metrics()[0].Values["loss_tokens"]; got < 40 {
		t.Fatalf("step trained on %v tokens", got)
	}
}
