// Package ppo is gorlhf's RL loop (OpenRLHF's train_ppo_ray and its
// PPOTrainer): PPO with a critic (GAE) and the critic-free estimators
// (REINFORCE++, REINFORCE++-baseline, RLOO, GRPO, Dr. GRPO), driven by one
// controller over five roles (package role): rollout, actor, critic,
// reference and reward.
//
// One iteration reads top to bottom in Trainer.Step:
//
//  1. take rollout.batch_size prompts from the shuffled dataset
//  2. generate n samples per prompt with the published policy
//  3. score them (reward model, rule grader or remote server)
//  4. log-probs under the actor (π_old) and the reference, the critic's values
//  5. rewards → length penalties → KL shaping → advantages and returns (package rl)
//  6. PPO epochs over shuffled optimizer steps of micro-batches, critic and actor
//  7. publish the actor's weights to the rollout engine (version + 1)
//  8. adapt the KL coefficient; log, evaluate, checkpoint
//
// With dynamic filtering (DAPO, Algo.DynamicFilter) steps 1–3 repeat:
// each round's groups are scored and those whose samples all score the
// same are dropped, until rollout.batch_size groups are kept or the round
// bound is reached (filter.go).
//
// The math lives in package rl, the models behind the role interfaces;
// this package only sequences them, so the same Step drives roles in this
// process (role/inproc) or, later, elsewhere.
package ppo

import (
	"context"
	"errors"
	"fmt"
	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/env"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
)

// ErrStopped is returned (wrapped) when a run stops at Train.StopAtStep
// after writing its checkpoint.
var ErrStopped = train.ErrStopped

// Runtime is what the driver needs besides its configuration and its
// roles: the tokenizer and template prompts are encoded with, where
// progress goes, and the environments of multi-turn rollouts.
type Runtime struct {
	Tok      tokenizer.Tokenizer // encodes prompts, decodes responses
	Template *chattmpl.Template  // renders chat prompts; nil when none
	Console  io.Writer           // progress bar and text log; nil = none
	TTY      bool                // redraw the progress bar in place
	// Agent makes the environments of multi-turn rollouts; nil means the
	// built-in one Config.Agent names (env.Open), if any. Set it to
	// train with an environment of your own (and Config.Agent.Env to its
	// name, for the logs).
	Agent env.Factory
	// MaxPositions is the policy's position limit (the rollout engine's,
	// e.g. inproc.Roles.MaxPositions): an episode ends before its tokens
	// would pass it; 0 = unknown, then data.max_len alone bounds an
	// episode.
	MaxPositions int
	// Overlap asks the reward, reference, critic (and actor) for a
	// batch's scores, log-probs and values at the same time instead of
	// one after another: what OpenRLHF does when they are separate Ray
	// actors. Set it when they live in separate processes; the results
	// are the same either way, only the wall time differs.
	Overlap bool
	// StopIDs end a response (load.Bundle.StopIDs); nil means the
	// tokenizer's EOS.
	StopIDs []int32
	// RunDir is the run folder when the caller claimed it already
	// (Config.Claim; placement does, before its launcher writes workers/
	// into it); New takes it over. nil: New claims it.
	RunDir *train.RunDir
	// NoBOS leaves prompts without BOS (load.Bundle.AddBOS false); by
	// default they start with the tokenizer's BOS when it has one.
	NoBOS bool
	// SyncWeights gives the rollout engine the actor's weights as
	// version; nil means Actor.Weights then Rollout.LoadWeights. Placed
	// roles set it so the bytes go from the actor's worker straight to
	// the engine's (remote.SyncWeights).
	SyncWeights func(ctx context.Context, actor role.Actor, rollout role.Rollout, version int64) error
}

// Trainer runs one RL run. Not safe for concurrent use.
type Trainer struct {
	cfg      Config
	roles    role.Set
	rt       Runtime
	eos      []int32
	prompts  []Prompt
	eval     []Prompt
	sampler  *data.Sampler
	agent    env.Factory // multi-turn episodes; nil = single-turn
	rng      *rand.PCG   // sampling seeds and shuffles; checkpointed
	kl       rl.KLController
	version  int64 // weights published to the rollout engine
	iter     int   // iterations done
	total    int   // iterations planned
	actor    schedule
	critic   schedule
	log      *slog.Logger
	out      *train.Outputs
	resumed  string
	firstRun []sampleRow // the first iteration's samples, for the report
	lastRun  []sampleRow
	evals    []EvalResult // the first and the latest evaluation
	async    *asyncRun    // the generation queue; nil = synchronous
}

// schedule is one trainable role's learning-rate schedule, step count
// and skipped (non-finite) steps.
type schedule struct {
	sched optim.Schedule
	steps int // optimizer steps taken (the schedule's position)
	skips train.Skips
}

