package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// ErrStopped is returned (wrapped) when a run stops at Config.StopAtStep
// after writing its checkpoint.
var ErrStopped = errors.New("stopped at the requested step")

// ErrNonFinite is returned (wrapped) when too many consecutive steps had a
// NaN or infinite loss or gradient.
var ErrNonFinite = errors.New("non-finite loss or gradient")

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
}

// Session is one run's plumbing: optimizer, schedule, data stream, step
// counter, non-finite bookkeeping, outputs and checkpoints. Trainers call
// its methods in the order of the loop in the package doc. Not safe for
// concurrent use.
type Session struct {
	cfg     Config
	opts    Options
	opt     *optim.AdamW
	sched   optim.Schedule
	sampler *data.Sampler
	rng     *rand.PCG
	cfgJSON json.RawMessage
	extra   json.RawMessage

	step, stepsPerEpoch, total   int
	nonFiniteRun, nonFiniteTotal int
	lastSaved                    int

	// Log is the run's structured log: JSON lines in <output_dir>/train.log
	// and text on the console.
	Log        *slog.Logger
	metrics    *Metrics
	closedRows []Row // the rows, once metrics is closed
	progress   *Progress
	logFile    *os.File
	resumed    string
}

// NewSession validates cfg, builds the optimizer and the data stream,
// resumes from the latest checkpoint when cfg.Ckpt.LoadEnable is set and
// one exists, and opens the run's outputs.
func NewSession(cfg Config, o Options) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, opts: o, lastSaved: -1}
	if err := s.plan(); err != nil {
		return nil, err
	}
	var err error
	if s.opt, err = optim.New(o.Params, cfg.Optim.Adam); err != nil {
		return nil, err
	}
	s.sampler = data.NewSampler(o.NumSamples, cfg.Seed, true)
	s.rng = rand.NewPCG(cfg.Seed, 0x5eed)
	if s.cfgJSON, err = json.Marshal(o.TrainerConfig); err != nil {
		return nil, fmt.Errorf("train: config: %w", err)
	}
	if err := s.openLog(); err != nil {
		return nil, err
	}
	if cfg.Ckpt.LoadEnable {
		if err := s.resume(); err != nil {
			s.logFile.Close()
			return nil, err
		}
	}
	keep := -1
	if s.resumed != "" {
		keep = s.step
	}
	tb := cfg.Logger.TensorboardDir
	if tb == "" {
		tb = filepath.Join(cfg.Ckpt.OutputDir, "tensorboard")
	}
	if s.metrics, err = OpenMetrics(cfg.Ckpt.OutputDir, tb, keep); err != nil {
		s.logFile.Close()
		return nil, err
	}
	s.progress = NewProgress(consoleOf(o), o.TTY, s.total, s.step)
	return s, nil
}

// plan derives the step counts and the learning-rate schedule.
func (s *Session) plan() error {
	c := s.cfg
	s.stepsPerEpoch = s.opts.NumSamples / c.BatchSize
	if s.stepsPerEpoch == 0 {
		return fmt.Errorf("train: %d training samples are fewer than one batch (train.batch_size %d)", s.opts.NumSamples, c.BatchSize)
	}
	s.total = c.MaxEpochs * s.stepsPerEpoch
	if c.MaxSteps > 0 {
		s.total = c.MaxSteps
	}
	warmup := int(math.Ceil(c.Optim.WarmupRatio * float64(s.total)))
	s.sched = optim.Schedule{Kind: c.Optim.Scheduler, PeakLR: c.Optim.LR, WarmupSteps: warmup,
		TotalSteps: s.total, MinLRRatio: c.Optim.MinLRRatio}
	return s.sched.Validate()
}

func consoleOf(o Options) io.Writer {
	if o.Console == nil {
		return io.Discard
	}
	return o.Console
}

