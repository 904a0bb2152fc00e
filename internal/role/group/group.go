// Package group puts one role.Actor, role.Critic or role.Reference in
// front of the N ranks of a data-parallel group, so that the PPO driver
// sees one role whatever the rank count. The ranks are any clients of
// the role — in-process roles (role/inproc.NewActorRank) or role/remote
// clients of worker processes — that train one replica each and reduce
// their gradients among themselves (package zero over a
// collective.Comm); the fan-out never touches tensors or collectives.
//
// What each method does on a group:
//
//	TrainStep        the step's micro-batches cut into N equal contiguous shares, rank r
//	                 running share r; the loss norm is the whole step's (rl.StepLossNorm
//	                 over every micro-batch, when the request leaves it unset); results
//	                 merged: loss terms and tokens summed, ratios and fractions averaged
//	                 weighted by tokens, RatioMax the largest, GradNorm and Skipped rank
//	                 0's (every rank computes the same, which is checked)
//	LogProbs, Values the sequences cut into N contiguous shares (sizes differing by at
//	                 most one), rank r computing share r, the results concatenated in order
//	Weights, Export  every rank (ZeRO stage 3 all-gathers the weights); rank 0's result
//	Save, Load       every rank (each writes or reads its shards); rank 0's result
//
// Every call goes to every rank at once, in the same order on each (a
// collective inside a rank waits for the others), and the first rank to
// fail cancels the others' calls; the error names the role and the rank.
// A Reference (frozen, no collectives) only splits LogProbs.
package group

