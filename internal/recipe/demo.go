package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// ArithmeticDemo configures the RLVR demo (`gorlhf demo --task
// arithmetic`): a brief SFT of stories260K on the task's answer format,
// then GRPO with the exact-match grader, held-out accuracy measured before
// and after on problems never seen in training. Start from
// DefaultArithmeticDemo.
type ArithmeticDemo struct {
	Task      ArithmeticConfig
	OutputDir string
	Seed      uint64 // SFT data order, RL sampling, evaluation draws

	// SFT: SFTSteps optimizer steps of SFTBatch examples drawn (with
	// repetition) from the training problems. Short on purpose: the SFT
	// model learns the format and part of the task, leaving room for RL.
	SFTSteps, SFTBatch int
	SFTLR              float64

	// GRPO: Iterations rollout batches of Prompts training problems ×
	// Group samples at temperature 1; one optimizer step per
	// TrainBatch samples.
	Iterations, Prompts, Group, TrainBatch int
	LR                                     float64
	// FilterRounds > 0 drops groups whose samples are all right or all
	// wrong and samples more prompts to fill the batch (DAPO), at most
	// FilterRounds generation rounds per iteration; 0 rounds = off.
	FilterRounds int
	// EvalEvery is how often (in iterations) held-out greedy accuracy is
	// measured during RL, for the curve.
	EvalEvery int

	Console io.Writer // progress and logs; nil = none
	TTY     bool
}

// DefaultArithmeticDemo is the recipe as shipped.
func DefaultArithmeticDemo() ArithmeticDemo {
	return ArithmeticDemo{Task: DefaultArithmeticConfig(), OutputDir: "gorlhf-demo-arithmetic", Seed: 1,
		SFTSteps: 60, SFTBatch: 32, SFTLR: 3e-3,
		Iterations: 60, Prompts: 32, Group: 8, TrainBatch: 128, LR: 5e-4, EvalEvery: 5}
}

// Validate checks the budgets.
func (d ArithmeticDemo) Validate() error {
	errs := []error{d.Task.Validate()}
	if d.OutputDir == "" {
		errs = append(errs, errors.New("recipe: demo: output dir is required"))
	}
	if d.SFTSteps < 1 || d.SFTBatch < 1 || !(d.SFTLR > 0) || d.Iterations < 1 || d.Prompts < 1 || d.Group < 2 ||
		d.TrainBatch < 1 || !(d.LR > 0) || d.EvalEvery < 1 {
		errs = append(errs, fmt.Errorf("recipe: demo: every budget must be positive (group ≥ 2): %+v", d))
	}
	return errors.Join(errs...)
}

// DemoEval is one model's held-out accuracy.
type DemoEval struct {
	Greedy  float64 // greedy decoding, one answer per problem
	Sampled float64 // 8 samples per problem at temperature 1
	Answers []Answer
}

// DemoSummary is what a demo run measured.
type DemoSummary struct {
	HeldOut, Train int // problem counts
	Base, SFT, RL  DemoEval
	// Curve is held-out greedy accuracy during RL: iteration → accuracy.
	Curve              []CurvePoint
	SFTWall, RLWall    time.Duration
	SFTDir, RLDir      string
	CurvePlot, Summary string // files written
}

// CurvePoint is one held-out evaluation during RL.
type CurvePoint struct {
	Iteration int     `json:"iteration"`
	Accuracy  float64 `json:"accuracy"`
}

// demoFiles are the demo's generated datasets.
type demoFiles struct{ sft, prompts, heldOut string }

// RunArithmeticDemo runs the recipe: data, SFT, evaluation, GRPO,
// evaluation, curve and summary files under d.OutputDir.
func RunArithmeticDemo(ctx context.Context, d ArithmeticDemo) (DemoSummary, error) {
	var sum DemoSummary
	if err := d.Validate(); err != nil {
		return sum, err
	}
	trainPs, heldOut, err := d.Task.Split()
	if err != nil {
		return sum, err
	}
	sum.Train, sum.HeldOut = len(trainPs), len(heldOut)
	files, err := d.writeData(trainPs, heldOut)
	if err != nil {
		return sum, err
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		return sum, err
	}
	if sum.Base, err = d.evalModel(ctx, load.DefaultModel, tok, heldOut); err != nil {
		return sum, err
	}
	start := time.Now()
	if sum.SFTDir, err = d.runSFT(ctx, files, tok); err != nil {
		return sum, err
	}
	sum.SFTWall = time.Since(start)
	if sum.SFT, err = d.evalModel(ctx, sum.SFTDir, tok, heldOut); err != nil {
		return sum, err
	}
	d.logf("SFT: held-out accuracy greedy %.3f, sampled %.3f (%s)", sum.SFT.Greedy, sum.SFT.Sampled, sum.SFTWall.Round(time.Second))
	start = time.Now()
	if sum.RLDir, sum.Curve, err = d.runGRPO(ctx, files, sum.SFTDir, tok); err != nil {
		return sum, err
	}
	sum.RLWall = time.Since(start)
	if sum.RL, err = d.evalModel(ctx, sum.RLDir, tok, heldOut); err != nil {
		return sum, err
	}
	d.logf("GRPO: held-out accuracy greedy %.3f, sampled %.3f (%s)", sum.RL.Greedy, sum.RL.Sampled, sum.RLWall.Round(time.Second))
	return sum, d.writeSummary(&sum)
}

