package zero

import (
	"context"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// BeginMicro opens a micro-batch: at stage 3 it gathers the rest bucket
// (embeddings, final norm, heads) for the whole micro-batch. The hooks
// of the engine's Runner use ctx for their collectives until EndMicro.
func (e *Engine) BeginMicro(ctx context.Context) error {
	if e.err != nil {
		return e.err
	}
	switch {
	case e.inMicro:
		return e.errorf("begin micro-batch: the previous one was not ended (EndMicro)")
	case e.gathered != nil:
		return e.errorf("begin micro-batch: the parameters are gathered (release them first)")
	}
	e.ctx, e.inMicro = ctx, true
	if r := e.rest(); r != nil && e.cfg.Stage == 3 {
		e.gather(r, e.restW[:r.n], "for the micro-batch")
	}
	return e.err
}

// EndMicro closes a micro-batch after its backward pass: the gradients
// not yet reduced (every bucket at stages 0 and 1, the rest bucket at 2
// and 3) are reduce-scattered and added to this rank's accumulators; at
// stage 3 the rest bucket is released. It returns the first error of a
// block hook during the micro-batch, if any.
func (e *Engine) EndMicro(ctx context.Context) error {
	if !e.inMicro {
		return e.errorf("end micro-batch: none was begun (BeginMicro)")
	}
	e.ctx = ctx
	for i, b := range e.buckets {
		if i >= e.blocks || e.cfg.Stage < 2 {
			e.reduce(b, b.g, "at the end of the micro-batch")
			clear(b.g)
		} else if e.err == nil {
			for _, s := range b.slots {
				if s.t.Grad != nil {
					e.fail(fmt.Errorf("%s's gradient was not reduced by the engine: set the engine's Runner on the model (model.Blocked.SetBlockRunner)", s.name))
					break
				}
			}
		}
	}
	if r := e.rest(); r != nil && e.cfg.Stage == 3 {
		e.release(r)
	}
	e.ctx, e.inMicro = nil, false
	return e.err
}

// Runner is the BlockRunner the caller sets on the model
// (model.Blocked.SetBlockRunner) for the whole run: at stage 2 it
// reduce-scatters each block's gradients right after the block's
// backward pass and frees them; at stage 3 it also gathers the block's
// parameters before its forward pass, releases them after, and gathers
// them again around its backward pass (and recomputation, with
// Config.Recompute). At stage 3 a forward pass needs an open micro-batch
// or gathered parameters (Gather).
func (e *Engine) Runner() model.BlockRunner { return runner{e} }

type runner struct{ e *Engine }

// RunBlock implements model.BlockRunner.
func (r runner) RunBlock(tp *tensor.Tape, layer int, x *tensor.Tensor, f model.Block) *tensor.Tensor {
	e := r.e
	if layer < 0 || layer >= len(e.segs) {
		panic(fmt.Sprintf("zero: block %d of a model the engine knows %d blocks of", layer, len(e.segs)))
	}
	return tensor.RunSegment(tp, x, e.segs[layer], f)
}

// segment is block b's hooks at this engine's stage.
func (e *Engine) segment(b *bucket) tensor.Segment {
	s := tensor.Segment{Recompute: e.cfg.Recompute}
	stage3 := e.cfg.Stage == 3
	if e.cfg.Stage < 2 {
		return s
	}
	s.BeforeBackward = func() {
		e.mustMicro(b, "backward pass")
		if stage3 {
			e.gatherBlock(b, "for its backward pass")
		}
		b.bindGrad(e.zeroed(b.n))
	}
	s.AfterBackward = func() {
		e.reduce(b, e.blockG[:b.n], "after its backward pass")
		b.bindGrad(nil)
		if stage3 {
			e.releaseBlock(b)
		}
	}
	if stage3 {
		s.BeforeForward = func() { e.gatherBlock(b, "for its forward pass") }
		s.AfterForward = func() { e.releaseBlock(b) }
	}
	return s
}

// zeroed is the block gradient scratch, cleared.
func (e *Engine) zeroed(n int) []float32 {
	g := e.blockG[:n]
	clear(g)
	return g
}

// gatherBlock gathers a stage-3 block into the block scratch (nothing
// when Gather holds every parameter).
func (e *Engine) gatherBlock(b *bucket, why string) {
	if e.gathered == nil {
		e.mustMicro(b, "forward pass")
		e.gather(b, e.blockW[:b.n], why)
	}
}

// mustMicro panics (a programmer error, as a shape mismatch is) when a
// block runs outside a micro-batch where the engine needs one: a backward
// pass at stages 2 and 3 (its gradients belong to a step), a forward pass
// at stage 3 without Gather (the rest bucket is released).
func (e *Engine) mustMicro(b *bucket, pass string) {
	if !e.inMicro {
		panic(fmt.Sprintf("zero: rank %d: %s's %s outside a micro-batch (BeginMicro…EndMicro) at stage %d; at stage 3 a pass outside training needs Gather", e.rank, b.name, pass, e.cfg.Stage))
	}
}

// releaseBlock releases a stage-3 block (not while Gather holds it).
func (e *Engine) releaseBlock(b *bucket) {
	if e.gathered == nil {
		e.release(b)
	}
}

// gather all-gathers bucket b's parameter shards into full and binds the
// tensors to it. After a failure (this one or an earlier) it binds them
// all the same, so that the pass runs to its end on stale values, and the
// step fails with the first error.
func (e *Engine) gather(b *bucket, full []float32, why string) {
	if e.err == nil {
		if err := e.comm.AllGather(e.context(), b.wShard, full); err != nil {
			e.fail(fmt.Errorf("gather %s %s: %w", b.name, why, err))
		}
	}
	b.bind(full)
}

// reduce reduce-scatters the full gradients g of bucket b over the ranks
// and adds this rank's shard of the sum to its accumulator.
func (e *Engine) reduce(b *bucket, g []float32, why string) {
	if e.err != nil {
		return
	}
	sh := e.tmp[:b.shard.Len()]
	if err := e.comm.ReduceScatter(e.context(), g, sh); err != nil {
		e.fail(fmt.Errorf("reduce-scatter %s's gradients %s: %w", b.name, why, err))
		return
	}
	for i, x := range sh {
		b.acc[i] += x
	}
}

// context is the open micro-batch's context (Background outside one).
func (e *Engine) context() context.Context {
	if e.ctx != nil {
		return e.ctx
	}
	return context.Background()
}

// fail records the first failure of the current step, with the rank and
// step.
func (e *Engine) fail(err error) {
	if e.err == nil {
		e.err = e.wrap(err)
	}
}

// errorf is an error naming this rank and the current step.
func (e *Engine) errorf(format string, args ...any) error {
	return e.wrap(fmt.Errorf(format, args...))
}

func (e *Engine) wrap(err error) error {
	return fmt.Errorf("zero: rank %d, step %d: %w", e.rank, e.steps+1, err)
}
