package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// Options are what a Session needs besides its Config.
type Options struct {
	Name       string    // the trainer, e.g. "sft" (log and plot titles)
	Params     nn.Params // what the optimizer updates
	Model      Model     // what checkpoints and the final output store
	NumSamples int       // size of the training set (samples, or pairs)
	// TrainerConfig is the trainer's full configuration; it is saved in
	// every checkpoint and compared on resume.
	TrainerConfig any
	// Console receives the progress bar and a text log (nil: discarded);
	// TTY redraws the bar in place.
	Console io.Writer
	TTY     bool
	// Plots are the metrics drawn into <output_dir>/<key>.png at the end.
	Plots []string
	// Comm makes the run data-parallel over its ranks (nil: this process
	// alone): each rank runs its share of every step's micro-batches and
	// a zero.Engine shards the training state by Config.ZeroStage. Rank 0
	// writes the run's outputs and the final model; every rank writes its
	// shard of each checkpoint.
	Comm collective.Comm
	// Claimed is the run folder when the caller has claimed it already
	// (rank 0 of a local data-parallel run claims it before it starts the
	// other ranks, whose logs go into it); nil: the session claims it.
	Claimed *RunDir
	// Recompute turns on gradient checkpointing in the data-parallel
	// engine's block runner (one process alone sets model.Recompute on
	// the model itself).
	Recompute bool
}

// Session is one offline run's plumbing, put together from the parts
// every trainer shares: the optimizer behind a StepGuard, the schedule
// (Plan), the seeded data stream, the step counter, the Outputs and
// checkpoints (CheckpointRule). A trainer gives Run its step through
// Session.Loop. Not safe for concurrent use.
type Session struct {
	cfg       Config
	opts      Options
	opt       *optim.AdamW // one process alone (nil when data-parallel)
	guard     StepGuard    // counts the skipped steps
	optimizer *Optimizer
	dp        *dataParallel // nil in one process
	sched     optim.Schedule
	sampler   *data.Sampler
	rng       *rand.PCG
	cfgJSON   json.RawMessage
	extra     json.RawMessage

	step, stepsPerEpoch, total int
	lastSaved                  int

	// Log is the run's structured log: JSON lines in <output_dir>/train.log
	// and text on the console.
	Log *slog.Logger
	// BeforeFinish, when set, runs once the last step is done, before the
	// final checkpoint and model are written (a memory report reads the
	// training's peak there).
	BeforeFinish func()
	out          *Outputs
	resumed      string
}

// NewSession validates cfg, builds the optimizer and the data stream,
// claims the run folder (ClaimRunDir: refused when it is in use or holds
// an earlier run, unless resuming or overwriting), resumes from the
// latest checkpoint when cfg.Ckpt.LoadEnable is set and one exists, and
// opens the run's outputs.
func NewSession(cfg Config, o Options) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, opts: o, lastSaved: -1}
	if err := s.plan(); err != nil {
		return nil, err
	}
	var err error
	s.guard = StepGuard{MaxNorm: cfg.Optim.MaxNorm, Limit: cfg.MaxNonFinite}
	s.sampler = data.NewSampler(o.NumSamples, cfg.Seed, true)
	s.rng = rand.NewPCG(cfg.Seed, 0x5eed)
	if s.cfgJSON, err = json.Marshal(o.TrainerConfig); err != nil {
		return nil, fmt.Errorf("train: config: %w", err)
	}
	if err := s.openOutputs(); err != nil {
		return nil, err
	}
	s.Log = s.out.Log
	if err := s.openStepper(); err != nil {
		s.out.Close()
		return nil, err
	}
	if a := o.Model.Adapters; a != nil {
		s.Log.Info("lora", "rank", a.Config.Rank, "alpha", a.Config.Alpha, "modules", strings.Join(a.Modules(), ","),
			"adapted_maps", len(a.Targets), "trainable", o.Params.Count(), "of", o.Model.Module.Params().Count()+o.Params.Count()-a.Saved.Count())
	}
	if cfg.Ckpt.LoadEnable {
		if err := s.resume(); err != nil {
			s.out.Close()
			return nil, err
		}
	}
	if err := s.out.Start(cfg.Logger.TensorboardDir, s.resumed != "", s.step, s.total); err != nil {
		s.out.Close()
		return nil, err
	}
	return s, nil
}