// New reads the prompts, checks the roles against the configuration,
// claims the run folder (rt.RunDir, else Config.Claim: refused when in
// use or holding an earlier run, unless resuming or overwriting), opens
// the run's outputs and resumes from the latest checkpoint when
// Ckpt.LoadEnable is set.
func New(ctx context.Context, cfg Config, roles role.Set, rt Runtime) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkRoles(cfg, roles); err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, roles: roles, rt: rt, kl: cfg.Algo.KL.Controller(),
		rng: rand.NewPCG(cfg.Train.Seed, 0x9e3779b97f4a7c15)}
	if eos := rt.Tok.Specials().EOS; eos >= 0 {
		t.eos = []int32{int32(eos)}
	}
	if rt.StopIDs != nil {
		t.eos = rt.StopIDs
	}
	if err := t.openAgent(); err != nil {
		return nil, err
	}
	reports, err := t.readPrompts()
	if err != nil {
		return nil, err
	}
	t.plan()
	if cfg.Train.Async.Enable {
		t.async = &asyncRun{}
	}
	dir := rt.RunDir
	if dir == nil {
		if dir, err = train.ClaimRunDir(cfg.Claim()); err != nil {
			return nil, err
		}
	}
	if t.out, err = train.OpenOutputs(dir, "ppo", rt.Console, rt.TTY); err != nil {
		return nil, err
	}
	t.log = t.out.Log
	if b := t.tokenBudget(); b < cfg.Data.MaxLen {
		t.log.Warn(fmt.Sprintf("%s %d is more than the policy's %d positions (max_position_embeddings): prompts over %d tokens are skipped and responses end at %d tokens in all",
			cfg.flag(&cfg.Data.MaxLen), cfg.Data.MaxLen, b, b-cfg.Rollout.MaxNewTokens, b))
	}
	for _, r := range reports {
		t.log.Info("prompts", "report", r.String())
	}
	if cfg.Ckpt.LoadEnable {
		if err := t.resume(ctx); err != nil {
			t.out.Close()
			return nil, err
		}
	}
	if err := t.out.Start(cfg.Logger.TensorboardDir, t.resumed != "", t.iter, t.total); err != nil {
		t.out.Close()
		return nil, err
	}
	t.log.Info("plan", "iterations", t.total, "prompts", len(t.prompts), "samples_per_iteration", cfg.SamplesPerIteration(),
		"optimizer_steps_per_iteration", t.stepsPerIteration(), "estimator", cfg.Algo.Advantage.Estimator,
		"critic", roles.Critic != nil, "reference", roles.Reference != nil, "start_iteration", t.iter)
	return t, nil
}

// checkRoles reports missing roles.
func checkRoles(cfg Config, r role.Set) error {
	var errs []error
	if r.Actor == nil || r.Rollout == nil {
		errs = append(errs, errors.New("ppo: the actor and rollout roles are required"))
	}
	if r.Reward == nil && !cfg.Agent.Enabled() {
		errs = append(errs, fmt.Errorf("ppo: a reward role is required (or an environment, %s, that gives rewards)", cfgflag.Flag(&cfg, &cfg.Agent.Env)))
	}
	if cfg.NeedsCritic() && r.Critic == nil {
		errs = append(errs, fmt.Errorf("ppo: estimator %s needs a critic", cfg.Algo.Advantage.Estimator))
	}
	if cfg.NeedsReference() && r.Reference == nil {
		errs = append(errs, fmt.Errorf("ppo: a KL penalty (init_coef %g) needs a reference model", cfg.Algo.KL.InitCoef))
	}
	return errors.Join(errs...)
}

// readPrompts reads the training and evaluation prompts.
func (t *Trainer) readPrompts() ([]*data.Report, error) {
	budget := t.tokenBudget() - t.cfg.Rollout.MaxNewTokens
	if budget < 1 {
		return nil, fmt.Errorf("ppo: %s %d leaves no room for a prompt in the policy's %d positions (max_position_embeddings)",
			t.cfg.flag(&t.cfg.Rollout.MaxNewTokens), t.cfg.Rollout.MaxNewTokens, t.rt.MaxPositions)
	}
	enc, err := newPromptEncoder(t.rt, t.cfg.Data, budget)
	if err != nil {
		return nil, err
	}
	var reps []*data.Report
	prompts, rep, err := enc.read(t.cfg.Data.PromptDataset, t.cfg.Data.MaxSamples)
	if err != nil {
		return nil, fmt.Errorf("ppo: prompts: %w", err)
	}
	if len(prompts) < t.cfg.Rollout.BatchSize {
		return nil, fmt.Errorf("ppo: %d usable prompts are fewer than one rollout batch (%d)", len(prompts), t.cfg.Rollout.BatchSize)
	}
	t.prompts, reps = prompts, append(reps, rep)
	if t.cfg.Eval.Dataset != "" {
		if t.eval, rep, err = enc.read(t.cfg.Eval.Dataset, t.cfg.Eval.MaxSamples); err != nil {
			return nil, fmt.Errorf("ppo: eval prompts: %w", err)
		}
		reps = append(reps, rep)
	}
	t.sampler = data.NewSampler(len(t.prompts), t.cfg.Train.Seed, true)
	return reps, nil
}

