package demo

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/train/report"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// rlConfig is the demo's RL recipe for one algorithm. Every run samples
// 64 stories of ≤ 48 tokens per iteration and keeps a KL leash to the
// initial policy: PPO (gae) puts β = 0.05 of k1 into the reward, as
// OpenRLHF does by default; GRPO-style runs (8 samples per prompt) and
// REINFORCE++-baseline use a KL loss term (k3, k2) with β = 0.2, which
// holds them near the same KL as PPO (with β = 0.05 they reach ~6× the
// KL and degenerate into "very happy and happy").
func rlConfig(o Options, d dataFiles, algo rl.Estimator, rmDir string) ppo.Config {
	c := ppo.DefaultConfig()
	c.Data.PromptDataset, c.Data.InputKey, c.Data.MaxLen = d.prompts, "input", 160
	c.Eval = ppo.EvalConfig{Dataset: d.evalPrompts, Steps: 5, NSamples: 2, Temperature: 1}
	c.Reward.Model, c.Reward.Normalize = rmDir, true
	c.Rollout.BatchSize, c.Rollout.MaxNewTokens = 16, 48
	c.Algo.Advantage.Estimator, c.Algo.Advantage.SamplesPerPrompt = algo, 4
	c.Algo.KL = rl.KLConfig{InitCoef: 0.05, Estimator: rl.K1, Horizon: 10000}
	c.Train.BatchSize, c.Train.MicroBatchSize, c.Train.MaxIterations, c.Train.Seed = 32, 16, o.Iterations, o.Seed
	c.Actor.Optim = optim(3e-4)
	c.Critic.Optim = optim(1e-3)
	switch algo {
	case rl.EstimatorGAE:
		c.Algo.Advantage.Lambda = 0.95
		c.Critic.FreezingSteps = 2 // warm the critic up first
	case rl.EstimatorGroupNorm, rl.EstimatorDrGRPO, rl.EstimatorRLOO:
		c.Rollout.BatchSize, c.Algo.Advantage.SamplesPerPrompt = 8, 8
		c.Algo.KL = rl.KLConfig{InitCoef: 0.2, Estimator: rl.K3, UseLoss: true, Horizon: 10000}
	case rl.EstimatorReinforceBaseline:
		c.Algo.KL = rl.KLConfig{InitCoef: 0.2, Estimator: rl.K2, UseLoss: true, Horizon: 10000}
	}
	if o.Async.Enable {
		c.Train.Async = o.Async
	}
	c.Ckpt.OutputDir = filepath.Join(o.OutputDir, "rl_"+string(algo))
	c.Ckpt.Overwrite = true // the demo owns its folder: a re-run replaces its runs
	if o.Small {
		c.Rollout.BatchSize, c.Rollout.MaxNewTokens = 4, 12
		c.Algo.Advantage.SamplesPerPrompt = 2
		c.Train.BatchSize, c.Train.MicroBatchSize = 8, 4
		c.Eval.Steps = 1
		c.Critic.FreezingSteps = 0
	}
	return c
}

// optim is AdamW with a short warm-up and a cosine decay to 10 %.
func optim(lr float64) train.OptimConfig {
	o := train.DefaultConfig().Optim
	o.LR, o.WarmupRatio, o.MinLRRatio = lr, 0.05, 0.1
	return o
}

// writeJSONL writes one {key: text} object per line.
func writeJSONL(path, key string, texts []string) error {
	var b strings.Builder
	for _, t := range texts {
		line, err := json.Marshal(map[string]string{key: t})
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// comparePlot draws every run's eval (points) and train curve of one
// metric over iterations on one set of axes.
func comparePlot(path, key, title string, runs []RunResult) error {
	var series []report.Series
	for i, r := range runs {
		rows, err := train.ReadMetrics(filepath.Join(r.Dir, train.MetricsFile))
		if err != nil {
			return err
		}
		col := report.Palette[i%len(report.Palette)]
		tr := report.Series{Name: string(r.Algo) + " train", Color: col}
		ev := report.Series{Name: string(r.Algo) + " eval", Color: col, Points: true}
		for _, row := range rows {
			v, ok := row.Values[key]
			if !ok {
				continue
			}
			if row.Split == "eval" {
				ev.X, ev.Y = append(ev.X, float64(row.Step)), append(ev.Y, v)
			} else {
				tr.X, tr.Y = append(tr.X, float64(row.Step)), append(tr.Y, v)
			}
		}
		series = append(series, tr, ev)
	}
	return report.WritePlot(path, title, key, series)
}
