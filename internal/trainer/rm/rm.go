// Package rm trains a reward model (OpenRLHF's train_rm): a causal LM
// backbone with a scalar head read at the last token of each sequence,
// fitted to preference pairs with the Bradley–Terry loss, so that the
// chosen response scores higher than the rejected one.
package rm

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Trainer runs one reward-model run.
type Trainer struct {
	cfg         Config
	env         train.Setup
	model       *head.ScoreModel
	params      nn.Params
	train, eval []data.Pair
	s           *train.Session
	tape        *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// New builds the score model, reads the pairs and opens the session
// (resuming from a checkpoint when asked).
func New(cfg Config, env train.Setup) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sm, modelCfg, err := scoreModel(env.Loaded, cfg.Train.Seed)
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, env: env, model: sm}
	params, adapters, err := cfg.Train.Adapt(sm, "score")
	if err != nil {
		return nil, fmt.Errorf("rm: %w", err)
	}
	t.params = params
	if cfg.GradientCheckpointing {
		if err := model.UseRecompute(sm); err != nil {
			return nil, fmt.Errorf("rm: %w", err)
		}
	}
	enc, err := env.Encoder(cfg.Data)
	if err != nil {
		return nil, err
	}
	var reps []*data.Report
	t.train, reps, err = readPairs(enc, cfg.Data.Dataset, cfg.Data.MaxSamples, cfg.keys(), reps)
	if err != nil {
		return nil, err
	}
	if cfg.Train.Eval.Dataset != "" {
		if t.eval, reps, err = readPairs(enc, cfg.Train.Eval.Dataset, 0, cfg.keys(), reps); err != nil {
			return nil, err
		}
	}
	t.s, err = train.NewSession(cfg.Train, train.Options{
		Name: "rm", Params: t.params, NumSamples: len(t.train), TrainerConfig: cfg,
		Model: train.Model{Module: sm, Config: modelCfg, Files: env.TokenizerFiles,
			Adapters: adapters, Base: cfg.Model},
		Console: env.Console, TTY: env.TTY, Plots: []string{"loss", "acc"},
		Comm: env.Comm, Claimed: env.Claimed, Recompute: cfg.GradientCheckpointing,
	})
	if err != nil {
		return nil, err
	}
	if err := t.restoreNorm(); err != nil {
		t.s.Close()
		return nil, err
	}
	t.s.Log.Info("model", "summary", env.Summary, "head", "score.weight")
	if note := env.SeqLimitNote(cfg.Data.MaxLen); note != "" {
		t.s.Log.Warn(note)
	}
	for _, rep := range reps {
		t.s.Log.Info("dataset", "report", rep.String())
	}
	t.s.Log.Info("plan", "steps", t.s.Total(), "steps_per_epoch", t.s.StepsPerEpoch(),
		"accumulation", cfg.Train.Accumulation(), "packing", cfg.Train.Packing, "start_step", t.s.Step())
	return t, nil
}

func readPairs(enc *data.Encoder, spec string, max int, k data.PairKeys, reps []*data.Report) ([]data.Pair, []*data.Report, error) {
	pairs, rep, err := enc.ReadPairs(spec, max, k)
	if err != nil {
		return nil, reps, err
	}
	return pairs, append(reps, rep), nil
}

// restoreNorm reloads the reward normalisation saved with a checkpoint.
func (t *Trainer) restoreNorm() error {
	if _, extra := t.s.Resumed(); len(extra) > 0 {
		if err := jsonUnmarshal(extra, &t.model.Norm); err != nil {
			return fmt.Errorf("rm: checkpoint extra state: %w", err)
		}
	}
	return nil
}

// Session returns the run's session.
func (t *Trainer) Session() *train.Session { return t.s }

// Model returns the reward model being trained.
func (t *Trainer) Model() *head.ScoreModel { return t.model }

// Run trains until the planned steps are done, ctx is cancelled, or
// Train.StopAtStep is reached (train.ErrStopped), then writes the model
// with the reward mean and std of the last evaluation in its config.json.
func (t *Trainer) Run(ctx context.Context) error {
	return train.Run(ctx, t.s.Loop(t.Step, t.evaluator()))
}

// evaluator is evaluate, or nil without an eval set.
func (t *Trainer) evaluator() func() map[string]float64 {
	if len(t.eval) == 0 {
		return nil
	}
	return t.evaluate
}

