// Package demo is gorlhf's default recipe, run by `gorlhf demo` on the
// embedded stories260K with nothing to download: RLHF end to end on a
// laptop CPU.
//
// Task "sentiment" (issue 6's demo):
//
//  1. train a reward model (stories260K backbone + scalar head) on 1,200
//     labelled sentence pairs (UCI Sentiment Labelled Sentences: the
//     positive sentence is preferred), evaluated on 300 held-out pairs;
//  2. train the policy (stories260K) with PPO on story openings so that
//     its stories score higher under that reward model, with a KL leash
//     to the initial policy; the critic starts from the reward model;
//  3. evaluate on held-out openings (children's names never seen in
//     training) before and after: mean reward, KL to the reference,
//     sample stories; write the run report.
//
// With several algorithms (e.g. gae, group_norm, reinforce_baseline) the
// reward model is trained once and each algorithm gets its own run and
// folder, plus one plot of their curves side by side.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/placement"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
	"github.com/gorlhf/gorlhf/internal/trainer/rm"
)

//go:embed data/sentiment_train.jsonl data/sentiment_eval.jsonl
var files embed.FS

// TaskSentiment is the only task so far.
const TaskSentiment = "sentiment"

// Options configures a demo run. The zero value of a field means its
// default.
type Options struct {
	Task      string         // "" or "sentiment"
	OutputDir string         // "" = ./gorlhf-demo
	Algos     []rl.Estimator // nil = gae (PPO)
	Seed      uint64         // the seed of every run (0 is a seed like any other)
	// Iterations is the number of RL iterations per algorithm; 0 = 40.
	Iterations int
	// Small shrinks every budget (reward-model steps, prompts, batch,
	// iterations) so the whole recipe runs in seconds: for tests only,
	// it shows nothing about learning.
	Small   bool
	Console io.Writer // progress and logs; nil = none
	TTY     bool
	// Placement puts each RL run's roles in processes (--launcher local);
	// the zero value keeps them in this one.
	Placement placement.PPO
	// Async runs the RL with generation overlapped (--train.async_*);
	// the zero value is synchronous.
	Async ppo.AsyncConfig
	// RewardModel is a reward model folder an earlier demo trained, used
	// instead of training one (benchmarks that repeat the RL runs); "" =
	// train it.
	RewardModel string
}

// RMResult describes the reward model the demo trained.
type RMResult struct {
	Dir      string
	EvalAcc  float64 // share of held-out pairs ranked right, before and after training
	StartAcc float64
	Wall     time.Duration
}

// RunResult describes one algorithm's RL run.
type RunResult struct {
	Algo          rl.Estimator
	Dir           string
	Iterations    int
	Before, After ppo.EvalResult
	Wall          time.Duration
	// PhaseSeconds is the mean wall time per iteration of each phase
	// (generation, experience and its parts, train, weight_sync).
	PhaseSeconds map[string]float64
}

// Summary is what a demo run measured.
type Summary struct {
	RM   RMResult
	Runs []RunResult
	// ComparePlots are the side-by-side plots of several algorithms'
	// reward and KL (none with one algorithm).
	ComparePlots []string
}

// Run runs the recipe.
func Run(ctx context.Context, o Options) (Summary, error) {
	o = o.withDefaults()
	var sum Summary
	if o.Task != TaskSentiment {
		return sum, fmt.Errorf("demo: unknown task %q (want %s)", o.Task, TaskSentiment)
	}
	d, err := writeData(o)
	if err != nil {
		return sum, err
	}
	if o.RewardModel != "" {
		sum.RM = RMResult{Dir: o.RewardModel, EvalAcc: math.NaN(), StartAcc: math.NaN()}
	} else if sum.RM, err = trainRewardModel(ctx, o, d); err != nil {
		return sum, err
	}
	for _, algo := range o.Algos {
		res, err := runRL(ctx, o, d, algo, sum.RM.Dir)
		if err != nil {
			return sum, fmt.Errorf("demo: %s: %w", algo, err)
		}
		sum.Runs = append(sum.Runs, res)
	}
	if len(sum.Runs) > 1 {
		for _, p := range []struct{ key, title string }{
			{"reward", "reward by algorithm (normalised sentiment RM score)"},
			{"kl", "KL to the reference by algorithm (per token)"},
		} {
			path := filepath.Join(o.OutputDir, "compare_"+p.key+".png")
			if err := comparePlot(path, p.key, p.title, sum.Runs); err != nil {
				return sum, err
			}
			sum.ComparePlots = append(sum.ComparePlots, path)
		}
	}
	return sum, nil
}

func (o Options) withDefaults() Options {
	if o.Task == "" {
		o.Task = TaskSentiment
	}
	if o.OutputDir == "" {
		o.OutputDir = "gorlhf-demo"
	}
	if len(o.Algos) == 0 {
		o.Algos = []rl.Estimator{rl.EstimatorGAE}
	}
	if o.Iterations == 0 {
		o.Iterations = 40
		if o.Small {
			o.Iterations = 2
		}
	}
	return o
}

