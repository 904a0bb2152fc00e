package inproc

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// trainable is what the actor and the critic share: the model they
// train, its parameters and their train.Optimizer (AdamW in this process,
// or one rank's share of a data-parallel zero.Engine), with Weights and
// the role.Checkpointer methods.
//
// On a data-parallel group every rank's role is called for every method
// (package role/group does it): TrainStep with that rank's share of the
// micro-batches, LogProbs and Values with its share of the sequences, the
// others whole. At ZeRO stage 3 every method that reads the weights
// outside a step (LogProbs, Values, Weights, Export, Save) all-gathers
// them around its work, so every rank must take part.
type trainable struct {
	m      train.Model
	params nn.Params
	opt    *train.Optimizer
	name   string       // "actor" or "critic", for errors
	tape   *tensor.Tape // pooled: every micro-batch runs in the last one's memory
}

// newTrainable builds the optimizer of m: over comm (one rank of a
// data-parallel group; nil: this process alone) with oc.
func newTrainable(name string, comm collective.Comm, m train.Model, oc train.OptimizerConfig) (trainable, error) {
	params := m.Module.Params()
	if m.Adapters != nil { // LoRA: the adapters (and a score head) train, the base is frozen
		params = m.Adapters.Params()
	}
	opt, err := train.NewOptimizer(context.Background(), comm, m, params, oc)
	if err != nil {
		return trainable{}, fmt.Errorf("inproc: %s: %w", name, err)
	}
	return trainable{m: m, params: params, opt: opt, name: name}, nil
}

// Rank is this role's data-parallel rank, Size the group's (0 and 1 in
// one process).
func (t *trainable) Rank() int { return t.opt.Rank() }

// Size is the number of data-parallel ranks of the role.
func (t *trainable) Size() int { return t.opt.Size() }

// Optimizer is the role's optimizer (for its memory report and tests).
func (t *trainable) Optimizer() *train.Optimizer { return t.opt }

// gathered runs f with every parameter whole (ZeRO stage 3 all-gathers
// them around it; every rank must call it).
func (t *trainable) gathered(ctx context.Context, f func() error) error {
	release, err := t.opt.Gather(ctx)
	if err != nil {
		return fmt.Errorf("inproc: gathering the %s's weights: %w", t.name, err)
	}
	defer release()
	return f()
}

// Weights implements role.Actor: copies of every parameter (the critic's
// are for inspection; the rollout engine never needs them); with LoRA
// the adapters alone, which the rollout merges into its base. On a
// data-parallel group only rank 0 returns them; the other ranks take
// part in the gather (stage 3) and return none.
func (t *trainable) Weights(ctx context.Context) (role.Weights, error) {
	if err := ctx.Err(); err != nil {
		return role.Weights{}, err
	}
	var w role.Weights
	err := t.gathered(ctx, func() error {
		if t.opt.Rank() == 0 {
			w.Params = copyParams(t.params)
		}
		return nil
	})
	return w, err
}

// Save implements role.Checkpointer: one process writes the model, the
// optimizer moments and the state (train.SaveCheckpoint); on a
// data-parallel group every rank writes its ZeRO shards and rank 0 the
// model and the state, into one folder on a file system every rank
// reaches. Every rank returns the folder.
func (t *trainable) Save(ctx context.Context, req role.SaveRequest) (role.SaveResult, error) {
	if err := ctx.Err(); err != nil {
		return role.SaveResult{}, err
	}
	dir, err := t.opt.Save(req.Root, train.State{Step: req.Step, Extra: req.State}, max(req.Keep, 1))
	return role.SaveResult{Dir: dir}, err
}

// Load implements role.Checkpointer: weights and optimizer state from a
// checkpoint folder, whatever rank count and ZeRO stage saved it (a
// data-parallel checkpoint re-shards onto this group; one process reads
// it through the sharding engine).
func (t *trainable) Load(ctx context.Context, req role.LoadRequest) (role.LoadResult, error) {
	if err := ctx.Err(); err != nil {
		return role.LoadResult{}, err
	}
	st, err := t.opt.Restore(req.Dir)
	if err != nil {
		return role.LoadResult{}, err
	}
	return role.LoadResult{Step: st.Step, State: st.Extra}, nil
}

// Export implements role.Checkpointer: rank 0 writes the model folder,
// the parameters gathered first (every rank takes part).
func (t *trainable) Export(ctx context.Context, req role.ExportRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.gathered(ctx, func() error {
		if t.opt.Rank() != 0 {
			return nil
		}
		return train.SaveModel(req.Dir, t.m)
	})
}

// prepareStep readies one optimizer step: the gradient-norm clip, and
// the step's loss norm when the request leaves it unset (rl.StepLossNorm
// over the micro-batches of every rank).
func (t *trainable) prepareStep(ctx context.Context, norm rl.LossNorm, maxNorm float64, n int, seqs func(i int) role.Sequences) (rl.LossNorm, error) {
	if err := t.opt.SetMaxNorm(maxNorm); err != nil {
		return norm, fmt.Errorf("inproc: %s step: %w", t.name, err)
	}
	if norm != (rl.LossNorm{}) {
		return norm, nil
	}
	norm = stepNorm(n, seqs)
	if t.opt.Size() == 1 {
		return norm, nil
	}
	var err error
	if norm.Tokens, err = t.opt.Sum(ctx, norm.Tokens); err == nil {
		norm.Sequences, err = t.opt.Sum(ctx, norm.Sequences)
	}
	if err != nil {
		return norm, fmt.Errorf("inproc: %s step: the loss norm over the ranks: %w", t.name, err)
	}
	return norm, nil
}

// runStep runs micro's forward and backward passes, each in a micro-batch
// of the optimizer, then applies the step at lr; loss is the step's loss
// on this rank (its micro-batches'), once they have all run. It returns
// the gradient norm and whether the step was skipped.
func (t *trainable) runStep(ctx context.Context, n int, micro func(i int), loss func() float64, lr float64) (float64, bool, error) {
	t.params.ZeroGrad()
	for i := range n {
		if err := ctx.Err(); err != nil {
			t.params.ZeroGrad()
			return 0, false, err
		}
		if err := t.opt.BeginMicro(ctx); err != nil {
			return 0, false, fmt.Errorf("inproc: %s step: micro-batch %d: %w", t.name, i, err)
		}
		micro(i)
		if err := t.opt.EndMicro(ctx); err != nil {
			return 0, false, fmt.Errorf("inproc: %s step: micro-batch %d: %w", t.name, i, err)
		}
	}
	u, err := t.opt.Apply(ctx, loss(), lr)
	if err != nil {
		return u.GradNorm, u.Skipped, fmt.Errorf("inproc: %s step: %w", t.name, err)
	}
	return u.GradNorm, u.Skipped, nil
}

// --- shared by the trainable roles

// stepNorm is rl.StepLossNorm over the masks of n micro-batches.
func stepNorm(n int, seqs func(i int) role.Sequences) rl.LossNorm {
	masks := make([]*tensor.Tensor, n)
	for i := range n {
		masks[i] = seqs(i).Mask()
	}
	return rl.StepLossNorm(masks...)
}
