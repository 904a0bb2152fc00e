// Package kd is knowledge distillation (OpenRLHF v0.8's train_kd): a
// student is fine-tuned on prompt/response records with, at every response
// token, the cross-entropy of its next-token distribution under a frozen
// teacher's, mixed with the SFT loss by kd_coef. Teacher and student must
// share a tokenizer.
package kd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// Trainer runs one distillation run.
type Trainer struct {
	cfg              Config
	env              train.Setup
	student, teacher model.CausalLM
	params           nn.Params
	train, eval      []data.Sample
	s                *train.Session
	tape             *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// New checks that the teacher shares the student's tokenizer and vocabulary,
// reads and tokenizes the datasets, then opens the session (resuming from a
// checkpoint when asked). The teacher must not share parameters with
// env.Model (load it separately).
func New(cfg Config, env train.Setup, teacher *load.Bundle) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if teacher == nil {
		return nil, errors.New("kd: no teacher model")
	}
	if env.Score != nil || teacher.Score != nil {
		return nil, errors.New("kd: student and teacher must be causal LMs, not reward models")
	}
	if err := sameTokenizer(env.Tok, teacher.Tok); err != nil {
		return nil, fmt.Errorf("kd: teacher %s and student %s: %w", cfg.Teacher, cfg.Model, err)
	}
	if sv, tv := env.Model.Dims().Vocab, teacher.Model.Dims().Vocab; sv != tv {
		return nil, fmt.Errorf("kd: teacher %s has %d logits per token, student %s %d: they must share a vocabulary", cfg.Teacher, tv, cfg.Model, sv)
	}
	t := &Trainer{cfg: cfg, env: env, student: env.Model, teacher: teacher.Model, params: env.Model.Params()}
	if t.params.Shares(t.teacher.Params()) {
		return nil, errors.New("kd: the teacher shares weights with the student")
	}
	if cfg.GradientCheckpointing {
		if err := model.UseRecompute(t.student); err != nil {
			return nil, fmt.Errorf("kd: %w", err)
		}
	}
	enc, err := env.Encoder(cfg.Data)
	if err != nil {
		return nil, err
	}
	var reps []*data.Report
	samples, rep, err := enc.ReadSFT(cfg.Data.Dataset, cfg.Data.MaxSamples, cfg.keys())
	if err != nil {
		return nil, err
	}
	t.train, reps = samples, append(reps, rep)
	if cfg.Train.Eval.Dataset != "" {
		if t.eval, rep, err = enc.ReadSFT(cfg.Train.Eval.Dataset, 0, cfg.keys()); err != nil {
			return nil, err
		}
		reps = append(reps, rep)
	}
	t.s, err = train.NewSession(cfg.Train, train.Options{
		Name: "kd", Params: t.params, NumSamples: len(t.train), TrainerConfig: cfg,
		Model:   train.Model{Module: t.student, Config: env.Config, Files: env.TokenizerFiles},
		Console: env.Console, TTY: env.TTY, Plots: []string{"loss", "kl"},
		Comm: env.Comm, Claimed: env.Claimed, Recompute: cfg.GradientCheckpointing,
	})
	if err != nil {
		return nil, err
	}
	t.s.Log.Info("model", "summary", env.Summary, "teacher", teacher.Summary)
	if note := env.SeqLimitNote(cfg.Data.MaxLen); note != "" {
		t.s.Log.Warn(note)
	}
	for _, rep := range reps {
		t.s.Log.Info("dataset", "report", rep.String())
	}
	t.s.Log.Info("plan", "steps", t.s.Total(), "steps_per_epoch", t.s.StepsPerEpoch(), "kd_coef", cfg.KDCoef,
		"accumulation", cfg.Train.Accumulation(), "packing", cfg.Train.Packing, "start_step", t.s.Step())
	return t, nil
}

// sameTokenizer checks that two tokenizers map every id to the same token
// and agree on the special tokens.
func sameTokenizer(a, b tokenizer.Tokenizer) error {
	if a.VocabSize() != b.VocabSize() {
		return fmt.Errorf("tokenizers differ: %d tokens vs %d", b.VocabSize(), a.VocabSize())
	}
	if a.Specials() != b.Specials() {
		return fmt.Errorf("tokenizers differ: special tokens %+v vs %+v", b.Specials(), a.Specials())
	}
	for id := range a.VocabSize() {
		if x, y := a.Token(id), b.Token(id); x != y {
			return fmt.Errorf("tokenizers differ: token %d is %q vs %q", id, y, x)
		}
	}
	return nil
}

// Session returns the run's session.
func (t *Trainer) Session() *train.Session { return t.s }