import (
	"context"
	"fmt"
	"sync"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// fanout calls n ranks at once and keeps the first failure.
type fanout struct {
	name string // "actor", "critic" or "reference": errors and flag names
	n    int
	// where names rank r's place in errors ("" when the rank's own
	// errors say it), e.g. "rank 3 on node-2".
	where func(r int) string
}

// each runs f for every rank concurrently; the first error cancels the
// context of the others and is returned, naming the role and the rank.
func (g fanout) each(ctx context.Context, what string, f func(ctx context.Context, r int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make([]error, g.n)
	var first sync.Once
	firstRank := -1
	var wg sync.WaitGroup
	for r := range g.n {
		wg.Go(func() {
			if err := f(ctx, r); err != nil {
				errs[r] = err
				first.Do(func() {
					firstRank = r
					cancel(fmt.Errorf("group: %s rank %d of %d failed", g.name, r, g.n))
				})
			}
		})
	}
	wg.Wait()
	if firstRank < 0 {
		return nil
	}
	return fmt.Errorf("group: %s %s: %s: %w", g.name, g.place(firstRank), what, errs[firstRank])
}

// place names rank r for errors.
func (g fanout) place(r int) string {
	if g.where != nil {
		if s := g.where(r); s != "" {
			return s
		}
	}
	return fmt.Sprintf("rank %d of %d", r, g.n)
}

// Option configures a group.
type Option func(*fanout)

// Where names each rank's place in errors (e.g. the global rank and the
// host of its worker process); by default "rank r of N".
func Where(f func(r int) string) Option { return func(g *fanout) { g.where = f } }

func newFanout(name string, n int, opts []Option) (fanout, error) {
	if n < 1 {
		return fanout{}, fmt.Errorf("group: %s: no ranks", name)
	}
	g := fanout{name: name, n: n}
	for _, o := range opts {
		o(&g)
	}
	return g, nil
}

// shares cuts n items into the group's contiguous shares: sizes differ by
// at most one, the larger ones first.
func (g fanout) shares(n int) [][2]int {
	out := make([][2]int, g.n)
	lo := 0
	for r := range g.n {
		size := n / g.n
		if r < n%g.n {
			size++
		}
		out[r] = [2]int{lo, lo + size}
		lo += size
	}
	return out
}

// micro cuts a step's m micro-batches into equal shares, or says why not.
func (g fanout) micro(m int) ([][2]int, error) {
	if m%g.n != 0 {
		return nil, fmt.Errorf("group: %s step: its %d micro-batches (--train.batch_size / --train.micro_batch_size) do not split evenly over the %s's %d data-parallel ranks (--%s.num_nodes × --%s.num_workers_per_node)",
			g.name, m, g.name, g.n, g.name, g.name)
	}
	return g.shares(m), nil
}

// split runs a per-sequence request on every rank's share of s and
// concatenates the per-token results in order.
func (g fanout) split(ctx context.Context, what string, s role.Sequences, f func(ctx context.Context, r int, share role.Sequences) (role.PerToken, error)) (role.PerToken, error) {
	sh := g.shares(s.Len())
	outs := make([]role.PerToken, g.n)
	err := g.each(ctx, what, func(ctx context.Context, r int) error {
		share := s.Select(indices(sh[r]))
		out, err := f(ctx, r, share)
		if err == nil && len(out) != share.Len() {
			err = fmt.Errorf("%d rows for %d sequences", len(out), share.Len())
		}
		outs[r] = out
		return err
	})
	if err != nil {
		return nil, err
	}
	all := make(role.PerToken, 0, s.Len())
	for _, o := range outs {
		all = append(all, o...)
	}
	return all, nil
}

// indices lists lo…hi−1.
func indices(span [2]int) []int {
	out := make([]int, 0, span[1]-span[0])
	for i := span[0]; i < span[1]; i++ {
		out = append(out, i)
	}
	return out
}

// stepNorm is the step's loss norm: the request's, or rl.StepLossNorm
// over every micro-batch of the whole step, before it is split.
func stepNorm(given rl.LossNorm, n int, seqs func(i int) role.Sequences) rl.LossNorm {
	if given != (rl.LossNorm{}) {
		return given
	}
	masks := make([]*tensor.Tensor, n)
	for i := range n {
		masks[i] = seqs(i).Mask()
	}
	return rl.StepLossNorm(masks...)
}

// agreeNorm checks that every rank reports the same gradient norm and
// skip (the engine all-reduces them): a difference means the ranks no
// longer train one model.
func (g fanout) agreeNorm(norms []float64, skipped []bool) error {
	for r := 1; r < g.n; r++ {
		if norms[r] != norms[0] || skipped[r] != skipped[0] {
			return fmt.Errorf("group: %s step: %s reports gradient norm %v (skipped %v), %s %v (skipped %v): the ranks no longer train one model",
				g.name, g.place(r), norms[r], skipped[r], g.place(0), norms[0], skipped[0])
		}
	}
	return nil
}

// checkpointer is Save, Load and Export over every rank.
type checkpointer struct {
	fanout
	ranks []role.Checkpointer
}

// Save implements role.Checkpointer: every rank saves (its shards; rank 0
// also the model and the state), rank 0's folder is returned.
func (c checkpointer) Save(ctx context.Context, req role.SaveRequest) (role.SaveResult, error) {
	res := make([]role.SaveResult, c.n)
	err := c.each(ctx, "save", func(ctx context.Context, r int) error {
		var err error
		res[r], err = c.ranks[r].Save(ctx, req)
		return err
	})
	return res[0], err
}

// Load implements role.Checkpointer: every rank loads its share; rank 0's
// state is returned, and every rank must have read the same step.
func (c checkpointer) Load(ctx context.Context, req role.LoadRequest) (role.LoadResult, error) {
	res := make([]role.LoadResult, c.n)
	err := c.each(ctx, "load "+req.Dir, func(ctx context.Context, r int) error {
		var err error
		res[r], err = c.ranks[r].Load(ctx, req)
		return err
	})
	if err != nil {
		return role.LoadResult{}, err
	}
	for r := 1; r < c.n; r++ {
		if res[r].Step != res[0].Step {
			return role.LoadResult{}, fmt.Errorf("group: %s: load %s: %s read step %d, %s step %d", c.name, req.Dir, c.place(r), res[r].Step, c.place(0), res[0].Step)
		}
	}
	return res[0], nil
}

// Export implements role.Checkpointer: every rank takes part (ZeRO stage
// 3 gathers), rank 0 writes the folder.
func (c checkpointer) Export(ctx context.Context, req role.ExportRequest) error {
	return c.each(ctx, "export to "+req.Dir, func(ctx context.Context, r int) error { return c.ranks[r].Export(ctx, req) })
}
