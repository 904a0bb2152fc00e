package demo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/rl"
)

func TestRun_Small(t *testing.T) {
	// The whole recipe on a tiny budget: the reward model trains, two RL
	// algorithms run against it, and every output exists. (Learning is
	// measured by the full demo, not here.)
	if testing.Short() {
		t.Skip("trains a reward model and two RL runs (~10 s)")
	}
	dir := t.TempDir()
	sum, err := Run(context.Background(), Options{OutputDir: dir, Small: true, Seed: 3,
		Algos: []rl.Estimator{rl.EstimatorGAE, rl.EstimatorGroupNorm}})
	if err != nil {
		t.Fatal(err)
	}
	if !(sum.RM.EvalAcc > 0 && sum.RM.EvalAcc <= 1) {
		t.Fatalf("reward model accuracy %g", sum.RM.EvalAcc)
	}
	if len(sum.Runs) != 2 {
		t.Fatalf("%d runs", len(sum.Runs))
	}
	for _, r := range sum.Runs {
		if r.Iterations != 2 || r.Before.Iteration != 0 || r.After.Iteration != 2 {
			t.Fatalf("%s: %d iterations, evals at %d and %d", r.Algo, r.Iterations, r.Before.Iteration, r.After.Iteration)
		}
		for _, v := range []float64{r.Before.Reward, r.After.Reward, r.After.KL} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: non-finite eval %+v", r.Algo, r.After)
			}
		}
		if len(r.After.Samples) == 0 || r.PhaseSeconds["generation"] <= 0 || r.PhaseSeconds["train"] <= 0 {
			t.Fatalf("%s: samples %d, phases %v", r.Algo, len(r.After.Samples), r.PhaseSeconds)
		}
		for _, f := range []string{"report.html", "reward.png", "metrics.jsonl", "model.safetensors"} {
			if _, err := os.Stat(filepath.Join(r.Dir, f)); err != nil {
				t.Errorf("%s: %v", r.Algo, err)
			}
		}
	}
	if len(sum.ComparePlots) != 2 {
		t.Fatalf("compare plots %v", sum.ComparePlots)
	}
	for _, p := range sum.ComparePlots {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRun_SmallAsyncWithRewardModel(t *testing.T) {
	// A second demo reuses the first one's reward model (Options.RewardModel,
	// --reward_model) and runs PPO asynchronously: no reward model is
	// trained, the RL run reports the async metrics, and it trains other
	// weights than the synchronous run on the same reward model.
	if testing.Short() {
		t.Skip("trains a reward model and three RL runs")
	}
	dir := t.TempDir()
	first, err := Run(context.Background(), Options{OutputDir: filepath.Join(dir, "first"), Small: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, async bool) Summary {
		o := Options{OutputDir: filepath.Join(dir, name), Small: true, Seed: 3, RewardModel: first.RM.Dir}
		o.Async.Enable, o.Async.QueueSize = async, 1
		sum, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if sum.RM.Dir != first.RM.Dir || !math.IsNaN(sum.RM.EvalAcc) {
			t.Fatalf("%s: reward model %+v, want the first demo's (not measured again)", name, sum.RM)
		}
		if _, err := os.Stat(filepath.Join(o.OutputDir, "reward_model")); !os.IsNotExist(err) {
			t.Fatalf("%s: a reward model was trained (%v)", name, err)
		}
		return sum
	}
	sync, async := run("sync", false), run("async", true)
	if _, ok := async.Runs[0].PhaseSeconds["async_wait"]; !ok {
		t.Fatalf("async run phases %v lack async_wait", async.Runs[0].PhaseSeconds)
	}
	a, _ := os.ReadFile(filepath.Join(sync.Runs[0].Dir, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(async.Runs[0].Dir, "model.safetensors"))
	if len(a) == 0 || slices.Equal(a, b) {
		t.Fatal("the async demo trained the same weights as the synchronous one")
	}
}

func TestStoryPrompts(t *testing.T) {
	train, eval := storyPrompts(288, 32)
	if len(train) != 288 || len(eval) != 32 {
		t.Fatalf("%d train, %d eval prompts", len(train), len(eval))
	}
	// Held-out prompts name children never named in training.
	for _, e := range eval {
		for _, c := range trainChildren {
			if strings.Contains(e, c.name+" ") || strings.Contains(e, c.name+".") {
				t.Fatalf("eval prompt %q names training child %s", e, c.name)
			}
		}
	}
	if uniq := slices.Compact(slices.Sorted(slices.Values(train))); len(uniq) != len(train) {
		t.Fatal("duplicate training prompts")
	}
	again, _ := storyPrompts(288, 32)
	if !slices.Equal(train, again) {
		t.Fatal("prompts depend on more than the seed")
	}
}
