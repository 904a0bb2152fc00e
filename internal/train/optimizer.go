package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/zero"
)

// OptimizerConfig configures an Optimizer.
type OptimizerConfig struct {
	Adam    optim.Config
	MaxNorm float64 // global gradient-norm clip; 0 = off
	// ZeroStage is the ZeRO stage (--ds.zero_stage) of a data-parallel
	// optimizer; in one process, a stage above 0 trains through the
	// sharding engine too (as a group of one).
	ZeroStage int
	// Recompute adds gradient checkpointing to the sharding engine's block
	// runner (one process alone sets model.Recompute on the model itself).
	Recompute bool
}

// Optimizer runs the optimizer steps of one model, in this process alone
// (AdamW behind a StepGuard: the default path, the demo's) or
// data-parallel over the ranks of a collective.Comm (a zero.Engine that
// shards the training state by ZeroStage). A Session uses one, and so
// does every trainable RL role (package role/inproc), so that both share
// one implementation of the step, of sharded checkpoints and of gathers.
//
// A step is BeginMicro, the micro-batch's forward and backward pass and
// EndMicro for each of this rank's micro-batches, then Apply. Every rank
// of a data-parallel group calls every method in the same order (they run
// collectives). Not safe for concurrent use.
type Optimizer struct {
	st     stepper
	dp     *dataParallel // nil in one process
	adam   *optim.AdamW  // one process only
	guard  *StepGuard    // one process only
	model  Model
	params nn.Params
	cfg    OptimizerConfig
}

// NewOptimizer builds the optimizer of m (checkpoints store m; params are
// what one process updates, usually m.Module.Params()): AdamW in this
// process when comm is nil and cfg.ZeroStage is 0, otherwise a
// zero.Engine over comm (a group of one when comm is nil), whose block
// runner it sets on the model. Every rank of comm calls it with a model
// of identical weights (the engine checks them).
func NewOptimizer(ctx context.Context, comm collective.Comm, m Model, params nn.Params, cfg OptimizerConfig) (*Optimizer, error) {
	o := &Optimizer{model: m, params: params, cfg: cfg}
	if m.Adapters != nil && (comm != nil || cfg.ZeroStage > 0) {
		ranks := 1
		if comm != nil {
			ranks = comm.Size()
		}
		return nil, fmt.Errorf("train: LoRA (--ds.lora.rank) trains in one process at --ds.zero_stage 0; this run asks for %d rank(s) at stage %d", ranks, cfg.ZeroStage)
	}
	if comm == nil && cfg.ZeroStage == 0 {
		adam, err := optim.New(params, cfg.Adam)
		if err != nil {
			return nil, err
		}
		o.adam = adam
		o.guard = &StepGuard{Params: params, Opt: adam, MaxNorm: cfg.MaxNorm}
		o.st = single{guard: o.guard}
		return o, nil
	}
	if err := o.shard(ctx, comm); err != nil {
		return nil, err
	}
	return o, nil
}

// shard moves the training state into a zero.Engine over comm (a group
// of one when nil).
func (o *Optimizer) shard(ctx context.Context, comm collective.Comm) error {
	if comm == nil {
		comm = collective.NewLocal(1)[0]
	}
	dp, err := newDataParallel(ctx, comm, o.model.Module, o.cfg.ZeroStage, o.cfg.Adam, o.cfg.MaxNorm, o.cfg.Recompute)
	if err != nil {
		return err
	}
	o.dp, o.st, o.adam, o.guard = dp, dp, nil, nil
	return nil
}

// BeginMicro opens one micro-batch: call it before its forward pass
// (ZeRO stage 3 gathers the parameters that belong to no block).
func (o *Optimizer) BeginMicro(ctx context.Context) error { return o.st.beginMicro(ctx) }

// EndMicro closes the micro-batch after its backward pass (data-parallel:
// its gradients are reduce-scattered over the ranks).
func (o *Optimizer) EndMicro(ctx context.Context) error { return o.st.endMicro(ctx) }

