package recipe

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/train"
)

func TestArithmeticConfig_Validate(t *testing.T) {
	ok := DefaultArithmeticConfig()
	cases := []struct {
		name string
		edit func(*ArithmeticConfig)
		want string // "" = valid; else a substring of the error
	}{
		{"default", func(*ArithmeticConfig) {}, ""},
		{"subtraction too", func(c *ArithmeticConfig) { c.Ops = "+-" }, ""},
		{"no operator", func(c *ArithmeticConfig) { c.Ops = "" }, "no operators"},
		{"unknown operator", func(c *ArithmeticConfig) { c.Ops = "+*" }, "not supported"},
		{"empty range", func(c *ArithmeticConfig) { c.MinA, c.MaxA = 5, 4 }, "non-empty"},
		{"negative operand", func(c *ArithmeticConfig) { c.MinB = -1 }, "≥ 0"},
		{"nothing held out", func(c *ArithmeticConfig) { c.HeldOut = 0 }, "held-out"},
		{"nothing left to train", func(c *ArithmeticConfig) { c.HeldOut = 800 }, "held-out"},
		{"too many problems", func(c *ArithmeticConfig) { c.MaxA, c.MaxB = 1<<20, 10 }, "exceed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestProblem_Text(t *testing.T) {
	cases := []struct {
		p              Problem
		prompt, answer string
	}{
		{Problem{23, 4, '+'}, "23+4=", "27"},
		{Problem{89, 9, '+'}, "89+9=", "98"},
		{Problem{3, 7, '-'}, "3-7=", "-4"},
	}
	for _, tc := range cases {
		if got := tc.p.Prompt(); got != tc.prompt {
			t.Errorf("Prompt() = %q, want %q", got, tc.prompt)
		}
		if got := tc.p.Answer(); got != tc.answer {
			t.Errorf("%s Answer() = %q, want %q", tc.prompt, got, tc.answer)
		}
	}
}

func TestArithmeticConfig_Split(t *testing.T) {
	c := DefaultArithmeticConfig()
	train, held, err := c.Split()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != c.HeldOut || len(train)+len(held) != 800 {
		t.Fatalf("%d train + %d held-out problems, want 600 + 200", len(train), len(held))
	}
	seen := map[Problem]bool{}
	for _, p := range train {
		if seen[p] {
			t.Fatalf("%s twice in training", p.Prompt())
		}
		seen[p] = true
		if v := p.Value(); v < 10 || v > 98 {
			t.Fatalf("%s = %d: default answers must have two digits", p.Prompt(), v)
		}
	}
	for _, p := range held {
		if seen[p] {
			t.Fatalf("held-out %s also in training", p.Prompt())
		}
		seen[p] = true
	}
	t.Run("deterministic", func(t *testing.T) {
		train2, held2, _ := c.Split()
		for i := range held {
			if held[i] != held2[i] {
				t.Fatal("the same seed gave another split")
			}
		}
		if train[0] != train2[0] {
			t.Fatal("the same seed gave another training order")
		}
	})
	t.Run("seed changes the split", func(t *testing.T) {
		c2 := c
		c2.Seed++
		_, held2, _ := c2.Split()
		same := 0
		for i := range held {
			if held[i] == held2[i] {
				same++
			}
		}
		if same == len(held) {
			t.Fatal("another seed gave the same held-out problems")
		}
	})
	t.Run("invalid", func(t *testing.T) {
		bad := c
		bad.HeldOut = 0
		if _, _, err := bad.Split(); err == nil {
			t.Fatal("Split accepted an invalid configuration")
		}
	})
}

func TestSample(t *testing.T) {
	train, _, _ := DefaultArithmeticConfig().Split()
	in := map[Problem]bool{}
	for _, p := range train {
		in[p] = true
	}
	s := Sample(train, 1000, 7)
	if len(s) != 1000 {
		t.Fatalf("%d samples", len(s))
	}
	distinct := map[Problem]bool{}
	for _, p := range s {
		if !in[p] {
			t.Fatalf("sampled %s, not a training problem", p.Prompt())
		}
		distinct[p] = true
	}
	if len(distinct) < 400 {
		t.Fatalf("only %d distinct problems in 1000 draws from 600", len(distinct))
	}
	if again := Sample(train, 1000, 7); again[999] != s[999] {
		t.Fatal("the same seed drew other problems")
	}
	if Sample(nil, 3, 1) != nil {
		t.Fatal("sampling from nothing returned problems")
	}
}

func TestExactGrader(t *testing.T) {
	g, err := ExactGrader()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		response string
		want     float64
	}{
		{"27", 1}, {" 27", 1}, {"27\n", 1}, {"28", 0}, {"27.", 0}, {"2 7", 0}, {"27 27", 0}, {"", 0},
	}
	for _, tc := range cases {
		got, err := g.Grade(grade.Sample{Prompt: "23+4=", Response: tc.response, Label: "27"})
		if err != nil || got != tc.want {
			t.Errorf("Grade(%q) = %g, %v; want %g", tc.response, got, err, tc.want)
		}
	}
}

func TestWriteData(t *testing.T) {
	// The files read back through internal/data with the keys the SFT and
	// RL trainers are given.
	dir := t.TempDir()
	ps := []Problem{{23, 4, '+'}, {40, 0, '+'}}
	sftPath, promptPath := filepath.Join(dir, "sft.jsonl"), filepath.Join(dir, "prompts.jsonl")
	if err := WriteSFT(sftPath, ps); err != nil {
		t.Fatal(err)
	}
	if err := WritePrompts(promptPath, ps); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, key, want string }{
		{sftPath, KeyOutput, `"27"`}, {promptPath, KeyLabel, `"27"`}, {promptPath, KeyInput, `"23+4="`},
	} {
		recs, _, err := data.ReadFiles(f.path, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || string(recs[0].Fields[f.key]) != f.want {
			t.Fatalf("%s: %d records, %s = %s, want %s", f.path, len(recs), f.key, recs[0].Fields[f.key], f.want)
		}
	}
	if err := WriteSFT(filepath.Join(dir, "missing", "x.jsonl"), ps); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %v, want one naming the path", err)
	}
}