func (d ArithmeticDemo) logf(format string, args ...any) {
	if d.Console != nil {
		fmt.Fprintf(d.Console, format+"\n", args...)
	}
}

// writeData writes the SFT examples, the RL prompts and the held-out
// prompts under <out>/data.
func (d ArithmeticDemo) writeData(trainPs, heldOut []Problem) (demoFiles, error) {
	dir := filepath.Join(d.OutputDir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return demoFiles{}, fmt.Errorf("recipe: demo: %w", err)
	}
	f := demoFiles{sft: filepath.Join(dir, "sft_train.jsonl"), prompts: filepath.Join(dir, "rl_prompts.jsonl"),
		heldOut: filepath.Join(dir, "heldout.jsonl")}
	return f, errors.Join(
		WriteSFT(f.sft, Sample(trainPs, d.SFTSteps*d.SFTBatch, d.Seed)),
		WritePrompts(f.prompts, trainPs),
		WritePrompts(f.heldOut, heldOut))
}

// env loads a model with the embedded tok512 tokenizer.
func (d ArithmeticDemo) env(ref string, tok tokenizer.Tokenizer) (train.Env, error) {
	m, err := load.Load(ref, load.Options{})
	if err != nil {
		return train.Env{}, fmt.Errorf("recipe: demo: %w", err)
	}
	return train.Env{Model: m, Tok: tok, TokenizerFiles: map[string][]byte{"tokenizer.bin": assets.Tok512()},
		Console: d.Console, TTY: d.TTY}, nil
}

// runSFT fine-tunes stories260K on the SFT examples (one epoch) and
// returns the saved model folder.
func (d ArithmeticDemo) runSFT(ctx context.Context, f demoFiles, tok tokenizer.Tokenizer) (string, error) {
	env, err := d.env(load.DefaultModel, tok)
	if err != nil {
		return "", err
	}
	c := sft.DefaultConfig()
	c.Samples = 0
	c.Data.Dataset, c.Data.InputKey, c.Data.OutputKey, c.Data.InputTemplate, c.Data.MaxLen = f.sft, KeyInput, KeyOutput, "", 32
	c.Train.MicroBatchSize, c.Train.BatchSize, c.Train.MaxEpochs, c.Train.Seed = d.SFTBatch, d.SFTBatch, 1, d.Seed
	c.Train.Optim.LR, c.Train.Optim.WarmupRatio = d.SFTLR, 0.05
	c.Train.Ckpt.OutputDir = filepath.Join(d.OutputDir, "sft")
	t, err := sft.New(c, env)
	if err != nil {
		return "", err
	}
	if err := t.Run(ctx); err != nil {
		return "", fmt.Errorf("recipe: demo: sft: %w", err)
	}
	return c.Train.Ckpt.OutputDir, nil
}