// Apply finishes the step whose gradients the micro-batches accumulated:
// the global gradient norm, the finite check of the loss and the norm
// (a non-finite step changes nothing and says Skipped), clipping to
// MaxNorm and AdamW at lr; gradients are dropped either way. loss is this
// rank's share of the step's loss; Update.Loss is the whole step's
// (summed over the ranks). Counting skipped steps is the caller's.
func (o *Optimizer) Apply(ctx context.Context, loss, lr float64) (Update, error) {
	return o.st.apply(ctx, loss, lr)
}

// SetMaxNorm changes the gradient-norm clip of the next steps. In one
// process any value goes; a data-parallel engine clips at the MaxNorm it
// was built with, and a different value is an error.
func (o *Optimizer) SetMaxNorm(v float64) error {
	if o.guard != nil {
		o.guard.MaxNorm = v
		o.cfg.MaxNorm = v
		return nil
	}
	if v != o.cfg.MaxNorm {
		return fmt.Errorf("train: rank %d: the data-parallel optimizer clips the gradient norm at %g, set when it was built; a step asks for %g", o.Rank(), o.cfg.MaxNorm, v)
	}
	return nil
}

// Sum returns x summed over the data-parallel ranks (x in one process).
func (o *Optimizer) Sum(ctx context.Context, x float64) (float64, error) { return o.st.sum(ctx, x) }

// Gather makes every parameter whole until release is called (every rank
// must call it between steps: ZeRO stage 3 all-gathers the model; the
// other stages and one process do nothing).
func (o *Optimizer) Gather(ctx context.Context) (release func(), err error) { return o.st.gather(ctx) }

// GatherOn is Gather for rank root alone (the one that writes what it
// reads): the other ranks take part in the all-gathers and keep nothing.
// Every rank must call it with the same root.
func (o *Optimizer) GatherOn(ctx context.Context, root int) (release func(), err error) {
	return o.st.gatherOn(ctx, root)
}

// Rank is this process's data-parallel rank (0 in one process).
func (o *Optimizer) Rank() int { return o.st.rank() }

// Size is the number of data-parallel ranks (1 in one process).
func (o *Optimizer) Size() int { return o.st.size() }

// Sharded reports whether a zero.Engine holds the training state (a
// data-parallel group, or one process at a ZeRO stage above 0).
func (o *Optimizer) Sharded() bool { return o.dp != nil }

// Memory is the engine's bytes of training state on this rank (false in
// one process without the engine).
func (o *Optimizer) Memory() (zero.Memory, bool) {
	if o.dp == nil {
		return zero.Memory{}, false
	}
	return o.dp.e.Memory(), true
}

// Save writes a checkpoint of step st.Step under root, keeping the
// newest keep: in one process SaveCheckpoint (model, optimizer moments,
// state); data-parallel, every rank its ZeRO shards and rank 0 the whole
// model and the state, one atomic folder. It returns the folder.
func (o *Optimizer) Save(root string, st State, keep int) (string, error) {
	if o.dp != nil {
		return o.dp.save(root, o.model, st, keep)
	}
	return SaveCheckpoint(root, o.model, o.adam, st, keep)
}

// Restore loads a checkpoint folder: weights and optimizer state, and the
// state saved with them. A data-parallel optimizer reads its share of
// the ZeRO shards, whatever rank count and stage saved them. One process
// reads a one-process checkpoint as it is, and one saved with ZeRO shards
// through the sharding engine (as a group of one): from then on it trains
// through the engine.
func (o *Optimizer) Restore(dir string) (State, error) {
	if o.dp == nil && Sharded(dir) && o.model.Adapters == nil {
		if err := o.shard(context.Background(), nil); err != nil {
			return State{}, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
	}
	if o.dp != nil {
		return o.dp.restore(dir)
	}
	return LoadCheckpoint(dir, o.params, o.adam)
}

// Sharded reports whether the checkpoint folder dir holds ZeRO shards (a
// data-parallel run, or one at a ZeRO stage above 0, saved it).
func Sharded(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, ZeroDir))
	return err == nil && st.IsDir()
}