// Step runs one optimizer step and logs it.
func (t *Trainer) Step(ctx context.Context) error {
	start := time.Now()
	// 1) this step's micro-batches of pairs
	micro := t.s.NextBatch()
	// 2) forward/backward per micro-batch; the loss is the mean over the
	//    step's pairs
	var st stats
	tokens := 0
	for _, idx := range micro {
		b, pairs := t.collate(data.SelectPairs(t.train, idx))
		tokens += len(b.IDs)
		if err := t.s.BeginMicro(ctx); err != nil {
			return err
		}
		tp := tensor.Recycled(&t.tape) // the last micro-batch's tensors are dead
		chosen, rejected := t.rewards(tp, b, len(pairs))
		loss := Loss(tp, t.cfg.Loss, chosen, rejected, margins(pairs, t.cfg.MarginLoss), t.cfg.Train.BatchSize)
		tp.Backward(loss)
		if err := t.s.EndMicro(ctx); err != nil {
			return err
		}
		st.add(float64(loss.Item()), chosen.Data, rejected.Data)
	}
	// 3) non-finite check, clip, AdamW
	up, err := t.s.Update(ctx, st.loss)
	if err != nil {
		return err
	}
	// 4) log (Run evaluates, checkpoints and stops)
	m := st.metrics()
	m["loss"], m["lr"], m["grad_norm"], m["skipped"] = up.Loss, up.LR, up.GradNorm, b2f(up.Skipped)
	m["tokens_per_sec"] = float64(tokens) / time.Since(start).Seconds()
	return t.s.LogTrain(m, tokens, fmt.Sprintf("loss %.4f acc %.3f", up.Loss, m["acc"]))
}

// collate lays out the chosen sequences of the pairs, then the rejected
// ones (OpenRLHF's concatenated_forward), in one batch.
func (t *Trainer) collate(pairs []data.Pair) (*data.Batch, []data.Pair) {
	samples := make([]data.Sample, 0, 2*len(pairs))
	for _, p := range pairs {
		samples = append(samples, p.Chosen)
	}
	for _, p := range pairs {
		samples = append(samples, p.Rejected)
	}
	return data.Collate(samples, t.cfg.Train.Packing, t.cfg.Data.MaxLen, t.env.PadID()), pairs
}

// rewards returns the head's value at the last token of each chosen and
// each rejected sequence, [P] each.
func (t *Trainer) rewards(tp *tensor.Tape, b *data.Batch, p int) (chosen, rejected *tensor.Tensor) {
	values := t.model.Values(tp, b.IDs, b.Pos, b.Seg, b.B, b.T) // [B, T]
	flat := tensor.Reshape(tp, values, values.Numel(), 1)
	last := func(spans []data.Span) *tensor.Tensor {
		idx := make([]int, len(spans))
		for i, s := range spans {
			idx[i] = s.Last(b.T)
		}
		return tensor.Reshape(tp, tensor.GatherRows(tp, flat, idx), len(idx))
	}
	return last(b.Spans[:p]), last(b.Spans[p:])
}

// margins returns the pairs' margins, or nil when margins are off.
func margins(pairs []data.Pair, on bool) []float32 {
	if !on {
		return nil
	}
	m := make([]float32, len(pairs))
	for i, p := range pairs {
		m[i] = p.Margin
	}
	return m
}

// evaluate scores the eval pairs and updates the reward normalisation
// (mean and std of all chosen and rejected rewards, as OpenRLHF stores in
// config.json).
func (t *Trainer) evaluate() map[string]float64 {
	var st stats
	mb := t.cfg.Train.MicroBatchSize
	for i := 0; i < len(t.eval); i += mb {
		b, pairs := t.collate(t.eval[i:min(i+mb, len(t.eval))])
		chosen, rejected := t.rewards(nil, b, len(pairs))
		loss := Loss(nil, t.cfg.Loss, chosen, rejected, margins(pairs, t.cfg.MarginLoss), len(t.eval))
		st.add(float64(loss.Item()), chosen.Data, rejected.Data)
	}
	m := st.metrics()
	m["loss"] = st.loss
	mean, std := st.rewardMeanStd()
	m["reward_mean"], m["reward_std"] = mean, std
	t.model.Norm.Mean, t.model.Norm.Std = mean, std
	if err := t.s.SetExtra(t.model.Norm); err != nil {
		t.s.Log.Warn("reward normalisation not checkpointed", "err", err)
	}
	return m
}

// stats accumulates pair results over a step or an eval pass.
type stats struct {
	loss             float64
	chosen, rejected []float64
}

func (s *stats) add(loss float64, chosen, rejected []float32) {
	s.loss += loss
	for i := range chosen {
		s.chosen = append(s.chosen, float64(chosen[i]))
		s.rejected = append(s.rejected, float64(rejected[i]))
	}
}

// metrics returns accuracy (chosen scored strictly higher), the mean
// chosen and rejected rewards and the mean margin between them.
func (s *stats) metrics() map[string]float64 {
	var acc, c, r float64
	for i := range s.chosen {
		acc += b2f(s.chosen[i] > s.rejected[i])
		c += s.chosen[i]
		r += s.rejected[i]
	}
	n := float64(max(len(s.chosen), 1))
	return map[string]float64{"acc": acc / n, "chosen_reward": c / n, "reject_reward": r / n, "margin": (c - r) / n}
}

// rewardMeanStd is the mean and the unbiased standard deviation (floored
// at 1e-8) of every reward seen, torch.std's convention.
func (s *stats) rewardMeanStd() (float64, float64) {
	all := append(append([]float64(nil), s.chosen...), s.rejected...)
	if len(all) < 2 {
		return 0, 1
	}
	var sum float64
	for _, v := range all {
		sum += v
	}
	mean := sum / float64(len(all))
	var ss float64
	for _, v := range all {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Max(math.Sqrt(ss/float64(len(all)-1)), 1e-8)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
