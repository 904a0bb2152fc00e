package train

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// Plan is the learning-rate schedule of steps optimizer steps under o:
// a linear warm-up over ⌈WarmupRatio·steps⌉ steps, then o.Scheduler
// (constant, or cosine down to MinLRRatio·LR). Fewer than one step counts
// as one. Every trainer plans its schedules here (PPO one per role).
func Plan(o OptimConfig, steps int) optim.Schedule {
	steps = max(steps, 1)
	return optim.Schedule{Kind: o.Scheduler, PeakLR: o.LR, TotalSteps: steps,
		WarmupSteps: int(math.Ceil(o.WarmupRatio * float64(steps))), MinLRRatio: o.MinLRRatio}
}

// Update is the outcome of one optimizer step.
type Update struct {
	LR       float64 // learning rate used
	GradNorm float64 // global gradient norm before clipping
	Skipped  bool    // the step was non-finite: no update was applied
	// Loss is the step's loss the finite check saw (data-parallel: summed
	// over the ranks). Session.Update sets it; StepGuard leaves it 0.
	Loss float64
}

// StepGuard finishes optimizer steps whose gradients have been
// accumulated into Params, in this order: global gradient norm, finite
// check of loss and norm, clipping to MaxNorm, AdamW at the given learning
// rate, and counting of the skipped steps. The Session uses one, and so
// does every trainable role (package role/inproc), whose skips the PPO
// driver counts instead.
type StepGuard struct {
	Params  nn.Params
	Opt     *optim.AdamW
	MaxNorm float64 // global gradient-norm clip; 0 = off
	// Limit makes Step fail with ErrNonFinite once this many steps in a
	// row were skipped; 0 = never (the caller counts).
	Limit int
	// Skips are the skipped steps so far; restore them when resuming.
	Skips Skips
}

// Apply finishes one step: when loss or the gradient norm is NaN or
// infinite it changes neither the weights nor the optimizer state;
// otherwise it clips the global gradient norm to MaxNorm and takes an
// AdamW step at lr. Gradients are zeroed either way. It does not count.
func (g *StepGuard) Apply(loss, lr float64) Update {
	u := Update{LR: lr, GradNorm: optim.GradNorm(g.Params)}
	defer g.Params.ZeroGrad()
	if !finite(loss) || !finite(u.GradNorm) {
		u.Skipped = true
		return u
	}
	optim.ClipGradNorm(g.Params, g.MaxNorm)
	g.Opt.Step(lr)
	return u
}

// Step is Apply followed by Skips.Count with Limit.
func (g *StepGuard) Step(loss, lr float64) (Update, error) {
	u := g.Apply(loss, lr)
	return u, g.Skips.Count(u.Skipped, g.Limit)
}

// Skips counts non-finite (skipped) optimizer steps.
type Skips struct {
	Run   int // consecutive skipped steps, up to the last one
	Total int // all skipped steps
}

// Count records one step's outcome: a skipped step extends the run, an
// applied one ends it. Once the run reaches limit (> 0) it returns
// ErrNonFinite, wrapped with the run's length; callers add the context.
func (s *Skips) Count(skipped bool, limit int) error {
	if !skipped {
		s.Run = 0
		return nil
	}
	s.Run++
	s.Total++
	if limit > 0 && s.Run >= limit {
		return fmt.Errorf("%w in %d consecutive steps", ErrNonFinite, s.Run)
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
