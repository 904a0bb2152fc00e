package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/zero"
)

// stepper is how an Optimizer runs its steps: in this process alone
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
	// gatherOn is gather for root alone: the others take part and keep
	// nothing (every rank must call it with the same root).
	gatherOn(ctx context.Context, root int) (release func(), err error)
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
func (single) gatherOn(context.Context, int) (func(), error) {
	return func() {}, nil
}
func (single) rank() int { return 0 }
func (single) size() int { return 1 }

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
func (d *dataParallel) gatherOn(ctx context.Context, root int) (func(), error) {
	return d.e.GatherOn(ctx, root)
}
func (d *dataParallel) rank() int { return d.comm.Rank() }
func (d *dataParallel) size() int { return d.comm.Size() }

// agree turns one rank's error into every rank's: each says whether it
// failed, and all fail, naming the ranks that did, when one did.
func (d *dataParallel) agree(what string, err error) error {
	failed, cerr := collective.Agree(context.Background(), d.comm, err)
	switch {
	case cerr != nil:
		return errors.Join(err, fmt.Errorf("train: rank %d: %s: %w", d.comm.Rank(), what, cerr))
	case err != nil:
		return fmt.Errorf("train: rank %d: %s: %w", d.comm.Rank(), what, err)
	case len(failed) > 0:
		return fmt.Errorf("train: %s failed on rank(s) %v", what, failed)
	}
	return nil
}

// agreeStop makes every rank stop at the same step: when any rank's ctx
// is done, each gets a cancelled context (the collectives of the last
// checkpoint then run on a live one); otherwise ctx itself.
func (d *dataParallel) agreeStop(ctx context.Context) (context.Context, error) {
	flag := []float64{0}
	if ctx.Err() != nil {
		flag[0] = 1
	}
	if err := d.comm.AllReduceF64(context.Background(), flag); err != nil {
		return ctx, fmt.Errorf("rank %d: agreeing whether to stop: %w", d.comm.Rank(), err)
	}
	if flag[0] == 0 {
		return ctx, nil
	}
	cause := context.Cause(ctx)
	if cause == nil {
		cause = fmt.Errorf("%w: another data-parallel rank was stopped", context.Canceled)
	}
	stopped, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	return stopped, nil
}

// save writes a checkpoint of the data-parallel run: every rank its ZeRO
// shards into <tag>/zero (zero.Engine.Save), rank 0 the whole model
// (gathered at stage 3, so the folder also loads as a model) and the
// state, into a temporary folder every rank names alike, renamed into
// place by rank 0 once every rank has written its part.
func (d *dataParallel) save(root string, m Model, st State, keep int) (string, error) {
	ctx, rank0 := context.Background(), d.comm.Rank() == 0
	tag := Tag(st.Step)
	tmp := filepath.Join(root, "."+tag+".tmp-dp")
	var err error
	if rank0 {
		if err = os.MkdirAll(root, 0o755); err == nil {
			if err = os.RemoveAll(tmp); err == nil {
				err = os.Mkdir(tmp, 0o755)
			}
		}
	}
	if err := d.agree("checkpoint "+tag+": create "+tmp, err); err != nil {
		return "", err
	}
	if err := d.e.Save(ctx, filepath.Join(tmp, ZeroDir)); err != nil {
		return "", fmt.Errorf("train: rank %d: checkpoint %s: %w", d.comm.Rank(), tag, err)
	}
	release, err := d.e.GatherOn(ctx, 0)
	if err != nil {
		return "", fmt.Errorf("train: rank %d: checkpoint %s: %w", d.comm.Rank(), tag, err)
	}
	if rank0 {
		if err = SaveModel(tmp, m); err == nil {
			err = writeState(tmp, st)
		}
		if err == nil {
			_, err = commitCheckpoint(root, tmp, tag, keep)
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}
	release()
	if err := d.agree("checkpoint "+tag, err); err != nil {
		return "", err
	}
	return filepath.Join(root, tag), nil
}

// restore loads a data-parallel checkpoint folder on every rank: the
// state file and this rank's share of the ZeRO shards, re-partitioned
// when the checkpoint was saved by another number of ranks or stage.
func (d *dataParallel) restore(dir string) (State, error) {
	st, err := readState(dir)
	zdir := filepath.Join(dir, ZeroDir)
	if err == nil {
		if _, serr := os.Stat(zdir); serr != nil {
			err = fmt.Errorf("checkpoint %s was saved by one process without ZeRO sharding (no %s/): resume it in one process with --ds.zero_stage 0", dir, ZeroDir)
		}
	}
	if err := d.agree("resume from "+dir, err); err != nil {
		return st, err
	}
	if err := d.e.Load(context.Background(), zdir); err != nil {
		return st, fmt.Errorf("train: rank %d: resume from %s: %w", d.comm.Rank(), dir, err)
	}
	return st, nil
}
