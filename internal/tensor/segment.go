package tensor

// Segment says how RunSegment runs one part of a forward pass (a
// transformer block): whether its activations are kept for the backward
// pass or recomputed there (gradient checkpointing), and what runs around
// it. The hooks let a training engine gather a block's sharded parameters
// just before they are read and release them right after (ZeRO stage 3);
// nil hooks are skipped.
type Segment struct {
	// Recompute drops the segment's activations after the forward pass and
	// recomputes them, on a tape of its own, in the backward pass. The
	// recomputation runs the very kernels of the first pass on the same
	// inputs, so gradients are bit-identical to keeping the activations.
	Recompute bool
	// BeforeForward and AfterForward run around the forward pass (and
	// around it alone in inference mode, with a nil tape).
	BeforeForward, AfterForward func()
	// BeforeBackward runs before the segment's backward steps (and before
	// the recomputation), AfterBackward after them: by then every gradient
	// the segment contributes to its parameters has been accumulated.
	// Each runs once per backward pass of the tape; a recomputed segment
	// whose output needs no gradient records nothing, and they do not run.
	BeforeBackward, AfterBackward func()
}

// RunSegment returns f(tp, x) run as segment s; with a nil tape it runs
// f(nil, x) between the forward hooks. f must read no tensor of the
// forward pass but x and the segment's own parameters (a transformer
// block reads only its input and weights), must leave x unchanged, and
// must compute the same thing when run again (no randomness; constants it
// captures, such as positions or segment ids, unchanged until the
// backward pass). x may also be read outside the segment: the recomputed
// backward accumulates into x.Grad in place, at the point of the tape
// where the kept steps would have, so gradients keep their bits.
func RunSegment(tp *Tape, x *Tensor, s Segment, f func(tp *Tape, x *Tensor) *Tensor) *Tensor {
	if tp == nil || !s.Recompute {
		return runKept(tp, x, s, f)
	}
	call(s.BeforeForward)
	// Forward on a throw-away recording tape, so that exactly the kernels
	// of a recorded pass run (an op may pick another kernel when it
	// saves nothing for backward), then drop what it recorded.
	first := NewTape()
	y := f(first, x)
	first.Reset()
	call(s.AfterForward)
	if !y.RequiresGrad {
		return y
	}
	tp.steps = append(tp.steps, func() {
		call(s.BeforeBackward)
		// x's stand-in shares its data and its gradient buffer, so the
		// recomputed backward accumulates into x.Grad in the same order.
		xr := &Tensor{Shape: x.Shape, Data: x.Data, RequiresGrad: x.RequiresGrad}
		if x.RequiresGrad {
			xr.Grad = x.ensureGrad()
		}
		again := NewTape()
		yr := f(again, xr)
		copy(yr.ensureGrad(), y.Grad)
		again.BackwardFrom()
		call(s.AfterBackward)
	})
	return y
}

// runKept runs f on tp itself, the hooks placed on the tape around the
// segment's backward steps.
func runKept(tp *Tape, x *Tensor, s Segment, f func(tp *Tape, x *Tensor) *Tensor) *Tensor {
	call(s.BeforeForward)
	if tp != nil && s.AfterBackward != nil {
		tp.steps = append(tp.steps, s.AfterBackward) // runs after the segment's steps
	}
	y := f(tp, x)
	if tp != nil && s.BeforeBackward != nil {
		tp.steps = append(tp.steps, s.BeforeBackward) // runs before them
	}
	call(s.AfterForward)
	return y
}

func call(fn func()) {
	if fn != nil {
		fn()
	}
}
