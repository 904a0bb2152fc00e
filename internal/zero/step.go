package zero

import (
	"context"
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/optim"
)

// Update is the outcome of one optimizer step (the fields of
// train.Update).
type Update struct {
	LR       float64 // learning rate used
	GradNorm float64 // global gradient norm before clipping
	Skipped  bool    // the loss or the norm was NaN or infinite: no update was applied
}

// Step finishes an optimizer step once every rank has ended its
// micro-batches, in train.StepGuard's order: the global gradient norm
// (each rank's float64 sum of squares over its shards, all-reduced: the
// same value on every rank and at every stage), the finite check of loss
// (the global loss, already summed over the ranks: SumF64) and norm,
// clipping to Config.MaxNorm, AdamW at lr on this rank's shards, and the
// all-gather of the updated parameters (stages 1 and 2). A non-finite
// step is skipped on every rank alike: no update, the accumulated
// gradients dropped. Counting skipped steps is the caller's.
func (e *Engine) Step(ctx context.Context, loss, lr float64) (Update, error) {
	u := Update{LR: lr}
	switch {
	case e.err != nil:
		return u, e.err
	case e.inMicro:
		return u, e.errorf("step: a micro-batch is open (EndMicro)")
	case e.gathered != nil:
		return u, e.errorf("step: the parameters are gathered (release them first)")
	}
	defer func() {
		for _, b := range e.buckets {
			clear(b.acc)
		}
		e.steps++
	}()
	norm, err := e.gradNorm(ctx)
	if err != nil {
		e.fail(fmt.Errorf("gradient norm: %w", err))
		return u, e.err
	}
	u.GradNorm = norm
	if !finite(loss) || !finite(norm) {
		u.Skipped = true
		return u, nil
	}
	e.clip(norm)
	e.adamStep++
	k := e.cfg.Optim.Coeffs(lr, e.adamStep)
	for _, b := range e.buckets {
		if err := e.update(ctx, b, k, lr); err != nil {
			e.fail(err)
			return u, e.err
		}
	}
	return u, nil
}

// gradNorm is √(Σ g²) over the accumulated gradients of every rank: each
// rank sums its shards in bucket order in float64, then the partial sums
// are all-reduced.
func (e *Engine) gradNorm(ctx context.Context) (float64, error) {
	var s float64
	for _, b := range e.buckets {
		for _, g := range b.acc {
			s += float64(g) * float64(g)
		}
	}
	e.f64[0] = s
	if err := e.comm.AllReduceF64(ctx, e.f64); err != nil {
		return 0, err
	}
	return math.Sqrt(e.f64[0]), nil
}

// clip scales the accumulated gradients by MaxNorm/(norm+1e-6) when norm
// exceeds MaxNorm, as optim.ClipGradNorm does.
func (e *Engine) clip(norm float64) {
	if e.cfg.MaxNorm <= 0 || norm <= e.cfg.MaxNorm {
		return
	}
	scale := float32(e.cfg.MaxNorm / (norm + 1e-6))
	for _, b := range e.buckets {
		for i := range b.acc {
			b.acc[i] *= scale
		}
	}
}

// update applies AdamW to bucket b: at stage 0 to all of it, from the
// gathered gradient shards; at stages 1–3 to this rank's shard, whose
// updated parameters stages 1 and 2 then all-gather.
func (e *Engine) update(ctx context.Context, b *bucket, k optim.Coeffs, lr float64) error {
	if e.cfg.Stage == 0 {
		if err := e.comm.AllGather(ctx, b.acc, b.g); err != nil {
			return fmt.Errorf("all-gather %s's gradients: %w", b.name, err)
		}
		for _, s := range b.slots {
			k.Decay = e.cfg.Optim.DecayFactor(s.name, lr)
			r := collective.Range{Lo: s.off, Hi: s.off + s.n}
			optim.Update(b.w[r.Lo:r.Hi], b.g[r.Lo:r.Hi], b.m[r.Lo:r.Hi], b.v[r.Lo:r.Hi], k)
		}
		clear(b.g)
		return nil
	}
	w := b.wShard
	if e.cfg.Stage < 3 {
		w = b.w[b.shard.Lo:b.shard.Hi]
	}
	for _, s := range b.slots {
		lo, hi := max(s.off, b.shard.Lo)-b.shard.Lo, min(s.off+s.n, b.shard.Hi)-b.shard.Lo
		if lo >= hi {
			continue
		}
		k.Decay = e.cfg.Optim.DecayFactor(s.name, lr)
		optim.Update(w[lo:hi], b.acc[lo:hi], b.m[lo:hi], b.v[lo:hi], k)
	}
	if e.cfg.Stage < 3 {
		sh := e.tmp[:len(w)]
		copy(sh, w)
		if err := e.comm.AllGather(ctx, sh, b.w); err != nil {
			return fmt.Errorf("all-gather %s's parameters: %w", b.name, err)
		}
	}
	return nil
}

// SumF64 returns the sum of x over the ranks of c (every rank gets the
// same bits): the global loss Step checks, or a token count.
func SumF64(ctx context.Context, c collective.Comm, x float64) (float64, error) {
	buf := []float64{x}
	if err := c.AllReduceF64(ctx, buf); err != nil {
		return 0, fmt.Errorf("zero: rank %d: all-reduce: %w", c.Rank(), err)
	}
	return buf[0], nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