// plan derives the number of iterations and the two LR schedules.
func (t *Trainer) plan() {
	c := t.cfg
	t.total = c.Train.NumEpisodes * (len(t.prompts) / c.Rollout.BatchSize)
	if c.Train.MaxIterations > 0 {
		t.total = c.Train.MaxIterations
	}
	steps := t.total * t.stepsPerIteration()
	frozen := min(c.Critic.FreezingSteps, t.total) * t.stepsPerIteration()
	t.actor = schedule{sched: train.Plan(c.Actor.Optim, steps-frozen)}
	t.critic = schedule{sched: train.Plan(c.Critic.Optim, steps)}
}

// stepsPerIteration is the optimizer steps of one role per iteration.
func (t *Trainer) stepsPerIteration() int {
	return t.cfg.Train.MaxEpochs * t.cfg.SamplesPerIteration() / t.cfg.Train.BatchSize
}

// Iteration is the number of iterations done; Total the number planned.
func (t *Trainer) Iteration() int { return t.iter }

// Total is the number of iterations of the run.
func (t *Trainer) Total() int { return t.total }

// Version is the weight version last published to the rollout engine.
func (t *Trainer) Version() int64 { return t.version }

// KLCoef is the current KL coefficient β.
func (t *Trainer) KLCoef() float64 { return t.kl.Coef }

// Close closes the run's outputs without writing the final models; Run
// does it itself, so call it only for a trainer that never runs to the end.
func (t *Trainer) Close() error { return t.close() }

// close stops the async producer, if any, and closes the outputs.
func (t *Trainer) close() error {
	t.stopProducer()
	return t.out.Close()
}

// Metrics returns every row logged so far.
func (t *Trainer) Metrics() []train.Row { return t.out.Rows() }

// Run evaluates, then runs iterations until the planned number is done,
// ctx is cancelled or Train.StopAtStep is reached (ErrStopped, after a
// checkpoint), then writes the final models and the run report.
func (t *Trainer) Run(ctx context.Context) error {
	return train.Run(ctx, train.Loop{
		Fresh:   t.iter == 0,
		Done:    func() bool { return t.iter >= t.total },
		Step:    func(ctx context.Context) error { _, err := t.Step(ctx); return err },
		Eval:    t.evaluate,
		EvalDue: func() bool { return t.cfg.Eval.Steps > 0 && t.iter%t.cfg.Eval.Steps == 0 && t.iter < t.total },
		End:     t.endIteration,
		Finish:  t.finish,
		Close:   t.close,
	})
}

// Step runs one iteration and returns its metrics (also logged).
func (t *Trainer) Step(ctx context.Context) (map[string]float64, error) {
	m := newPhaseTimer()
	// 1–2) this iteration's prompts, n samples each from the published
	//      policy (with dynamic filtering: scored, uniform groups dropped,
	//      more prompts sampled until the batch is full); async: the
	//      queued batch, generated while the iterations before trained
	var (
		roll   *rollout
		filter *filterStats
		async  *asyncStats
		err    error
	)
	if t.async != nil {
		roll, filter, async, err = t.collectAsync(ctx, m)
	} else {
		roll, filter, err = t.collectBatch(ctx, m)
	}
	if err != nil {
		return nil, err
	}
	if roll.seqs.Len() == 0 {
		if _, err := t.drain(); err != nil { // async: an idle engine for eval and checkpoint
			return nil, err
		}
		return t.skipIteration(filter, m)
	}
	// 3–5) rewards, log-probs, values, KL shaping, advantages
	exp, err := t.makeExperience(ctx, roll, m)
	if err != nil {
		return nil, err
	}
	// 6) PPO epochs: critic and actor optimizer steps
	upd, err := t.update(ctx, exp, roll, m)
	if err != nil {
		return nil, err
	}
	// 7) publish the new policy to the rollout engine (async: once the
	//    batches being generated with the current one are done)
	if async != nil {
		if async.waitPublish, err = t.drain(); err != nil {
			return nil, err
		}
	}
	if upd.actorUpdated {
		if err := t.publish(ctx, m); err != nil {
			return nil, err
		}
	}
	// 8) adapt β to the KL just measured
	t.kl = t.kl.Update(exp.klMean, roll.seqs.Len())
	t.iter++
	metrics := t.iterationMetrics(roll, exp, upd, m)
	if filter != nil {
		filter.metrics(metrics)
	}
	if async != nil {
		async.metrics(metrics, t.async.regenerated)
	}
	t.keepSamples(roll, exp)
	t.out.Progress(t.iter, exp.tokens, headline(metrics))
	if t.iter%t.cfg.Logger.LoggingSteps != 0 && t.iter != t.total {
		return metrics, nil
	}
	return metrics, t.out.LogTrain(t.iter, metrics)
}