// plan derives the step counts and the learning-rate schedule.
func (s *Session) plan() error {
	c := s.cfg
	if n := s.ranks(); c.Accumulation()%n != 0 {
		return fmt.Errorf("train: a step's %d micro-batches (train.batch_size %d / train.micro_batch_size %d) do not split evenly over %d data-parallel ranks",
			c.Accumulation(), c.BatchSize, c.MicroBatchSize, n)
	}
	s.stepsPerEpoch = s.opts.NumSamples / c.BatchSize
	if s.stepsPerEpoch == 0 {
		return fmt.Errorf("train: %d training samples are fewer than one batch (train.batch_size %d)", s.opts.NumSamples, c.BatchSize)
	}
	s.total = c.MaxEpochs * s.stepsPerEpoch
	if c.MaxSteps > 0 {
		s.total = c.MaxSteps
	}
	s.sched = Plan(c.Optim, s.total)
	return s.sched.Validate()
}

// resume restores the latest checkpoint that loads, if any: one that does
// not (truncated, damaged) is skipped with a warning for the one before.
func (s *Session) resume() error {
	dirs, err := Checkpoints(s.cfg.CheckpointDir())
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		s.Log.Info("no checkpoint to resume from; starting fresh", "path", s.cfg.CheckpointDir())
		return nil
	}
	var first error
	for _, dir := range dirs {
		err := s.restore(dir)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
		s.Log.Warn("checkpoint does not load; trying the one before", "dir", dir, "err", err)
	}
	return fmt.Errorf("train: no checkpoint in %s loads: %w", s.cfg.CheckpointDir(), first)
}

// restore loads one checkpoint folder.
func (s *Session) restore(dir string) error {
	st, err := s.optimizer.Restore(dir)
	s.opt, s.dp = s.optimizer.adam, s.optimizer.dp // a sharded checkpoint moves one process onto the engine
	if err != nil {
		return err
	}
	if err := s.sampler.Seek(st.Cursor); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := s.rng.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("checkpoint %s: rng: %w", dir, err)
	}
	s.step, s.guard.Skips = st.Step, Skips{Run: st.NonFiniteRun, Total: st.NonFiniteTotal}
	s.extra, s.resumed, s.lastSaved = st.Extra, dir, st.Step
	if diff := configDiff(st.Config, s.cfgJSON); diff != "" {
		s.Log.Warn("resuming with a different configuration than the checkpoint's", "changed", diff)
	}
	s.Log.Info("resumed from checkpoint", "dir", dir, "step", st.Step, "epoch", st.Cursor.Epoch)
	return nil
}

// Resumed returns the checkpoint folder the run resumed from ("" if none)
// and the trainer-specific state saved with it.
func (s *Session) Resumed() (string, json.RawMessage) { return s.resumed, s.extra }

// SetExtra sets the trainer-specific state saved with later checkpoints.
func (s *Session) SetExtra(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("train: extra state: %w", err)
	}
	s.extra = b
	return nil
}

// Step is the number of optimizer steps done; Total the number planned.
func (s *Session) Step() int { return s.step }

// Total is the number of optimizer steps of the run.
func (s *Session) Total() int { return s.total }

// StepsPerEpoch is the number of optimizer steps in one pass over the data.
func (s *Session) StepsPerEpoch() int { return s.stepsPerEpoch }

// Epoch is the current (0-based) epoch of the data stream.
func (s *Session) Epoch() int { return s.sampler.Cursor().Epoch }

// Rand returns a generator drawn from the run's seeded, checkpointed PCG.
func (s *Session) Rand() *rand.Rand { return rand.New(s.rng) }

// Done reports whether all planned steps are done.
func (s *Session) Done() bool { return s.step >= s.total }

// NextBatch returns the dataset indices of this rank's micro-batches of
// the next optimizer step: the step's Accumulation micro-batches of
// MicroBatchSize each (every rank draws the same), split into equal
// contiguous shares by rank (all of them in one process).
func (s *Session) NextBatch() [][]int {
	idx := s.sampler.Next(s.cfg.BatchSize)
	micro := make([][]int, 0, s.cfg.Accumulation())
	for i := 0; i < len(idx); i += s.cfg.MicroBatchSize {
		micro = append(micro, idx[i:i+s.cfg.MicroBatchSize])
	}
	per := len(micro) / s.ranks()
	r := s.Rank()
	return micro[r*per : (r+1)*per]
}

