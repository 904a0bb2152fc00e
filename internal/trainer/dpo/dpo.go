// Package dpo is Direct Preference Optimization (OpenRLHF's train_dpo) and
// its variants IPO and conservative DPO, with an optional NLL term: the
// policy is trained on preference pairs against a frozen reference model,
// with no reward model and no sampling.
package dpo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Trainer runs one DPO run.
type Trainer struct {
	cfg         Config
	env         train.Setup
	policy, ref model.CausalLM
	params      nn.Params
	train, eval []data.Pair
	s           *train.Session
	tape        *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// New reads the pairs and opens the session (resuming from a checkpoint
// when asked). ref is the frozen reference model; it must not share
// parameters with env.Model (load it separately).
func New(cfg Config, env train.Setup, ref model.CausalLM) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, errors.New("dpo: no reference model")
	}
	if env.Score != nil {
		return nil, errors.New("dpo: the policy must be a causal LM, not a reward model")
	}
	t := &Trainer{cfg: cfg, env: env, policy: env.Model, ref: ref}
	if env.Model.Params().Shares(ref.Params()) {
		return nil, errors.New("dpo: the reference model shares weights with the policy")
	}
	params, adapters, err := cfg.Train.Adapt(t.policy)
	if err != nil {
		return nil, fmt.Errorf("dpo: %w", err)
	}
	t.params = params
	if cfg.GradientCheckpointing {
		if err := model.UseRecompute(t.policy); err != nil {
			return nil, fmt.Errorf("dpo: %w", err)
		}
	}
	enc, err := env.Encoder(cfg.Data)
	if err != nil {
		return nil, err
	}
	var reps []*data.Report
	pairs, rep, err := enc.ReadPairs(cfg.Data.Dataset, cfg.Data.MaxSamples, cfg.keys())
	if err != nil {
		return nil, err
	}
	t.train, reps = pairs, append(reps, rep)
	if cfg.Train.Eval.Dataset != "" {
		if t.eval, rep, err = enc.ReadPairs(cfg.Train.Eval.Dataset, 0, cfg.keys()); err != nil {
			return nil, err
		}
		reps = append(reps, rep)
	}
	t.s, err = train.NewSession(cfg.Train, train.Options{
		Name: "dpo", Params: t.params, NumSamples: len(t.train), TrainerConfig: cfg,
		Model: train.Model{Module: t.policy, Config: env.Config, Files: env.TokenizerFiles,
			Adapters: adapters, Base: cfg.Model},
		Console: env.Console, TTY: env.TTY, Plots: []string{"loss", "acc"},
		Comm: env.Comm, Claimed: env.Claimed, Recompute: cfg.GradientCheckpointing,
	})
	if err != nil {
		return nil, err
	}
	t.s.Log.Info("model", "summary", env.Summary)
	if note := env.SeqLimitNote(cfg.Data.MaxLen); note != "" {
		t.s.Log.Warn(note)
	}
	for _, rep := range reps {
		t.s.Log.Info("dataset", "report", rep.String())
	}
	t.s.Log.Info("plan", "steps", t.s.Total(), "steps_per_epoch", t.s.StepsPerEpoch(), "beta", cfg.Loss.Beta,
		"ipo", cfg.Loss.IPO, "label_smoothing", cfg.Loss.LabelSmoothing, "nll_coef", cfg.NLLCoef, "start_step", t.s.Step())
	return t, nil
}

// Session returns the run's session.
func (t *Trainer) Session() *train.Session { return t.s }

// Run trains until the planned steps are done, ctx is cancelled, or
// Train.StopAtStep is reached (train.ErrStopped), then writes the policy.
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
	// 2) per micro-batch: frozen reference log-probs (no tape), then the
	//    policy's forward/backward; losses are means over the step's pairs
	var st stats
	tokens := 0
	for _, idx := range micro {
		b := t.collate(data.SelectPairs(t.train, idx))
		tokens += len(b.IDs)
		refC, refR := t.refLogProbs(b)
		if err := t.s.BeginMicro(ctx); err != nil {
			return err
		}
		tp := tensor.Recycled(&t.tape) // the last micro-batch's tensors are dead
		r := t.forward(tp, b, refC, refR, t.cfg.Train.BatchSize)
		tp.Backward(r.loss)
		if err := t.s.EndMicro(ctx); err != nil {
			return err
		}
		st.add(r)
	}
	// 3) non-finite check, clip, AdamW
	up, err := t.s.Update(ctx, st.loss)
	if err != nil {
		return err
	}
	// 4) log (Run evaluates, checkpoints and stops); the losses are the
	//    whole step's (each rank's share is normalised by the step's pairs)
	if st.pref, err = t.s.Sum(ctx, st.pref); err != nil {
		return err
	}
	if st.nll, err = t.s.Sum(ctx, st.nll); err != nil {
		return err
	}
	st.loss = up.Loss
	m := st.metrics()
	m["loss"], m["lr"], m["grad_norm"], m["skipped"] = st.pref, up.LR, up.GradNorm, b2f(up.Skipped)
	m["tokens_per_sec"] = float64(tokens) / time.Since(start).Seconds()
	if t.cfg.NLLCoef > 0 {
		m["nll_loss"], m["total_loss"] = st.nll, st.loss
	}
	return t.s.LogTrain(m, tokens, fmt.Sprintf("loss %.4f acc %.3f", st.pref, m["acc"]))
}

