package rm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/train"
)

// pairs are happy (chosen) and sad (rejected) sentences.
var pairs = [][2]string{
	{"Lily was very happy and smiled.", "Lily was sad and cried."},
	{"The cake was yummy!", "The cake was bad."},
	{"Tom had a great day at the park.", "Tom had a bad day."},
	{"They played and laughed all day.", "They were angry and did not play."},
	{"The sun was warm and nice.", "It was cold and dark and scary."},
	{"Mom gave Ben a big hug.", "Mom was mad at Ben."},
	{"The dog was kind and friendly.", "The dog was mean."},
	{"Sue loved her new toy.", "Sue broke her toy and was sad."},
}

func dataset(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for i, p := range pairs {
		fmt.Fprintf(&b, "{\"chosen\": %q, \"rejected\": %q, \"margin\": %g}\n", p[0], p[1], 0.1*float64(i))
	}
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
	c.Data.Dataset, c.Data.MaxLen = ds, 64
	tc := &c.Train
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs = 2, 4, 3
	tc.Optim.LR, tc.Optim.WarmupRatio = 3e-3, 0
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
	c.MarginLoss = true
	c.Train.Eval.Dataset, c.Train.Eval.Steps = c.Data.Dataset, 2
	tr := newTrainer(t, c)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := tr.Session().Metrics()
	var evalAcc, evalLoss []float64
	for _, r := range rows {
		if r.Split == "eval" {
			evalAcc, evalLoss = append(evalAcc, r.Values["acc"]), append(evalLoss, r.Values["loss"])
		}
	}
	// eval at steps 0, 2, 4 and 6
	if len(evalLoss) != 4 || !(evalLoss[3] < evalLoss[0]) || evalAcc[3] < 0.75 {
		t.Fatalf("eval loss %v, acc %v: the reward model did not learn", evalLoss, evalAcc)
	}
	out := c.Train.Ckpt.OutputDir
	for _, f := range []string{"loss.png", "acc.png", "metrics.jsonl", "tokenizer.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	// The output is an HF reward model with the eval rewards' mean and std.
	back, err := load.Load(out, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Score == nil || back.Arch != "LlamaForSequenceClassification" {
		t.Fatalf("saved model is %s (score head %v)", back.Arch, back.Score != nil)
	}
	last := rows[len(rows)-1].Values
	if n := back.Score.Norm; math.Abs(n.Mean-last["reward_mean"]) > 1e-9 || math.Abs(n.Std-last["reward_std"]) > 1e-9 || n.Std <= 0 {
		t.Fatalf("saved norm %+v, last eval mean %v std %v", n, last["reward_mean"], last["reward_std"])
	}
	// Its scores equal the trained model's.
	b, ps := tr.collate(tr.eval[:2])
	c1, r1 := tr.rewards(nil, b, len(ps))
	tr.model = back.Score
	c2, r2 := tr.rewards(nil, b, len(ps))
	if !slices.Equal(c1.Data, c2.Data) || !slices.Equal(r1.Data, r2.Data) {
		t.Fatalf("reloaded model scores %v %v, trained %v %v", c2.Data, r2.Data, c1.Data, r1.Data)
	}
}

// TestTrainer_PackedEqualsPadded compares rewards and gradients of a
// micro-batch laid out padded and packed.
func TestTrainer_PackedEqualsPadded(t *testing.T) {
	tr := newTrainer(t, testConfig(t, dataset(t)))
	run := func(packed bool) (float32, [][]float32, []float32) {
		tr.cfg.Train.Packing = packed
		b, ps := tr.collate(tr.train[:4])
		if packed && b.B >= 8 {
			t.Fatalf("packing used %d rows for 8 sequences", b.B)
		}
		tp := tensor.NewTape()
		c, r := tr.rewards(tp, b, len(ps))
		loss := Loss(tp, Sigmoid, c, r, nil, 4)
		tp.Backward(loss)
		var g [][]float32
		for _, p := range tr.params {
			g = append(g, slices.Clone(p.Tensor.Grad))
		}
		tr.params.ZeroGrad()
		return loss.Item(), g, append(slices.Clone(c.Data), r.Data...)
	}
	lPad, gPad, rPad := run(false)
	lPack, gPack, rPack := run(true)
	if e := tt.MaxRelErr(rPack, rPad, 1e-6); e > 2e-5 {
		t.Errorf("rewards: max relative error %.3g (%v vs %v)", e, rPack, rPad)
	}
	if math.Abs(float64(lPad-lPack)) > 1e-5 {
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
		c.Train.Eval.Dataset, c.Train.Eval.Steps = ds, 2
		c.Train.Ckpt.SaveSteps = 2
		return c
	}
	full := newTrainer(t, base())
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := base()
	c.Train.StopAtStep = 3
	if err := newTrainer(t, c).Run(context.Background()); !errors.Is(err, train.ErrStopped) {
		t.Fatalf("stop: %v", err)
	}
	c.Train.StopAtStep, c.Train.Ckpt.LoadEnable = 0, true
	resumed := newTrainer(t, c)
	if resumed.model.Norm == full.model.Norm || resumed.model.Norm.Std == 1 {
		t.Fatalf("reward normalisation of the step-2 eval not restored: %+v", resumed.model.Norm)
	}
	if err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, full.params, resumed.params)
	if full.model.Norm != resumed.model.Norm {
		t.Fatalf("final norm %+v vs %+v", full.model.Norm, resumed.model.Norm)
	}
}

func assertSameParams(t *testing.T, a, b nn.Params) {
	t.Helper()
	for i := range a {
		for j, v := range a[i].Tensor.Data {
			if math.Float32bits(v) != math.Float32bits(b[i].Tensor.Data[j]) {
				t.Fatalf("%s differs at %d: %v vs %v", a[i].Name, j, v, b[i].Tensor.Data[j])
			}
		}
	}
}

func TestScoreConfig(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}`, "LlamaForSequenceClassification"},
		{`{"architectures": ["Qwen3ForCausalLM"]}`, "Qwen3ForSequenceClassification"},
		{`{"architectures": ["GPT2LMHeadModel"]}`, "GPT2ForSequenceClassification"},
	}
	for _, c := range cases {
		out, err := load.ScoreConfig([]byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Architectures []string `json:"architectures"`
			NumLabels     int      `json:"num_labels"`
		}
		json.Unmarshal(out, &got)
		if got.Architectures[0] != c.want || got.NumLabels != 1 {
			t.Errorf("%s → %+v", c.in, got)
		}
	}
	if _, err := load.ScoreConfig([]byte(`{"architectures": ["LlamaForSequenceClassification"]}`)); err == nil {
		t.Error("a reward model's config was converted again")
	}
}

// TestData_HHRLHF reads the Anthropic hh-rlhf pairs (chat transcripts as
// plain strings) unchanged, as the trainers' default keys expect.
func TestData_HHRLHF(t *testing.T) {
	const path = "/work/shared/assets/hh-rlhf/harmless-base-test.jsonl.gz"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("hh-rlhf asset not present: %v", err)
	}
	c := DefaultConfig()
	env := testEnv(t)
	enc, err := env.Encoder(c.Data)
	if err != nil {
		t.Fatal(err)
	}
	got, rep, err := enc.ReadPairs(path, 200, c.keys())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 || rep.SkippedTotal() != 0 {
		t.Fatalf("%d pairs, report %s", len(got), rep)
	}
	if !strings.Contains(env.Tok.Decode(ints(got[0].Chosen.IDs)), "Human:") {
		t.Fatal("transcript not encoded")
	}
}

func ints(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