// Update finishes the optimizer step whose gradients the trainer has
// accumulated into the parameters: when loss or the gradient norm is NaN
// or infinite it applies nothing and counts the step (failing with
// ErrNonFinite after MaxNonFinite in a row); otherwise it clips the global
// gradient norm to MaxNorm and takes an AdamW step at the scheduled
// learning rate. Gradients are zeroed either way.
//
// loss is this rank's share of the step's loss (each micro-batch's loss
// normalised by the whole step's count); Update.Loss is the step's loss,
// summed over the ranks.
func (s *Session) Update(ctx context.Context, loss float64) (Update, error) {
	u, err := s.optimizer.Apply(ctx, loss, s.sched.LR(s.step))
	if err != nil {
		return u, fmt.Errorf("train: step %d: %w", s.step+1, err)
	}
	loss = u.Loss
	err = s.guard.Skips.Count(u.Skipped, s.guard.Limit)
	s.step++
	if u.Skipped {
		s.Log.Warn("non-finite step skipped", "step", s.step, "loss", loss, "grad_norm", u.GradNorm,
			"in_a_row", s.guard.Skips.Run, "limit", s.cfg.MaxNonFinite)
	}
	if err != nil {
		return u, fmt.Errorf("train: step %d: %w (%d in all); lower --adam.lr or check the data", s.step, err, s.guard.Skips.Total)
	}
	return u, nil
}

// NonFinite returns the current run of consecutive non-finite steps and
// their total.
func (s *Session) NonFinite() (run, total int) { return s.guard.Skips.Run, s.guard.Skips.Total }

// LogTrain records the metrics of the step just done (every LoggingSteps
// steps to metrics.jsonl and TensorBoard; always to the progress bar).
// tokens is how many tokens the step processed; headline is the progress
// bar's text.
func (s *Session) LogTrain(values map[string]float64, tokens int, headline string) error {
	s.out.Progress(s.step, tokens, headline)
	if s.step%s.cfg.Logger.LoggingSteps != 0 && !s.Done() {
		return nil
	}
	if err := s.reduceMetrics(values); err != nil {
		return err
	}
	values["epoch"] = float64(s.Epoch())
	values["nonfinite_total"] = float64(s.guard.Skips.Total)
	return s.out.LogTrain(s.step, values)
}

// EvalDue reports whether the trainer should evaluate after this step:
// every Eval.Steps steps, at the end of each epoch when Eval.Steps is −1,
// and at the end of the run.
func (s *Session) EvalDue() bool {
	if s.Done() {
		return true
	}
	if s.cfg.Eval.Steps > 0 {
		return s.step%s.cfg.Eval.Steps == 0
	}
	return s.step%s.stepsPerEpoch == 0
}

// LogEval records evaluation metrics at the current step.
func (s *Session) LogEval(values map[string]float64) error {
	s.Log.Info("eval", flatten(values)...)
	return s.out.LogEval(s.step, values)
}

func flatten(values map[string]float64) []any {
	var out []any
	for _, k := range sortedKeys(values) {
		out = append(out, k, values[k])
	}
	return out
}

// EndStep writes a checkpoint when one is due (every SaveSteps steps, or
// when stopping) and stops the run when ctx is cancelled (returning its
// error) or StopAtStep is reached (ErrStopped).
func (s *Session) EndStep(ctx context.Context) error {
	rule := CheckpointRule{SaveSteps: s.cfg.Ckpt.SaveSteps, StopAtStep: s.cfg.StopAtStep,
		Dir: s.cfg.CheckpointDir(), Trainer: "train", Unit: "step"}
	if s.dp != nil {
		var err error
		if ctx, err = s.dp.agreeStop(ctx); err != nil {
			return fmt.Errorf("train: step %d: %w", s.step, err)
		}
	}
	return rule.After(ctx, s.step, s.Checkpoint)
}