// dataFiles are where the demo wrote its inputs.
type dataFiles struct {
	pairsTrain, pairsEval, prompts, evalPrompts string
}

// writeData writes the embedded pairs and the generated story openings
// under <out>/data, so the run's inputs sit next to its outputs.
func writeData(o Options) (dataFiles, error) {
	dir := filepath.Join(o.OutputDir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dataFiles{}, fmt.Errorf("demo: %w", err)
	}
	d := dataFiles{pairsTrain: filepath.Join(dir, "sentiment_train.jsonl"), pairsEval: filepath.Join(dir, "sentiment_eval.jsonl"),
		prompts: filepath.Join(dir, "story_prompts.jsonl"), evalPrompts: filepath.Join(dir, "story_prompts_eval.jsonl")}
	var errs []error
	for _, f := range []struct{ src, dst string }{{"data/sentiment_train.jsonl", d.pairsTrain}, {"data/sentiment_eval.jsonl", d.pairsEval}} {
		b, err := files.ReadFile(f.src)
		if err == nil {
			err = os.WriteFile(f.dst, b, 0o644)
		}
		errs = append(errs, err)
	}
	n, m := 288, 32
	if o.Small {
		n, m = 16, 4
	}
	train, eval := storyPrompts(n, m)
	errs = append(errs, writeJSONL(d.prompts, "input", train), writeJSONL(d.evalPrompts, "input", eval))
	if err := errors.Join(errs...); err != nil {
		return d, fmt.Errorf("demo: %w", err)
	}
	return d, nil
}

// stories opens the embedded model with its tokenizer; every role that
// trains gets its own copy.
func stories(o Options) (train.Setup, error) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		return train.Setup{}, err
	}
	return train.Setup{Bundle: b, Console: o.Console, TTY: o.TTY}, nil
}

// trainRewardModel fits the sentiment reward model (gorlhf train rm).
func trainRewardModel(ctx context.Context, o Options, d dataFiles) (RMResult, error) {
	start := time.Now()
	env, err := stories(o)
	if err != nil {
		return RMResult{}, err
	}
	c := rm.DefaultConfig()
	c.Data.Dataset = d.pairsTrain
	c.Train.Eval.Dataset, c.Train.Eval.Steps = d.pairsEval, -1
	c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxEpochs = 32, 32, 1
	c.Train.Optim.LR, c.Train.Seed = 3e-3, o.Seed
	c.Train.Ckpt.OutputDir = filepath.Join(o.OutputDir, "reward_model")
	c.Train.Ckpt.Overwrite = true // the demo owns its folder: a re-run replaces its runs
	if o.Small {
		c.Data.MaxSamples, c.Train.MicroBatchSize, c.Train.BatchSize = 32, 16, 16
	}
	t, err := rm.New(c, env)
	if err != nil {
		return RMResult{}, err
	}
	if err := t.Run(ctx); err != nil {
		return RMResult{}, fmt.Errorf("demo: reward model: %w", err)
	}
	res := RMResult{Dir: c.Train.Ckpt.OutputDir, Wall: time.Since(start)}
	first := true
	for _, r := range t.Session().Metrics() {
		if r.Split == "eval" {
			if first {
				res.StartAcc, first = r.Values["acc"], false
			}
			res.EvalAcc = r.Values["acc"]
		}
	}
	return res, nil
}

// runRL trains the policy with one algorithm against the reward model.
func runRL(ctx context.Context, o Options, d dataFiles, algo rl.Estimator, rmDir string) (RunResult, error) {
	start := time.Now()
	env, err := stories(o)
	if err != nil {
		return RunResult{}, err
	}
	c := rlConfig(o, d, algo, rmDir)
	open := func(ref string) (*load.Loaded, error) { return load.Load(ref, load.Options{}) }
	rt := ppo.Runtime{Tok: env.Tok, Console: o.Console, TTY: o.TTY, StopIDs: env.StopIDs, NoBOS: !env.AddBOS}
	t, err := o.Placement.Train(ctx, c, env, open, rt)
	if err != nil {
		return RunResult{}, err
	}
	evals := t.Evals()
	if len(evals) < 2 {
		return RunResult{}, fmt.Errorf("demo: %d evaluations, want a first and a last", len(evals))
	}
	return RunResult{Algo: algo, Dir: c.Ckpt.OutputDir, Iterations: t.Iteration(), Before: evals[0],
		After: evals[len(evals)-1], Wall: time.Since(start), PhaseSeconds: phaseMeans(t.Metrics())}, nil
}

// phaseMeans averages the time_* metrics over the training rows.
func phaseMeans(rows []train.Row) map[string]float64 {
	sums, n := map[string]float64{}, 0
	for _, r := range rows {
		if r.Split != "train" {
			continue
		}
		n++
		for k, v := range r.Values {
			if len(k) > 5 && k[:5] == "time_" {
				sums[k[5:]] += v
			}
		}
	}
	for k := range sums {
		sums[k] /= float64(max(n, 1))
	}
	return sums
}
