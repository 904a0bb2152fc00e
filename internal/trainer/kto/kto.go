// Package kto is Kahneman-Tversky Optimization (Ethayarajh et al. 2024;
// OpenRLHF v0.8's train_kto): the policy learns from unpaired samples, each
// response labelled desirable or undesirable, against a frozen reference
// model, with no reward model and no sampling. Its reference point is a
// detached estimate of KL(π‖π_ref) on mismatched prompt/response pairs.
package kto

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
	"github.com/gorlhf/gorlhf/internal/trainer/dpo"
)

// Trainer runs one KTO run.
type Trainer struct {
	cfg         Config
	env         train.Setup
	enc         *data.Encoder
	policy, ref model.CausalLM
	params      nn.Params
	train, eval []data.Unpaired
	s           *train.Session
	tape        *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// New reads the samples and opens the session (resuming from a checkpoint
// when asked). ref is the frozen reference model; it must not share
// parameters with env.Model (load it separately).
func New(cfg Config, env train.Setup, ref model.CausalLM) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, errors.New("kto: no reference model")
	}
	if env.Score != nil {
		return nil, errors.New("kto: the policy must be a causal LM, not a reward model")
	}
	t := &Trainer{cfg: cfg, env: env, policy: env.Model, ref: ref, params: env.Model.Params()}
	if t.params.Shares(ref.Params()) {
		return nil, errors.New("kto: the reference model shares weights with the policy")
	}
	if cfg.GradientCheckpointing {
		if err := model.UseRecompute(t.policy); err != nil {
			return nil, fmt.Errorf("kto: %w", err)
		}
	}
	var err error
	if t.enc, err = env.Encoder(cfg.Data); err != nil {
		return nil, err
	}
	var reps []*data.Report
	if t.train, reps, err = t.read(cfg.Data.Dataset, cfg.Data.MaxSamples, reps); err != nil {
		return nil, err
	}
	if cfg.Train.Eval.Dataset != "" {
		if t.eval, reps, err = t.read(cfg.Train.Eval.Dataset, 0, reps); err != nil {
			return nil, err
		}
	}
	t.s, err = train.NewSession(cfg.Train, train.Options{
		Name: "kto", Params: t.params, NumSamples: len(t.train), TrainerConfig: cfg,
		Model:   train.Model{Module: t.policy, Config: env.Config, Files: env.TokenizerFiles},
		Console: env.Console, TTY: env.TTY, Plots: []string{"loss", "margin", "kl"},
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
	d, u := count(t.train)
	t.s.Log.Info("plan", "steps", t.s.Total(), "steps_per_epoch", t.s.StepsPerEpoch(), "beta", cfg.Loss.Beta,
		"desirable", d, "undesirable", u, "desirable_weight", cfg.Loss.DesirableWeight,
		"undesirable_weight", cfg.Loss.UndesirableWeight, "start_step", t.s.Step())
	return t, nil
}

// read reads one dataset and checks that it holds both classes.
func (t *Trainer) read(spec string, maxSamples int, reps []*data.Report) ([]data.Unpaired, []*data.Report, error) {
	us, rep, err := t.enc.ReadUnpaired(spec, maxSamples, t.cfg.keys())
	if err != nil {
		return nil, reps, err
	}
	d, u := count(us)
	if d == 0 || u == 0 {
		class, v := "undesirable (false/0)", "desirable (true/1)"
		if d == 0 {
			class, v = v, class
		}
		return nil, reps, fmt.Errorf("kto: %s: field %q has no %s sample: all %d are %s; KTO needs both classes",
			spec, t.cfg.LabelKey, class, len(us), v)
	}
	return us, append(reps, rep), nil
}

// count returns the numbers of desirable and undesirable samples.
func count(us []data.Unpaired) (desirable, undesirable int) {
	for _, u := range us {
		if u.Desirable {
			desirable++
		} else {
			undesirable++
		}
	}
	return desirable, len(us) - desirable
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
	// 1) this step's micro-batches of samples
	micro := t.s.NextBatch()
	var st stats
	tokens := 0
	for _, idx := range micro {
		mb := t.collate(data.SelectUnpaired(t.train, idx))
		tokens += len(mb.matched.IDs) + len(mb.mismatched.IDs)
		// 2) frozen reference log-probs of both halves (no tape)
		refM, refK := t.refLogProbs(mb)
		if err := t.s.BeginMicro(ctx); err != nil {
			return err
		}
		// 3) the reference point: the policy's mismatched log-probs (no
		//    tape), KL averaged over the ranks, clamped at 0
		kl, err := t.referencePoint(ctx, mb, refK)
		if err != nil {
			return err
		}
		// 4) the policy's forward/backward on the matched half; losses are
		//    sums over the step's samples divided by the step's sample count
		tp := tensor.Recycled(&t.tape) // the last micro-batch's tensors are dead
		r := t.forward(tp, mb, refM, kl, t.cfg.Train.BatchSize)
		tp.Backward(r.loss)
		if err := t.s.EndMicro(ctx); err != nil {
			return err
		}
		st.add(r)
	}
	// 5) non-finite check, clip, AdamW
	up, err := t.s.Update(ctx, st.loss)
	if err != nil {
		return err
	}
	// 6) log (Run evaluates, checkpoints and stops)
	m := st.metrics()
	m["loss"], m["lr"], m["grad_norm"], m["skipped"] = up.Loss, up.LR, up.GradNorm, b2f(up.Skipped)
	m["tokens_per_sec"] = float64(tokens) / time.Since(start).Seconds()
	return t.s.LogTrain(m, tokens, fmt.Sprintf("loss %.4f margin %.3f kl %.3f", up.Loss, m["margin"], m["kl"]))
}

// microBatch is one micro-batch as KTO lays it out (OpenRLHF's
// UnpairedPreferenceDataset.collate_fn): the samples, and the mismatched
// sequences whose log-probs estimate the KL.
type microBatch struct {
	matched, mismatched *data.Batch
	desirable           []bool
}

// collate lays out the samples and, in a second batch, prompt i with the
// response of sample i+1 (cyclically) for each i.
func (t *Trainer) collate(us []data.Unpaired) microBatch {
	n := len(us)
	matched, mis := make([]data.Sample, n), make([]data.Sample, n)
	desirable := make([]bool, n)
	for i, u := range us {
		matched[i], desirable[i] = u.Sample, u.Desirable
		mis[i] = t.enc.Mismatched(u, us[(i+1)%n])
	}
	c := func(s []data.Sample) *data.Batch {
		return data.Collate(s, t.cfg.Train.Packing, t.cfg.Data.MaxLen, t.env.PadID())
	}
	return microBatch{matched: c(matched), mismatched: c(mis), desirable: desirable}
}

// seqLogProbs returns m's response log-prob sums of the sequences of b.
func seqLogProbs(tp *tensor.Tape, m model.CausalLM, b *data.Batch) *tensor.Tensor {
	lp := model.TokenLogProbs(tp, m, b.IDs, b.Pos, b.Seg, b.Targets, b.B, b.T)
	sums, _ := dpo.SeqLogProbs(tp, lp, b)
	return sums
}

// refLogProbs returns the frozen reference's response log-prob sums of the
// matched and the mismatched sequences.
func (t *Trainer) refLogProbs(mb microBatch) (matched, mismatched []float32) {
	return seqLogProbs(nil, t.ref, mb.matched).Data, seqLogProbs(nil, t.ref, mb.mismatched).Data
}

// referencePoint returns the clamped KL estimate of the micro-batch, the
// mean over the data-parallel ranks of each rank's estimate (OpenRLHF
// all-reduces it likewise). Every rank calls it once per micro-batch.
func (t *Trainer) referencePoint(ctx context.Context, mb microBatch, refK []float32) (float64, error) {
	kl := KL(seqLogProbs(nil, t.policy, mb.mismatched).Data, refK)
	if n := t.s.Ranks(); n > 1 {
		sum, err := t.s.Sum(ctx, kl)
		if err != nil {
			return 0, err
		}
		kl = sum / float64(n)
	}
	return Clamp(kl), nil
}

// result is one micro-batch's loss and per-sample numbers.
type result struct {
	loss                   *tensor.Tensor
	kl                     float64
	desirable, undesirable []float32
}

// forward computes the policy's KTO loss on the matched half of mb,
// divided by norm samples.
func (t *Trainer) forward(tp *tensor.Tape, mb microBatch, refM []float32, kl float64, norm int) result {
	pol := seqLogProbs(tp, t.policy, mb.matched)
	loss, d, u := Loss(tp, t.cfg.Loss, pol, refM, mb.desirable, kl, norm)
	return result{loss: loss, kl: kl, desirable: d, undesirable: u}
}

// evaluate returns the KTO loss, the KL estimate and the reward statistics
// on the eval samples, in micro-batches as in training (each rank
// evaluates the whole set, so the KL is this process's).
func (t *Trainer) evaluate() map[string]float64 {
	var st stats
	mbs := t.cfg.Train.MicroBatchSize
	for i := 0; i < len(t.eval); i += mbs {
		us := t.eval[i:min(i+mbs, len(t.eval))]
		mb := t.collate(us)
		refM, refK := t.refLogProbs(mb)
		kl := Clamp(KL(seqLogProbs(nil, t.policy, mb.mismatched).Data, refK))
		st.add(t.forward(nil, mb, refM, kl, len(t.eval)))
	}
	m := st.metrics()
	m["loss"] = st.loss
	return m
}

// stats accumulates micro-batch results.
type stats struct {
	loss, kl               float64
	micro                  int
	desirable, undesirable []float32
}

func (s *stats) add(r result) {
	s.loss += float64(r.loss.Item())
	s.kl += r.kl
	s.micro++
	s.desirable = append(s.desirable, r.desirable...)
	s.undesirable = append(s.undesirable, r.undesirable...)
}

// metrics returns the mean implicit rewards β·(log π − log π_ref) of the
// desirable and undesirable samples (OpenRLHF's chosen_reward and
// reject_reward), their difference, and the mean reference point.
func (s *stats) metrics() map[string]float64 {
	c, r := mean(s.desirable), mean(s.undesirable)
	return map[string]float64{"chosen_reward": c, "reject_reward": r, "margin": c - r, "kl": s.kl / float64(max(s.micro, 1))}
}

func mean(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s / float64(max(len(x), 1))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