// openLog opens <output_dir>/train.log (appended to) and the logger that
// writes JSON there and text to the console through the progress bar.
func (s *Session) openLog() error {
	if err := os.MkdirAll(s.cfg.Ckpt.OutputDir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.cfg.Ckpt.OutputDir, "train.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	s.logFile = f
	console := &lateWriter{s: s}
	s.Log = NewRunLogger(f, console, s.opts.Name)
	return nil
}

// lateWriter sends console log lines through the progress bar once it
// exists (before that, straight to the console).
type lateWriter struct{ s *Session }

func (w *lateWriter) Write(b []byte) (int, error) {
	if w.s.progress != nil {
		return w.s.progress.Write(b)
	}
	return consoleOf(w.s.opts).Write(b)
}

// resume restores the latest checkpoint, if any.
func (s *Session) resume() error {
	dir, err := LatestCheckpoint(s.cfg.CheckpointDir())
	if err != nil || dir == "" {
		if err == nil {
			s.Log.Info("no checkpoint to resume from; starting fresh", "path", s.cfg.CheckpointDir())
		}
		return err
	}
	st, err := LoadCheckpoint(dir, s.opts.Params, s.opt)
	if err != nil {
		return err
	}
	if err := s.sampler.Seek(st.Cursor); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := s.rng.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("checkpoint %s: rng: %w", dir, err)
	}
	s.step, s.nonFiniteRun, s.nonFiniteTotal = st.Step, st.NonFiniteRun, st.NonFiniteTotal
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

// NextBatch returns the dataset indices of the next optimizer step, split
// into Accumulation micro-batches of MicroBatchSize each.
func (s *Session) NextBatch() [][]int {
	idx := s.sampler.Next(s.cfg.BatchSize)
	micro := make([][]int, 0, s.cfg.Accumulation())
	for i := 0; i < len(idx); i += s.cfg.MicroBatchSize {
		micro = append(micro, idx[i:i+s.cfg.MicroBatchSize])
	}
	return micro
}

// Update is the outcome of one optimizer step.
type Update struct {
	LR       float64 // learning rate used
	GradNorm float64 // global gradient norm before clipping
	Skipped  bool    // the step was non-finite: no update was applied
}

// Update finishes the optimizer step whose gradients the trainer has
// accumulated into the parameters: when loss or the gradient norm is NaN
// or infinite it applies nothing and counts the step (failing with
// ErrNonFinite after MaxNonFinite in a row); otherwise it clips the global
// gradient norm to MaxNorm and takes an AdamW step at the scheduled
// learning rate. Gradients are zeroed either way.
func (s *Session) Update(loss float64) (Update, error) {
	u := Update{LR: s.sched.LR(s.step), GradNorm: optim.GradNorm(s.opts.Params)}
	defer s.opts.Params.ZeroGrad()
	s.step++
	if !finite(loss) || !finite(u.GradNorm) {
		u.Skipped = true
		s.nonFiniteRun++
		s.nonFiniteTotal++
		s.Log.Warn("non-finite step skipped", "step", s.step, "loss", loss, "grad_norm", u.GradNorm,
			"in_a_row", s.nonFiniteRun, "limit", s.cfg.MaxNonFinite)
		if s.nonFiniteRun >= s.cfg.MaxNonFinite {
			return u, fmt.Errorf("train: step %d: %w in %d consecutive steps (%d in all); lower --adam.lr or check the data",
				s.step, ErrNonFinite, s.nonFiniteRun, s.nonFiniteTotal)
		}
		return u, nil
	}
	s.nonFiniteRun = 0
	optim.ClipGradNorm(s.opts.Params, s.cfg.Optim.MaxNorm)
	s.opt.Step(u.LR)
	return u, nil
}

// NonFinite returns the current run of consecutive non-finite steps and
// their total.
func (s *Session) NonFinite() (run, total int) { return s.nonFiniteRun, s.nonFiniteTotal }

// LogTrain records the metrics of the step just done (every LoggingSteps
// steps to metrics.jsonl and TensorBoard; always to the progress bar).
// tokens is how many tokens the step processed; headline is the progress
// bar's text.
func (s *Session) LogTrain(values map[string]float64, tokens int, headline string) error {
	s.progress.Update(s.step, tokens, headline)
	if s.step%s.cfg.Logger.LoggingSteps != 0 && !s.Done() {
		return nil
	}
	values["epoch"] = float64(s.Epoch())
	values["nonfinite_total"] = float64(s.nonFiniteTotal)
	return s.metrics.Log(Row{Step: s.step, Split: "train", Values: values})
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
	return s.metrics.Log(Row{Step: s.step, Split: "eval", Values: values})
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
	stop := ctx.Err() != nil || (s.cfg.StopAtStep > 0 && s.step >= s.cfg.StopAtStep)
	if s.cfg.Ckpt.SaveSteps > 0 && s.step%s.cfg.Ckpt.SaveSteps == 0 || stop {
		if err := s.Checkpoint(); err != nil {
			return err
		}
	}
	switch {
	case ctx.Err() != nil:
		s.progress.Finish()
		return fmt.Errorf("train: interrupted after step %d (checkpoint saved): %w", s.step, ctx.Err())
	case stop:
		s.progress.Finish()
		return fmt.Errorf("train: step %d: %w (checkpoint saved in %s)", s.step, ErrStopped, s.cfg.CheckpointDir())
	}
	return nil
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
	st := State{Step: s.step, Cursor: s.sampler.Cursor(), RNG: rng, NonFiniteRun: s.nonFiniteRun,
		NonFiniteTotal: s.nonFiniteTotal, Config: s.cfgJSON, Extra: s.extra}
	start := time.Now()
	dir, err := SaveCheckpoint(s.cfg.CheckpointDir(), s.opts.Model, s.opt, st, s.cfg.Ckpt.MaxNum)
	if err != nil {
		return err
	}
	s.lastSaved = s.step
	s.Log.Info("checkpoint saved", "dir", dir, "step", s.step, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Finish ends the run: a last checkpoint when checkpointing is on, the
// final model in Ckpt.OutputDir, the plots, and closed outputs.
func (s *Session) Finish() error {
	s.progress.Finish()
	var errs []error
	if s.cfg.Ckpt.SaveSteps > 0 {
		errs = append(errs, s.Checkpoint())
	}
	if err := SaveModel(s.cfg.Ckpt.OutputDir, s.opts.Model); err != nil {
		errs = append(errs, err)
	} else {
		s.Log.Info("model saved", "dir", s.cfg.Ckpt.OutputDir, "steps", s.step, "nonfinite_skipped", s.nonFiniteTotal)
	}
	for _, key := range s.opts.Plots {
		path := filepath.Join(s.cfg.Ckpt.OutputDir, key+".png")
		errs = append(errs, s.metrics.Plot(path, s.opts.Name+" "+key, key))
	}
	errs = append(errs, s.Close())
	return errors.Join(errs...)
}

// Close closes the outputs without saving anything (after an error).
func (s *Session) Close() error {
	var errs []error
	if s.metrics != nil {
		s.closedRows = s.metrics.Rows()
		errs = append(errs, s.metrics.Close())
		s.metrics = nil
	}
	if s.logFile != nil {
		errs = append(errs, s.logFile.Close())
		s.logFile = nil
	}
	return errors.Join(errs...)
}

// Metrics returns the rows logged so far (also after Finish or Close).
func (s *Session) Metrics() []Row {
	if s.metrics == nil {
		return s.closedRows
	}
	return s.metrics.Rows()
}
