package train

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/zero"
)

// stepper is how a Session runs its optimizer: in this process alone
// (single: a StepGuard over AdamW, the default and the demo's path) or
// data-parallel over the ranks of a Comm (dataParallel: a zero.Engine).
type stepper interface {
	// beginMicro and endMicro open and close one micro-batch (its
	// forward and backward passes run in between).
	beginMicro(ctx context.Context) error
	endMicro(ctx context.Context) error
	// apply finishes the step whose gradients were accumulated; loss is
	// this rank's share of the step's loss, Update.Loss the whole step's.
	apply(ctx context.Context, loss, lr float64) (Update, error)
	// sum is x summed over the ranks (x itself in one process).
	sum(ctx context.Context, x float64) (float64, error)
	// gather makes every parameter whole until release is called (every
	// rank must call it: ZeRO stage 3 all-gathers).
	gather(ctx context.Context) (release func(), err error)
	// rank and size place this process in the group.
	rank() int
	size() int
}

// single is the one-process stepper.
type single struct {
	guard *StepGuard
}

func (single) beginMicro(context.Context) error { return nil }
func (single) endMicro(context.Context) error   { return nil }

func (s single) apply(_ context.Context, loss, lr float64) (Update, error) {
	u := s.guard.Apply(loss, lr)
	u.Loss = loss
	return u, nil
}

func (single) sum(_ context.Context, x float64) (float64, error) { return x, nil }

func (single) gather(context.Context) (func(), error) { return func() {}, nil }
func (single) rank() int                              { return 0 }
func (single) size() int                              { return 1 }

// dataParallel steps a model whose training state a zero.Engine shards
// over the ranks of comm.
type dataParallel struct {
	comm collective.Comm
	e    *zero.Engine
}

// newDataParallel builds the engine over m and sets its block runner on
// the model (recompute: gradient checkpointing as well).
func newDataParallel(ctx context.Context, comm collective.Comm, m model.CausalLM, stage int, adam optim.Config, maxNorm float64, recompute bool) (*dataParallel, error) {
	e, err := zero.New(ctx, comm, m, zero.Config{Stage: stage, Optim: adam, MaxNorm: maxNorm, Recompute: recompute})
	if err != nil {
		return nil, fmt.Errorf("train: rank %d of %d: %w", comm.Rank(), comm.Size(), err)
	}
	if b, ok := m.(model.Blocked); ok {
		b.SetBlockRunner(e.Runner())
	}
	return &dataParallel{comm: comm, e: e}, nil
}

func (d *dataParallel) beginMicro(ctx context.Context) error { return d.e.BeginMicro(ctx) }
func (d *dataParallel) endMicro(ctx context.Context) error   { return d.e.EndMicro(ctx) }

func (d *dataParallel) apply(ctx context.Context, loss, lr float64) (Update, error) {
	global, err := zero.SumF64(ctx, d.comm, loss)
	if err != nil {
		return Update{LR: lr}, fmt.Errorf("train: rank %d: summing the loss: %w", d.comm.Rank(), err)
	}
	u, err := d.e.Step(ctx, global, lr)
	return Update{LR: u.LR, GradNorm: u.GradNorm, Skipped: u.Skipped, Loss: global}, err
}

func (d *dataParallel) sum(ctx context.Context, x float64) (float64, error) {
	return zero.SumF64(ctx, d.comm, x)
}

func (d *dataParallel) gather(ctx context.Context) (func(), error) { return d.e.Gather(ctx) }
func (d *dataParallel) rank() int                                  { return d.comm.Rank() }
func (d *dataParallel) size() int                                  { return d.comm.Size() }