// skipIteration ends an iteration in which dynamic filtering kept no
// group in its rounds: nothing to train on, so the policy (and its
// version) and β stay as they are; the filtering counts are logged.
func (t *Trainer) skipIteration(f *filterStats, m *phaseTimer) (map[string]float64, error) {
	t.iter++
	metrics := map[string]float64{"kl_coef": t.kl.Coef, "weight_version": float64(t.version), "skipped_iteration": 1}
	f.metrics(metrics)
	for name, s := range m.secs {
		metrics["time_"+name] = s
	}
	metrics["time_iteration"] = time.Since(m.start).Seconds()
	t.log.Warn("dynamic filtering kept no group; iteration skipped", "iteration", t.iter, "rounds", f.rounds)
	t.out.Progress(t.iter, 0, "no group kept")
	return metrics, t.out.LogTrain(t.iter, metrics)
}

// publish copies the actor's weights to the rollout engine as version+1.
func (t *Trainer) publish(ctx context.Context, m *phaseTimer) error {
	defer m.phase("weight_sync")()
	v := t.version + 1
	if t.rt.SyncWeights != nil {
		if err := t.rt.SyncWeights(ctx, t.roles.Actor, t.roles.Rollout, v); err != nil {
			return fmt.Errorf("ppo: publish weights: %w", err)
		}
		t.version = v
		return nil
	}
	w, err := t.roles.Actor.Weights(ctx)
	if err != nil {
		return fmt.Errorf("ppo: actor weights: %w", err)
	}
	w.Version = v
	if err := t.roles.Rollout.LoadWeights(ctx, w); err != nil {
		return fmt.Errorf("ppo: publish weights: %w", err)
	}
	t.version = w.Version
	return nil
}

// endIteration checkpoints when due and stops on request (the rule every
// trainer follows); a checkpoint after a cancellation is still written.
func (t *Trainer) endIteration(ctx context.Context) error {
	rule := train.CheckpointRule{SaveSteps: t.cfg.Ckpt.SaveSteps, StopAtStep: t.cfg.Train.StopAtStep,
		Dir: t.cfg.CheckpointDir(), Trainer: "ppo", Unit: "iteration"}
	return rule.After(ctx, t.iter, func() error { return t.checkpoint(context.WithoutCancel(ctx)) })
}

// finish evaluates the final policy and writes models, plots and report.
func (t *Trainer) finish(ctx context.Context) error {
	t.stopProducer()
	var errs []error
	errs = append(errs, t.evaluate(ctx))
	if t.cfg.Ckpt.SaveSteps > 0 {
		errs = append(errs, t.checkpoint(ctx))
	}
	errs = append(errs, t.export(ctx))
	errs = append(errs, t.finishOutputs())
	t.log.Info("done", "iterations", t.iter, "output_dir", t.cfg.Ckpt.OutputDir)
	return errors.Join(errs...)
}

// export writes the final actor (and critic) model folders.
func (t *Trainer) export(ctx context.Context) error {
	dir := t.cfg.Ckpt.OutputDir
	if err := t.roles.Actor.Export(ctx, role.ExportRequest{Dir: dir}); err != nil {
		return fmt.Errorf("ppo: save actor: %w", err)
	}
	t.log.Info("actor saved", "dir", dir)
	if t.roles.Critic != nil {
		cdir := criticDir(dir)
		if err := t.roles.Critic.Export(ctx, role.ExportRequest{Dir: cdir}); err != nil {
			return fmt.Errorf("ppo: save critic: %w", err)
		}
		t.log.Info("critic saved", "dir", cdir)
	}
	return nil
}

// phaseTimer measures the wall time of each phase of an iteration.
type phaseTimer struct {
	start time.Time
	mu    sync.Mutex // phases of an overlapped experience step end concurrently
	secs  map[string]float64
}

func newPhaseTimer() *phaseTimer { return &phaseTimer{start: time.Now(), secs: map[string]float64{}} }

// phase starts timing name; call the returned function to stop.
func (p *phaseTimer) phase(name string) func() {
	t0 := time.Now()
	return func() {
		d := time.Since(t0).Seconds()
		p.mu.Lock()
		p.secs[name] += d
		p.mu.Unlock()
	}
}