// Checkpoint saves the current state under CheckpointDir (once per step).
func (s *Session) Checkpoint() error {
	if s.lastSaved == s.step {
		return nil
	}
	rng, err := s.rng.MarshalBinary()
	if err != nil {
		return fmt.Errorf("train: rng: %w", err)
	}
	st := State{Step: s.step, Cursor: s.sampler.Cursor(), RNG: rng, NonFiniteRun: s.guard.Skips.Run,
		NonFiniteTotal: s.guard.Skips.Total, Config: s.cfgJSON, Extra: s.extra}
	start := time.Now()
	dir, err := s.optimizer.Save(s.cfg.CheckpointDir(), st, s.cfg.Ckpt.MaxNum)
	if err != nil {
		return err
	}
	s.lastSaved = s.step
	s.Log.Info("checkpoint saved", "dir", dir, "step", s.step, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Finish ends the run: a last checkpoint when checkpointing is on, the
// final model in Ckpt.OutputDir (rank 0; every rank takes part in
// gathering it), the plots, and closed outputs.
func (s *Session) Finish() error {
	s.Finishing()
	s.out.EndProgress()
	var errs []error
	if s.cfg.Ckpt.SaveSteps > 0 {
		errs = append(errs, s.Checkpoint())
	}
	if err := s.saveModel(); err != nil {
		errs = append(errs, err)
	} else if s.Rank() == 0 {
		s.Log.Info("model saved", "dir", s.cfg.Ckpt.OutputDir, "steps", s.step, "nonfinite_skipped", s.guard.Skips.Total)
	}
	errs = append(errs, s.out.Finish(s.opts.Plots, nil))
	return errors.Join(errs...)
}

// Finishing marks the end of training, before anything is written at the
// end of the run: it runs BeforeFinish once. Finish calls it; a trainer
// whose Finish writes more first (samples) calls it before that.
func (s *Session) Finishing() {
	if f := s.BeforeFinish; f != nil {
		s.BeforeFinish = nil
		f()
	}
}

// saveModel writes the final model from rank 0, the parameters gathered
// there first (ZeRO stage 3; the other ranks take part and keep nothing).
func (s *Session) saveModel() error {
	release, err := s.optimizer.GatherOn(context.Background(), 0)
	if err != nil {
		return fmt.Errorf("train: rank %d: gathering the final model: %w", s.Rank(), err)
	}
	defer release()
	if s.Rank() != 0 {
		return nil
	}
	return SaveModel(s.cfg.Ckpt.OutputDir, s.opts.Model)
}

// Gathered runs f with every parameter whole (ZeRO stage 3 all-gathers
// them around it; every rank must call it): evaluation.
func (s *Session) Gathered(ctx context.Context, f func() error) error {
	release, err := s.optimizer.Gather(ctx)
	if err != nil {
		return fmt.Errorf("train: rank %d: gathering the parameters: %w", s.Rank(), err)
	}
	defer release()
	return f()
}

// GatheredOnRank0 runs f on rank 0 with every parameter whole there (the
// other ranks take part in ZeRO stage 3's all-gathers and skip f):
// what rank 0 alone writes, such as samples.
func (s *Session) GatheredOnRank0(ctx context.Context, f func() error) error {
	release, err := s.optimizer.GatherOn(ctx, 0)
	if err != nil {
		return fmt.Errorf("train: rank %d: gathering the parameters: %w", s.Rank(), err)
	}
	defer release()
	if s.Rank() != 0 {
		return nil
	}
	return f()
}

// Close closes the outputs without saving anything (after an error).
func (s *Session) Close() error { return s.out.Close() }

// Metrics returns the rows logged so far (also after Finish or Close).
func (s *Session) Metrics() []Row { return s.out.Rows() }

// Loop returns the run loop of a trainer whose optimizer steps are step
// (which calls Update and LogTrain) and whose evaluation is eval (nil:
// none): an evaluation before the first step of a fresh run and whenever
// EvalDue, EndStep after every step, Finish at the end. Pass it to Run;
// a trainer with more to write at the end wraps Finish.
func (s *Session) Loop(step func(ctx context.Context) error, eval func() map[string]float64) Loop {
	l := Loop{Fresh: s.step == 0, Done: s.Done, Step: step, End: s.EndStep, Close: s.Close,
		Finish: func(context.Context) error { return s.Finish() }}
	if eval != nil {
		l.Eval = func(ctx context.Context) error {
			return s.Gathered(ctx, func() error { return s.LogEval(eval()) })
		}
		l.EvalDue = s.EvalDue
	}
	return l
}