// collate lays out the chosen sequences, then the rejected ones, in one
// batch (OpenRLHF's concatenated_forward).
func (t *Trainer) collate(pairs []data.Pair) *data.Batch {
	samples := make([]data.Sample, 0, 2*len(pairs))
	for _, p := range pairs {
		samples = append(samples, p.Chosen)
	}
	for _, p := range pairs {
		samples = append(samples, p.Rejected)
	}
	return data.Collate(samples, t.cfg.Train.Packing, t.cfg.Data.MaxLen, t.env.PadID())
}

// refLogProbs returns the frozen reference's response log-prob sums of the
// chosen and rejected sequences of b.
func (t *Trainer) refLogProbs(b *data.Batch) (chosen, rejected []float32) {
	lp := model.TokenLogProbs(nil, t.ref, b.IDs, b.Pos, b.Seg, b.Targets, b.B, b.T)
	sums, _ := SeqLogProbs(nil, lp, b)
	p := len(b.Spans) / 2
	return sums.Data[:p], sums.Data[p:]
}

// result is one micro-batch's loss and per-pair numbers.
type result struct {
	loss                   *tensor.Tensor
	pref, nll              float64
	chosenRew, rejectedRew []float32
}

// forward computes the policy's loss on b: the preference loss plus the
// weighted NLL term, each divided by norm pairs.
func (t *Trainer) forward(tp *tensor.Tape, b *data.Batch, refC, refR []float32, norm int) result {
	p := len(b.Spans) / 2
	lp := model.TokenLogProbs(tp, t.policy, b.IDs, b.Pos, b.Seg, b.Targets, b.B, b.T)
	sums, counts := SeqLogProbs(tp, lp, b)
	pc, pr := split(tp, sums, p)
	pref, cr, rr := Loss(tp, t.cfg.Loss, pc, pr, refC, refR, norm)
	r := result{loss: pref, pref: float64(pref.Item()), chosenRew: cr, rejectedRew: rr}
	if t.cfg.NLLCoef > 0 {
		nll := NLL(tp, pc, counts[:p], norm)
		r.nll = float64(nll.Item())
		r.loss = tensor.Add(tp, pref, tensor.Scale(tp, nll, float32(t.cfg.NLLCoef)))
	}
	return r
}

// evaluate returns the preference loss and reward statistics on the eval pairs.
func (t *Trainer) evaluate() map[string]float64 {
	var st stats
	mb := t.cfg.Train.MicroBatchSize
	for i := 0; i < len(t.eval); i += mb {
		b := t.collate(t.eval[i:min(i+mb, len(t.eval))])
		refC, refR := t.refLogProbs(b)
		st.add(t.forward(nil, b, refC, refR, len(t.eval)))
	}
	m := st.metrics()
	m["loss"] = st.pref
	return m
}

// stats accumulates micro-batch results.
type stats struct {
	loss, pref, nll        float64
	chosenRew, rejectedRew []float32
}

func (s *stats) add(r result) {
	s.loss += float64(r.loss.Item())
	s.pref += r.pref
	s.nll += r.nll
	s.chosenRew = append(s.chosenRew, r.chosenRew...)
	s.rejectedRew = append(s.rejectedRew, r.rejectedRew...)
}

// metrics returns reward accuracy (chosen reward strictly higher), the
// mean implicit rewards and their mean margin.
func (s *stats) metrics() map[string]float64 {
	var acc, c, r float64
	for i := range s.chosenRew {
		acc += b2f(s.chosenRew[i] > s.rejectedRew[i])
		c += float64(s.chosenRew[i])
		r += float64(s.rejectedRew[i])
	}
	n := float64(max(len(s.chosenRew), 1))
	return map[string]float64{"acc": acc / n, "chosen_reward": c / n, "reject_reward": r / n, "margin": (c - r) / n}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