func TestArithmeticDemo_Validate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*ArithmeticDemo)
		ok   bool
	}{
		{"default", func(*ArithmeticDemo) {}, true},
		{"fixed SFT length", func(d *ArithmeticDemo) { d.SFTTarget, d.SFTCheckEvery = 0, 0 }, true},
		{"target above 1", func(d *ArithmeticDemo) { d.SFTTarget = 1.5 }, false},
		{"target without checks", func(d *ArithmeticDemo) { d.SFTCheckEvery = 0 }, false},
		{"one sample per prompt", func(d *ArithmeticDemo) { d.Group = 1 }, false},
		{"no output dir", func(d *ArithmeticDemo) { d.OutputDir = "" }, false},
		{"bad task", func(d *ArithmeticDemo) { d.Task.HeldOut = 0 }, false},
		{"three turns", func(d *ArithmeticDemo) { d.Turns = 3 }, true},
		{"too many turns", func(d *ArithmeticDemo) { d.Turns = 9 }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DefaultArithmeticDemo()
			tc.edit(&d)
			if err := d.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestRunArithmeticDemo_Small(t *testing.T) {
	// The whole pipeline on tiny budgets (it shows nothing about
	// learning): the files, the curves from the first to the last
	// iteration, and evaluations on every held-out problem.
	d := DefaultArithmeticDemo()
	d.Task = ArithmeticConfig{Ops: "+", MinA: 10, MaxA: 14, MinB: 0, MaxB: 9, HeldOut: 10, Seed: 3}
	d.OutputDir = t.TempDir()
	// a target 3 steps cannot reach: SFT runs every step, checking the
	// probe every other step
	d.SFTSteps, d.SFTBatch, d.SFTTarget, d.SFTCheckEvery = 3, 8, 1, 2
	d.Iterations, d.Prompts, d.Group, d.TrainBatch, d.EvalEvery = 2, 4, 2, 8, 1
	sum, err := RunArithmeticDemo(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Train != 40 || sum.HeldOut != 10 {
		t.Fatalf("%d train, %d held-out problems", sum.Train, sum.HeldOut)
	}
	if sum.SFTSteps != 3 || len(sum.SFTProbe) != 1 || sum.SFTProbe[0].Iteration != 2 {
		t.Fatalf("SFT ran %d steps with probe %v, want 3 steps and a check at step 2", sum.SFTSteps, sum.SFTProbe)
	}
	if len(sum.Curve) != 3 || sum.Curve[0].Iteration != 0 || sum.Curve[2].Iteration != 2 {
		t.Fatalf("held-out curve %v, want iterations 0, 1, 2", sum.Curve)
	}
	if len(sum.TrainCurve) != 2 {
		t.Fatalf("train curve %v, want 2 iterations", sum.TrainCurve)
	}
	if sum.Curve[0].Accuracy != sum.SFT.Greedy {
		t.Fatalf("the curve starts at %g, the SFT model's greedy accuracy is %g", sum.Curve[0].Accuracy, sum.SFT.Greedy)
	}
	for _, e := range []DemoEval{sum.Base, sum.SFT, sum.RL} {
		if len(e.Answers) != 10 || e.Greedy < 0 || e.Greedy > 1 || e.Sampled < 0 || e.Sampled > 1 {
			t.Fatalf("evaluation %+v", e)
		}
	}
	for _, f := range []string{sum.CurvePlot, sum.Summary, filepath.Join(sum.RLDir, "model.safetensors"),
		filepath.Join(sum.SFTDir, "model.safetensors"), filepath.Join(d.OutputDir, "data", "heldout.jsonl")} {
		if !fileExists(f) {
			t.Fatalf("%s not written", f)
		}
	}
}

func TestRunArithmeticDemo_SmallMultiTurn(t *testing.T) {
	// --turns 3 on tiny budgets: GRPO plays 3-turn episodes of the chain
	// environment, and the curve is the held-out episodes' greedy return.
	d := DefaultArithmeticDemo()
	d.Task = ArithmeticConfig{Ops: "+", MinA: 10, MaxA: 14, MinB: 0, MaxB: 9, HeldOut: 10, Seed: 3}
	d.OutputDir, d.Turns = t.TempDir(), 3
	d.SFTSteps, d.SFTBatch, d.SFTTarget = 3, 8, 0
	d.Iterations, d.Prompts, d.Group, d.TrainBatch, d.EvalEvery = 2, 4, 2, 8, 1
	sum, err := RunArithmeticDemo(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Curve) != 3 {
		t.Fatalf("held-out curve %v, want iterations 0, 1, 2", sum.Curve)
	}
	for _, p := range sum.Curve {
		// the mean of 10 returns in {0, 1/3, 2/3, 1}
		if x := p.Accuracy * 30; p.Accuracy < 0 || p.Accuracy > 1 || math.Abs(x-math.Round(x)) > 1e-4 {
			t.Fatalf("curve point %+v is not a mean of 10 three-turn returns", p)
		}
	}
	rows, err := train.ReadMetrics(filepath.Join(sum.RLDir, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	evals := 0
	for _, r := range rows {
		if r.Values["skipped_iteration"] == 1 {
			continue // dynamic filtering kept no group: nothing was trained
		}
		if r.Split == "eval" {
			evals++
		}
		if r.Values["agent_turns"] != 3 {
			t.Fatalf("%s row %d: agent_turns %v, want 3", r.Split, r.Step, r.Values["agent_turns"])
		}
	}
	if evals != 3 {
		t.Fatalf("%d eval rows, want 3", evals)
	}
	// the turns' accuracies are each a share of 10 held-out answers, and
	// their mean is the episode return
	if len(sum.TurnsSFT) != 3 || len(sum.TurnsRL) != 3 {
		t.Fatalf("per-turn accuracy %v → %v", sum.TurnsSFT, sum.TurnsRL)
	}
	mean := (sum.TurnsRL[0] + sum.TurnsRL[1] + sum.TurnsRL[2]) / 3
	if math.Abs(mean-sum.Curve[2].Accuracy) > 1e-6 {
		t.Fatalf("per-turn accuracy %v, mean %g; the episode return is %g", sum.TurnsRL, mean, sum.Curve[2].Accuracy)
	}
	// SFT taught whole chain episodes
	b, err := os.ReadFile(filepath.Join(d.OutputDir, "data", "sft_train.jsonl"))
	if err != nil || strings.Count(strings.SplitN(string(b), "\n", 2)[0], `\n`) != 2 {
		t.Fatalf("SFT data %q, %v: want 3-answer transcripts", strings.SplitN(string(b), "\n", 2)[0], err)
	}
}