// Run trains until the planned steps are done, ctx is cancelled, or
// Train.StopAtStep is reached (train.ErrStopped), then writes the student.
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
	// 1) this step's micro-batches, collated
	var batches []*data.Batch
	lossTokens, seqTokens := 0, 0
	for _, idx := range t.s.NextBatch() {
		b := t.collate(data.Select(t.train, idx))
		batches = append(batches, b)
		lossTokens += b.LossTokens()
		seqTokens += len(b.IDs)
	}
	// 2) per micro-batch: the teacher's distributions (no tape), then the
	//    student's forward/backward; both terms are token means over the
	//    whole step (all ranks), so each micro-batch divides by its count
	total, err := t.s.Sum(ctx, float64(lossTokens))
	if err != nil {
		return err
	}
	var r result
	for _, b := range batches {
		teacher, rows := t.teacherProbs(b)
		if err := t.s.BeginMicro(ctx); err != nil {
			return err
		}
		tp := tensor.Recycled(&t.tape) // the last micro-batch's tensors are dead
		mr := t.forward(tp, b, teacher, rows, int(total))
		tp.Backward(mr.loss)
		if err := t.s.EndMicro(ctx); err != nil {
			return err
		}
		r.add(mr)
	}
	// 3) non-finite check, clip, AdamW (data-parallel: over the ranks)
	up, err := t.s.Update(ctx, r.total)
	if err != nil {
		return err
	}
	// 4) log (Run evaluates, checkpoints and stops); the parts are each
	//    rank's share, summed over the ranks
	if r.gpt, err = t.s.Sum(ctx, r.gpt); err != nil {
		return err
	}
	if r.distil, err = t.s.Sum(ctx, r.distil); err != nil {
		return err
	}
	m := map[string]float64{"loss": up.Loss, "gpt_loss": r.gpt, "distil_loss": r.distil, "lr": up.LR,
		"grad_norm": up.GradNorm, "loss_tokens": total, "skipped": b2f(up.Skipped),
		"tokens_per_sec": float64(seqTokens) / time.Since(start).Seconds()}
	return t.s.LogTrain(m, seqTokens, fmt.Sprintf("loss %.4f gpt %.4f distil %.4f", up.Loss, r.gpt, r.distil))
}

// collate lays out a micro-batch, packed or padded.
func (t *Trainer) collate(samples []data.Sample) *data.Batch {
	return data.Collate(samples, t.cfg.Train.Packing, t.cfg.Data.MaxLen, t.env.PadID())
}

// teacherProbs runs the frozen teacher on b and returns its next-token
// distributions at b's loss rows [N, V], and those rows.
func (t *Trainer) teacherProbs(b *data.Batch) (*tensor.Tensor, []int) {
	rows := LossRows(b.Targets)
	return TeacherProbs(t.teacher.Forward(nil, b.IDs, b.Pos, b.Seg, b.B, b.T), rows), rows
}

// result is a micro-batch's losses (sums divided by the step's tokens).
type result struct {
	loss               *tensor.Tensor
	total, gpt, distil float64
}

func (r *result) add(o result) {
	r.total += float64(o.loss.Item())
	r.gpt += o.gpt
	r.distil += o.distil
}

// forward computes the student's mixed loss on b.
func (t *Trainer) forward(tp *tensor.Tape, b *data.Batch, teacher *tensor.Tensor, rows []int, normTokens int) result {
	logits := t.student.Forward(tp, b.IDs, b.Pos, b.Seg, b.B, b.T) // [B·T, V]
	gpt := sft.Loss(tp, tensor.TokenLogProbs(tp, logits, b.Targets), b.Targets, normTokens)
	distil := Distill(tp, logits, rows, teacher, normTokens)
	return result{loss: Mix(tp, gpt, distil, t.cfg.KDCoef), gpt: float64(gpt.Item()), distil: float64(distil.Item())}
}

// evaluate returns, per eval response token, the student's SFT loss, the
// distillation loss, the teacher's entropy and KL(teacher ‖ student) (the
// distillation loss less the teacher's entropy), all in nats.
func (t *Trainer) evaluate() map[string]float64 {
	var gpt, distil, entropy float64
	tokens := 0
	mb := t.cfg.Train.MicroBatchSize
	for i := 0; i < len(t.eval); i += mb {
		b := t.collate(t.eval[i:min(i+mb, len(t.eval))])
		teacher, rows := t.teacherProbs(b)
		r := t.forward(nil, b, teacher, rows, 1)
		gpt, distil, entropy = gpt+r.gpt, distil+r.distil, entropy+Entropy(teacher)
		tokens += len(rows)
	}
	n := float64(max(tokens, 1))
	return map[string]float64{"loss": gpt / n, "distil_loss": distil / n, "teacher_entropy": entropy / n,
		"kl": (distil - entropy) / n, "loss_tokens": float64(tokens)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