// GRPOConfig is the demo's RL run: GRPO (group_norm) with the exact-match
// grader, no KL term and no reference model (as DAPO), clip-higher, and
// held-out greedy accuracy as the eval score.
func (d ArithmeticDemo) GRPOConfig(actor, prompts, heldOut string) ppo.Config {
	c := ppo.DefaultConfig()
	c.Actor.Model = actor
	c.Actor.Optim.LR, c.Actor.Optim.WarmupRatio, c.Actor.Optim.MinLRRatio = d.LR, 0.05, 1
	c.Actor.PolicyLoss.ClipLow, c.Actor.PolicyLoss.ClipHigh = 0.2, 0.28
	c.Reward.Rule = reward.RuleConfig{Kind: reward.RuleExact}
	c.Data.PromptDataset, c.Data.InputKey, c.Data.LabelKey, c.Data.MaxLen = prompts, KeyInput, KeyLabel, 32
	c.Rollout.BatchSize, c.Rollout.MaxNewTokens, c.Rollout.Temperature = d.Prompts, 4, 1
	c.Algo.Advantage.Estimator, c.Algo.Advantage.SamplesPerPrompt = rl.EstimatorGroupNorm, d.Group
	c.Algo.KL = rl.KLConfig{Estimator: rl.K3, Horizon: 10000}
	c.Train.BatchSize, c.Train.MicroBatchSize = d.TrainBatch, d.TrainBatch
	c.Train.MaxIterations, c.Train.Seed, c.Train.EngineLogProbs = d.Iterations, d.Seed, true
	if d.FilterRounds > 0 {
		c.Algo.DynamicFilter = ppo.DynamicFilterConfig{Enable: true, Range: rl.DefaultDynamicFilter(), MaxRounds: d.FilterRounds}
	}
	c.Eval = ppo.EvalConfig{Dataset: heldOut, Steps: d.EvalEvery, NSamples: 1, Temperature: 0}
	c.Ckpt.OutputDir = filepath.Join(d.OutputDir, "grpo")
	return c
}

// runGRPO trains the SFT model with GRPO and returns the final model
// folder and the held-out accuracy curve.
func (d ArithmeticDemo) runGRPO(ctx context.Context, f demoFiles, sftDir string, tok tokenizer.Tokenizer) (string, []CurvePoint, error) {
	env, err := d.env(sftDir, tok)
	if err != nil {
		return "", nil, err
	}
	c := d.GRPOConfig(sftDir, f.prompts, f.heldOut)
	roles, err := ppo.NewInProc(c, env, func(ref string) (*load.Loaded, error) { return load.Load(ref, load.Options{}) })
	if err != nil {
		return "", nil, err
	}
	defer roles.Close()
	t, err := ppo.New(ctx, c, roles.Roles, ppo.Env{Tok: tok, Console: d.Console, TTY: d.TTY})
	if err != nil {
		return "", nil, err
	}
	if err := t.Run(ctx); err != nil {
		return "", nil, fmt.Errorf("recipe: demo: grpo: %w", err)
	}
	var curve []CurvePoint
	for _, r := range t.Metrics() {
		if r.Split == "eval" {
			curve = append(curve, CurvePoint{Iteration: r.Step, Accuracy: r.Values["score"]})
		}
	}
	return c.Ckpt.OutputDir, curve, nil
}

// evalModel measures a saved model's held-out accuracy, greedy and sampled.
func (d ArithmeticDemo) evalModel(ctx context.Context, ref string, tok tokenizer.Tokenizer, ps []Problem) (DemoEval, error) {
	m, err := load.Load(ref, load.Options{})
	if err != nil {
		return DemoEval{}, fmt.Errorf("recipe: demo: %w", err)
	}
	g, err := Evaluate(ctx, m.Model, tok, ps, Greedy())
	if err != nil {
		return DemoEval{}, err
	}
	s, err := Evaluate(ctx, m.Model, tok, ps, Sampled(d.Seed^0x5eed))
	if err != nil {
		return DemoEval{}, err
	}
	return DemoEval{Greedy: g.Accuracy, Sampled: s.Accuracy, Answers: g.Answers}, nil
}

// writeSummary writes the curve plot and summary.json.
func (d ArithmeticDemo) writeSummary(sum *DemoSummary) error {
	sum.CurvePlot = filepath.Join(d.OutputDir, "heldout_accuracy.png")
	s := train.Series{Name: "held-out greedy accuracy", Color: train.Palette[0], Points: true}
	for _, p := range sum.Curve {
		s.X, s.Y = append(s.X, float64(p.Iteration)), append(s.Y, p.Accuracy)
	}
	sftLine := train.Series{Name: "SFT start", Color: train.Palette[1]}
	if len(s.X) > 0 {
		sftLine.X, sftLine.Y = []float64{s.X[0], s.X[len(s.X)-1]}, []float64{sum.SFT.Greedy, sum.SFT.Greedy}
	}
	if err := train.WritePlot(sum.CurvePlot, "arithmetic RLVR: held-out accuracy during GRPO", "accuracy", []train.Series{s, sftLine}); err != nil {
		return fmt.Errorf("recipe: demo: %w", err)
	}
	sum.Summary = filepath.Join(d.OutputDir, "summary.json")
	out := struct {
		Config  ArithmeticDemo
		Summary DemoSummary
	}{d, *sum}
	out.Config.Console = nil
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("recipe: demo: %w", err)
	}
	return os.WriteFile(sum.Summary, b, 0o644)
}
