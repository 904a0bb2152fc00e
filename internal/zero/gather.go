package zero

import (
	"context"
	"fmt"
)

// Gather makes every parameter's full data readable on this rank for use
// outside training — export, weight sync to a rollout engine, evaluation
// — until release is called: at stage 3 it all-gathers every bucket into
// buffers it allocates (the whole model, 4 bytes a parameter, freed by
// release); at stages 0–2 the parameters are already whole and it does
// nothing. Every rank must call it (stage 3 runs collectives), between
// steps, and must not change the weights while they are gathered; no
// micro-batch can begin until release. Forward passes through the
// Runner read the gathered weights and gather nothing.
func (e *Engine) Gather(ctx context.Context) (release func(), err error) {
	switch {
	case e.err != nil:
		return nil, e.err
	case e.inMicro:
		return nil, e.errorf("gather: a micro-batch is open")
	case e.gathered != nil:
		return nil, e.errorf("gather: the parameters are gathered already")
	}
	if e.cfg.Stage < 3 {
		return func() {}, nil
	}
	all := make([]float32, e.Count())
	off := 0
	for _, b := range e.buckets {
		full := all[off : off+b.n : off+b.n]
		off += b.n
		if err := e.comm.AllGather(ctx, b.wShard, full); err != nil {
			e.fail(fmt.Errorf("gather %s for use outside training: %w", b.name, err))
			for _, b := range e.buckets {
				e.release(b)
			}
			return nil, e.err
		}
		b.bind(full)
	}
	e.gathered = all
	return func() {
		if e.gathered == nil {
			return
		}
		for _, b := range e.buckets {
			e.release(b)
		}
		e.gathered = nil
	}, nil
}

// Memory is the bytes of training state one rank holds (float32 values,
// 4 bytes each; docs/ZERO.md gives them as formulas).
type Memory struct {
	// Params: the parameters this rank keeps between uses: all of them at
	// stages 0–2, its shard of each bucket at stage 3.
	Params int64
	// Grads: the gradient shard accumulators, plus at stages 0 and 1 the
	// full gradient buffers the backward pass fills.
	Grads int64
	// Optim: AdamW's two moments, whole at stage 0, this rank's shards
	// at stages 1–3.
	Optim int64
	// Scratch: buffers reused every micro-batch: one shard (reduction
	// result), at stages 2 and 3 one block's and the rest bucket's full
	// gradients, at stage 3 one block's and the rest bucket's gathered
	// parameters, the poison of Config.Poison, and Gather's buffers while
	// held.
	Scratch int64
}

// Total is the sum of the four.
func (m Memory) Total() int64 { return m.Params + m.Grads + m.Optim + m.Scratch }

// Memory reports this rank's bytes of training state (peak RSS, which
// adds activations and the Go heap's slack, is the caller's to read).
func (e *Engine) Memory() Memory {
	var m Memory
	for i, b := range e.buckets {
		m.Params += f32Bytes(b.w) + f32Bytes(b.wShard)
		m.Grads += f32Bytes(b.acc)
		m.Optim += f32Bytes(b.m) + f32Bytes(b.v)
		if e.cfg.Stage < 2 || i < e.blocks {
			m.Grads += f32Bytes(b.g)
		} else {
			m.Scratch += f32Bytes(b.g) // the rest bucket's, at stages 2 and 3
		}
	}
	m.Scratch += f32Bytes(e.tmp) + f32Bytes(e.blockW) + f32Bytes(e.blockG) + f32Bytes(e.restW) + f32Bytes(e.poison) + f32Bytes(e.gathered)
	return m
}

func f32Bytes(x []float32) int64 { return 4 * int64(len(x)) }

// GatherOn is Gather for one reader: root gets every parameter whole
// until release, as with Gather, while the other ranks take part in the
// same all-gathers through their reused block scratch and keep nothing
// (their parameters stay released). It is how rank 0 alone writes the
// final model or a checkpoint's model file without every rank holding
// 4 bytes a parameter more. Every rank must call it with the same root.
func (e *Engine) GatherOn(ctx context.Context, root int) (release func(), err error) {
	if root < 0 || root >= e.size {
		return nil, e.errorf("gather on rank %d of %d", root, e.size)
	}
	if e.rank == root || e.cfg.Stage < 3 {
		return e.Gather(ctx)
	}
	switch {
	case e.err != nil:
		return nil, e.err
	case e.inMicro:
		return nil, e.errorf("gather: a micro-batch is open")
	case e.gathered != nil:
		return nil, e.errorf("gather: the parameters are gathered already")
	}
	for i, b := range e.buckets {
		scratch := e.blockW
		if i >= e.blocks {
			scratch = e.restW
		}
		if err := e.comm.AllGather(ctx, b.wShard, scratch[:b.n]); err != nil {
			e.fail(fmt.Errorf("gather %s for rank %d: %w", b.name, root, err))
			return nil, e.err
		}
	}
	return func() {}, nil
}
