// Package prm trains a process reward model (OpenRLHF's train_prm): a
// causal LM read at the step tags of a multi-step solution. Every step of
// an input ends with a placeholder token (--placeholder_token); the LM
// head's logits at that position, restricted to the reward tokens
// (--reward_tokens, e.g. "+" for a right step and "-" for a wrong one),
// classify the step. Labels are reward tokens (hard) or the probability
// of the positive token (soft); the loss is their cross-entropy, and the
// step accuracy is the share of tags whose top reward token is the label's.
package prm

import (
	"context"
	"fmt"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/reward/prmodel"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Trainer runs one PRM run.
type Trainer struct {
	cfg         Config
	env         train.Setup
	model       model.CausalLM
	tokens      Tokens
	classes     int
	rowLen      int   // a packed row's length (the token budget)
	pad         int32 // the padding token
	train, eval []Sample
	s           *train.Session
	tape        *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// New resolves the step tag and reward tokens, reads the datasets and
// opens the session (resuming from a checkpoint when asked). Bad data is
// an error before anything is written.
func New(cfg Config, env train.Setup) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tokens, err := NewTokens(env.Tok, cfg.PlaceholderToken, cfg.RewardTokens)
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, env: env, model: env.Model, tokens: tokens, classes: tokens.Classes(env.Model.Dims().Vocab),
		rowLen: env.SeqLimit(cfg.Data.MaxLen), pad: env.PadID()}
	if cfg.GradientCheckpointing {
		if err := model.UseRecompute(t.model); err != nil {
			return nil, fmt.Errorf("prm: %w", err)
		}
	}
	r := Reader{Tok: env.Tok, Tokens: tokens, InputKey: cfg.Data.InputKey, LabelKey: cfg.LabelKey, MaxLen: env.SeqLimit(cfg.Data.MaxLen)}
	var reps []*data.Report
	var rep *data.Report
	if t.train, rep, err = r.Read(cfg.Data.Dataset, cfg.Data.MaxSamples); err != nil {
		return nil, err
	}
	reps = append(reps, rep)
	if cfg.Train.Eval.Dataset != "" {
		if t.eval, rep, err = r.Read(cfg.Train.Eval.Dataset, 0); err != nil {
			return nil, err
		}
		reps = append(reps, rep)
	}
	t.s, err = train.NewSession(cfg.Train, train.Options{
		Name: "prm", Params: t.model.Params(), NumSamples: len(t.train), TrainerConfig: cfg,
		Model:   train.Model{Module: t.model, Config: env.Config, Files: env.TokenizerFiles},
		Console: env.Console, TTY: env.TTY, Plots: []string{"loss", "acc"},
		Comm: env.Comm, Claimed: env.Claimed, Recompute: cfg.GradientCheckpointing,
	})
	if err != nil {
		return nil, err
	}
	t.s.Log.Info("model", "summary", env.Summary, "placeholder", tokens.Placeholder, "reward_tokens", tokens.Reward, "classes", t.classes)
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

// Session returns the run's session.
func (t *Trainer) Session() *train.Session { return t.s }

// Tokens returns the resolved step tag and reward tokens.
func (t *Trainer) Tokens() Tokens { return t.tokens }

// Run trains until the planned steps are done, ctx is cancelled, or
// Train.StopAtStep is reached (train.ErrStopped), then writes the model
// and, next to it, prm.json (the step tag and reward tokens, which
// `train ppo` reads when it uses the model as a reward source).
func (t *Trainer) Run(ctx context.Context) error {
	l := t.s.Loop(t.Step, t.evaluator())
	l.Finish = func(ctx context.Context) error {
		if err := t.s.Finish(); err != nil {
			return err
		}
		if t.s.Rank() != 0 {
			return nil
		}
		return prmodel.WriteSpec(t.cfg.Train.Ckpt.OutputDir, prmodel.Spec{PlaceholderToken: t.cfg.PlaceholderToken, RewardTokens: t.cfg.RewardTokens})
	}
	return train.Run(ctx, l)
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
	var st stats
	tokens := 0
	micro := t.cfg.Train.Accumulation() // micro-batches of the step, all ranks
	// 1) forward/backward per micro-batch: each adds its tag-mean loss
	//    divided by the step's micro-batch count
	for _, idx := range t.s.NextBatch() {
		samples := selectSamples(t.train, idx)
		if err := t.s.BeginMicro(ctx); err != nil {
			return err
		}
		tp := tensor.Recycled(&t.tape) // the last micro-batch's tensors are dead
		z, target, n := t.forward(tp, samples)
		tokens += n
		loss := Loss(tp, z, target, 1/float32(len(target)/t.classes*micro))
		tp.Backward(loss)
		if err := t.s.EndMicro(ctx); err != nil {
			return err
		}
		st.add(float64(loss.Item()), z, target)
	}
	// 2) non-finite check, clip, AdamW (data-parallel: over the ranks)
	up, err := t.s.Update(ctx, st.loss)
	if err != nil {
		return err
	}
	// 3) log (Run evaluates, checkpoints and stops)
	m := st.metrics()
	m["loss"], m["lr"], m["grad_norm"], m["skipped"] = up.Loss, up.LR, up.GradNorm, b2f(up.Skipped)
	m["tokens_per_sec"] = float64(tokens) / time.Since(start).Seconds()
	return t.s.LogTrain(m, tokens, fmt.Sprintf("loss %.4f acc %.3f", up.Loss, m["acc"]))
}

// forward runs the model on samples and returns the tag logits [P, K],
// their label distributions [P·K] and the batch's token count.
func (t *Trainer) forward(tp *tensor.Tape, samples []Sample) (*tensor.Tensor, []float32, int) {
	b, rows := t.collate(samples)
	logits := t.model.Forward(tp, b.IDs, b.Pos, b.Seg, b.B, b.T) // [B, T, V]
	return TagLogits(tp, logits, rows, t.tokens.Reward), Targets(samples, t.classes), len(b.IDs)
}

// collate lays out samples, padded or packed, and returns the flat row
// of every step tag, in sample then tag order.
func (t *Trainer) collate(samples []Sample) (*data.Batch, []int) {
	ds := make([]data.Sample, len(samples))
	for i, s := range samples {
		ds[i] = data.Sample{IDs: s.IDs, Loss: make([]bool, len(s.IDs)), Pos: s.Pos}
	}
	b := data.Collate(ds, t.cfg.Train.Packing, t.rowLen, t.pad)
	var rows []int
	for i, s := range samples {
		for _, tag := range s.Tags {
			rows = append(rows, b.Spans[i].Flat(b.T, tag))
		}
	}
	return b, rows
}

// evaluate returns the tag-mean loss and the step accuracy on the eval set.
func (t *Trainer) evaluate() map[string]float64 {
	var st stats
	tags := 0
	for _, s := range t.eval {
		tags += len(s.Tags)
	}
	mb := t.cfg.Train.MicroBatchSize
	for i := 0; i < len(t.eval); i += mb {
		z, target, _ := t.forward(nil, t.eval[i:min(i+mb, len(t.eval))])
		st.add(float64(Loss(nil, z, target, 1/float32(tags)).Item()), z, target)
	}
	m := st.metrics()
	m["loss"] = st.loss
	return m
}

// Evaluate scores samples with m: the tag-mean loss and the step
// accuracies (acc, acc_pos on tags labelled with the first reward token,
// acc_neg on the others), with micro-batches of mb padded samples.
func Evaluate(m model.CausalLM, tokens Tokens, samples []Sample, mb int, padID int32) map[string]float64 {
	t := &Trainer{model: m, tokens: tokens, classes: tokens.Classes(m.Dims().Vocab), eval: samples, pad: padID}
	t.cfg.Train.MicroBatchSize = max(mb, 1)
	return t.evaluate()
}

// stats accumulates tag results over a step or an eval pass.
type stats struct {
	loss     float64
	pos, neg [2]int
}

func (s *stats) add(loss float64, z *tensor.Tensor, target []float32) {
	s.loss += loss
	p, n := Correct(z, target)
	for i := range 2 {
		s.pos[i] += p[i]
		s.neg[i] += n[i]
	}
}

// metrics returns the step accuracy over all tags, over positive-labelled
// tags and over the others, and the tag count.
func (s *stats) metrics() map[string]float64 {
	ratio := func(a, b int) float64 { return float64(a) / float64(max(b, 1)) }
	return map[string]float64{"acc": ratio(s.pos[0]+s.neg[0], s.pos[1]+s.neg[1]),
		"acc_pos": ratio(s.pos[0], s.pos[1]), "acc_neg": ratio(s.neg[0], s.neg[1]), "tags": float64(s.pos[1] + s.neg[1])}
}

func selectSamples(all []Sample, idx []int) []Sample {
	out := make([]Sample, len(idx))
	for i, j := range idx {
		out[i] = all[j]
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
