// Package sft is supervised fine-tuning (OpenRLHF's train_sft): the causal
// language-model loss on the response tokens of prompt/response records or
// chat conversations, or on every token in pretrain mode.
package sft

import (
	"context"
	"fmt"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Trainer runs one SFT run.
type Trainer struct {
	cfg         Config
	env         train.Setup
	model       model.CausalLM
	params      nn.Params
	train, eval []data.Sample
	s           *train.Session
	tape        *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// New reads and tokenizes the datasets, then opens the session (resuming
// from a checkpoint when asked).
func New(cfg Config, env train.Setup) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, env: env, model: env.Model}
	params, adapters, err := cfg.Train.Adapt(t.model)
	if err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	t.params = params
	if cfg.GradientCheckpointing {
		if err := model.UseRecompute(t.model); err != nil {
			return nil, fmt.Errorf("sft: %w", err)
		}
	}
	enc, err := env.Encoder(cfg.Data)
	if err != nil {
		return nil, err
	}
	var trainRep, evalRep *data.Report
	if t.train, trainRep, err = enc.ReadSFT(cfg.Data.Dataset, cfg.Data.MaxSamples, cfg.keys()); err != nil {
		return nil, err
	}
	if cfg.Train.Eval.Dataset != "" {
		if t.eval, evalRep, err = enc.ReadSFT(cfg.Train.Eval.Dataset, 0, cfg.keys()); err != nil {
			return nil, err
		}
	}
	t.s, err = train.NewSession(cfg.Train, train.Options{
		Name: "sft", Params: t.params, NumSamples: len(t.train), TrainerConfig: cfg,
		Model: train.Model{Module: t.model, Config: env.Config, Files: env.TokenizerFiles,
			Adapters: adapters, Base: cfg.Model},
		Console: env.Console, TTY: env.TTY, Plots: []string{"loss"},
		Comm: env.Comm, Claimed: env.Claimed, Recompute: cfg.GradientCheckpointing,
	})
	if err != nil {
		return nil, err
	}
	t.s.Log.Info("model", "summary", env.Summary)
	if note := env.SeqLimitNote(cfg.Data.MaxLen); note != "" {
		t.s.Log.Warn(note)
	}
	for _, rep := range []*data.Report{trainRep, evalRep} {
		if rep != nil {
			t.s.Log.Info("dataset", "report", rep.String())
		}
	}
	t.s.Log.Info("plan", "steps", t.s.Total(), "steps_per_epoch", t.s.StepsPerEpoch(),
		"accumulation", cfg.Train.Accumulation(), "packing", cfg.Train.Packing, "start_step", t.s.Step())
	return t, nil
}

// Session returns the run's session (step counter, metrics).
func (t *Trainer) Session() *train.Session { return t.s }

// Run trains until the planned steps are done, ctx is cancelled, or
// Train.StopAtStep is reached (train.ErrStopped), then writes the model.
func (t *Trainer) Run(ctx context.Context) error {
	l := t.s.Loop(t.Step, t.evaluator())
	l.Finish = func(ctx context.Context) error {
		t.s.Finishing()
		err := t.s.GatheredOnRank0(ctx, t.writeSamples)
		if err != nil {
			t.s.Log.Warn("samples not written", "err", err)
		}
		return t.s.Finish()
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
	// 1) this step's micro-batches, collated
	var batches []*data.Batch
	lossTokens, seqTokens := 0, 0
	for _, idx := range t.s.NextBatch() {
		b := t.collate(data.Select(t.train, idx))
		batches = append(batches, b)
		lossTokens += b.LossTokens()
		seqTokens += len(b.IDs)
	}
	// 2) forward/backward per micro-batch; the loss is the token mean over
	//    the whole step (all ranks' micro-batches), so each micro-batch
	//    divides by the step's count
	total, err := t.s.Sum(ctx, float64(lossTokens))
	if err != nil {
		return err
	}
	var loss float64
	for _, b := range batches {
		l, err := t.backward(ctx, b, int(total))
		if err != nil {
			return err
		}
		loss += l
	}
	// 3) non-finite check, clip, AdamW (data-parallel: over the ranks)
	up, err := t.s.Update(ctx, loss)
	if err != nil {
		return err
	}
	loss = up.Loss
	// 4) log (Run evaluates, checkpoints and stops)
	m := map[string]float64{"loss": loss, "lr": up.LR, "grad_norm": up.GradNorm, "loss_tokens": total,
		"tokens_per_sec": float64(seqTokens) / time.Since(start).Seconds(), "skipped": b2f(up.Skipped)}
	return t.s.LogTrain(m, seqTokens, fmt.Sprintf("loss %.4f", loss))
}

// backward runs one micro-batch forward and backward, accumulating
// gradients into the parameters, and returns its share of the loss.
func (t *Trainer) backward(ctx context.Context, b *data.Batch, normTokens int) (float64, error) {
	if err := t.s.BeginMicro(ctx); err != nil {
		return 0, err
	}
	tp := tensor.Recycled(&t.tape) // the last micro-batch's tensors are dead
	lp := model.TokenLogProbs(tp, t.model, b.IDs, b.Pos, b.Seg, b.Targets, b.B, b.T)
	l := Loss(tp, lp, b.Targets, normTokens)
	tp.Backward(l)
	return float64(l.Item()), t.s.EndMicro(ctx)
}

// collate lays out a micro-batch, packed or padded.
func (t *Trainer) collate(samples []data.Sample) *data.Batch {
	return data.Collate(samples, t.cfg.Train.Packing, t.cfg.Data.MaxLen, t.env.PadID())
}

// evaluate returns the token-mean loss on the eval set.
func (t *Trainer) evaluate() map[string]float64 {
	var nll float64
	tokens := 0
	mb := t.cfg.Train.MicroBatchSize
	for i := 0; i < len(t.eval); i += mb {
		b := t.collate(t.eval[i:min(i+mb, len(t.eval))])
		lp := model.TokenLogProbs(nil, t.model, b.IDs, b.Pos, b.Seg, b.Targets, b.B, b.T)
		for n, tgt := range b.Targets {
			if tgt != data.IgnoreIndex {
				nll -= float64(lp.Data[n])
				tokens++
			}
		}
	}
	return map[string]float64{"loss": nll / float64(max(tokens, 1)), "loss_tokens": float64(tokens)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
