package train

import (
	"context"
	"errors"
	"fmt"
)

// ErrStopped is returned (wrapped) when a run stops at its StopAtStep
// after writing its checkpoint.
var ErrStopped = errors.New("stopped at the requested step")

// ErrNonFinite is returned (wrapped) when too many consecutive steps had a
// NaN or infinite loss or gradient.
var ErrNonFinite = errors.New("non-finite loss or gradient")

// Loop is a trainer's part of a run; Run gives the order every trainer
// shares. A Session makes one for the offline trainers (Session.Loop);
// the PPO driver fills one with its iterations.
type Loop struct {
	// Fresh is true when no step is done yet: Eval runs before the first
	// step (the starting point of the eval curve).
	Fresh bool
	// Done reports whether all planned steps are done.
	Done func() bool
	// Step runs one step and logs its metrics.
	Step func(ctx context.Context) error
	// Eval evaluates and logs the result; nil = no evaluation.
	Eval func(ctx context.Context) error
	// EvalDue reports whether to evaluate after the step just done.
	EvalDue func() bool
	// End checkpoints when due and stops the run on request (see
	// CheckpointRule.After).
	End func(ctx context.Context) error
	// Finish writes the final outputs once all steps are done.
	Finish func(ctx context.Context) error
	// Close closes the outputs after an error.
	Close func() error
}

// Run drives l: Eval on a fresh run, then until Done: Step, Eval when
// due, End; then Finish. An error closes the outputs and ends the run.
func Run(ctx context.Context, l Loop) error {
	if l.Fresh && l.Eval != nil {
		if err := l.Eval(ctx); err != nil {
			l.Close()
			return err
		}
	}
	for !l.Done() {
		if err := l.step(ctx); err != nil {
			l.Close()
			return err
		}
	}
	return l.Finish(ctx)
}

// step runs one step with what follows it.
func (l Loop) step(ctx context.Context) error {
	if err := l.Step(ctx); err != nil {
		return err
	}
	if l.Eval != nil && l.EvalDue() {
		if err := l.Eval(ctx); err != nil {
			return err
		}
	}
	return l.End(ctx)
}

// CheckpointRule is when a run saves a checkpoint and when it stops, the
// same for every trainer: a checkpoint every SaveSteps steps, and one
// whenever the run stops, at StopAtStep or because its context was
// cancelled. (How many checkpoints are kept is SaveCheckpoint's keep.)
type CheckpointRule struct {
	SaveSteps  int    // checkpoint every N steps; ≤ 0 = only when stopping
	StopAtStep int    // stop after this step; 0 = never
	Dir        string // the checkpoint folder, named in the stop error
	Trainer    string // prefix of the errors, e.g. "train" or "ppo"
	Unit       string // what a step is called in the errors: "step", "iteration"
}

// After applies the rule after step: it calls save when a checkpoint is
// due, then returns ctx's error (wrapped) when ctx is cancelled,
// ErrStopped (wrapped) at StopAtStep, and nil otherwise. A save error is
// returned as it is.
func (c CheckpointRule) After(ctx context.Context, step int, save func() error) error {
	stop := ctx.Err() != nil || (c.StopAtStep > 0 && step >= c.StopAtStep)
	if c.SaveSteps > 0 && step%c.SaveSteps == 0 || stop {
		if err := save(); err != nil {
			return err
		}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: interrupted after %s %d (checkpoint saved): %w", c.Trainer, c.Unit, step, ctx.Err())
	case stop:
		return fmt.Errorf("%s: %s %d: %w (checkpoint saved in %s)", c.Trainer, c.Unit, step, ErrStopped, c.Dir)
	}
	return nil
}
