package tensor

import "fmt"

// Tape records the backward closures of ops in execution order.
//
// A nil *Tape is valid everywhere: ops then record nothing (inference mode).
// A Tape is not safe for concurrent use; build one loss per goroutine.
type Tape struct {
	steps []func()
	pool  *bufPool // nil: ops allocate from the Go heap
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// NewPooledTape returns an empty tape whose ops take their buffers (outputs,
// output gradients, activations saved for backward) from a pool that
// Recycle refills. A training loop that keeps one such tape and calls
// Recycle before each micro-batch runs every step in the memory of the
// last one: no fresh pages, no zeroing by the allocator, little garbage.
func NewPooledTape() *Tape { return &Tape{pool: &bufPool{free: map[int][][]float32{}}} }

// Recycled returns *tp recycled, first making a pooled tape there if
// there is none: the one line a training loop that keeps one tape for all
// its micro-batches needs (tp := tensor.Recycled(&t.tape)).
func Recycled(tp **Tape) *Tape {
	if *tp == nil {
		*tp = NewPooledTape()
	}
	(*tp).Recycle()
	return *tp
}

// Recycle declares every tensor that ops on this tape made since the last
// Recycle dead, and hands their memory to the next ops; it also drops
// recorded steps (Reset). The caller must not read those tensors (outputs,
// gradients of outputs) afterwards: copy out what outlives the step first.
// Parameters and their gradients are never pooled. A tape without a pool
// only resets.
func (tp *Tape) Recycle() {
	tp.Reset()
	if tp.pool != nil {
		tp.pool.recycle()
	}
}

// PoisonRecycled makes the pool fill buffers with NaN when they are
// recycled or first made, so a tensor read after Recycle, or an op that
// reads an output buffer it did not write, shows up as NaN (for tests).
func (tp *Tape) PoisonRecycled() {
	if tp.pool != nil {
		tp.pool.poison = true
	}
}

// alloc returns n zeroed floats, from the pool when the tape has one.
func (tp *Tape) alloc(n int) []float32 {
	if tp == nil || tp.pool == nil {
		return make([]float32, n)
	}
	b := tp.pool.get(n)
	parallelClear(b)
	return b
}

// allocRaw returns n floats whose values are unspecified: for buffers the
// caller overwrites entirely.
func (tp *Tape) allocRaw(n int) []float32 {
	if tp == nil || tp.pool == nil {
		return make([]float32, n)
	}
	return tp.pool.get(n)
}

// record adds fn to the tape when gradients are wanted for out. It returns
// whether it did, so ops can skip saving activations otherwise.
//
// A step first clears out's gradient if no later step wrote it (a stale
// pooled buffer stands for zeros), so every closure may read out.Grad.
func (tp *Tape) record(out *Tensor, fn func()) {
	if tp == nil || !out.RequiresGrad {
		return
	}
	if tp.pool == nil {
		tp.steps = append(tp.steps, fn)
		return
	}
	tp.steps = append(tp.steps, func() {
		out.ensureGrad()
		fn()
	})
}

// on reports whether an op with these inputs must record a backward step.
func (tp *Tape) on(inputs ...*Tensor) bool {
	if tp == nil {
		return false
	}
	for _, t := range inputs {
		if t != nil && t.RequiresGrad {
			return true
		}
	}
	return false
}

// Len is the number of recorded steps.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.steps)
}

// Backward seeds ∂loss/∂loss = 1 for a one-element loss and runs the recorded
// steps in reverse, accumulating into every Grad. The tape is cleared after,
// so it can be reused for the next micro-batch.
func (tp *Tape) Backward(loss *Tensor) {
	if len(loss.Data) != 1 {
		panic(fmt.Sprintf("tensor: Backward needs a one-element loss, got shape %v", loss.Shape))
	}
	loss.ensureGrad()[0] += 1
	tp.BackwardFrom()
}

// BackwardFrom runs the recorded steps in reverse with output gradients
// already seeded by the caller (e.g. a vector-Jacobian product), then clears
// the tape. Seed through SeedGrad: a pooled tape's output gradients start
// stale, and values written straight into Grad would be cleared.
func (tp *Tape) BackwardFrom() {
	for i := len(tp.steps) - 1; i >= 0; i-- {
		tp.steps[i]()
		tp.steps[i] = nil
	}
	tp.steps = tp.steps[:0]
}

// Reset drops recorded steps without running them.
func (tp *Tape) Reset() {
	clear(tp.steps)
	tp.steps = tp.steps[:0]
}

// output makes the result tensor of an op: it requires grad when any input
// does and a tape is recording.
func (tp *Tape) output(shape []int, inputs ...*Tensor) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: tp.alloc(numel(shape)), RequiresGrad: tp.on(inputs...)}
}

// outputRaw is output for ops that write every element of the result.
func (tp *Tape) outputRaw(shape []int, inputs ...*Tensor) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: tp.allocRaw(numel(shape)), RequiresGrad: tp.on(inputs...)}
}

// ensureOutGrad gives a recording op's output its gradient buffer: a
// zeroed one, or on a pooled tape a stale one that its first writer in the
// backward pass overwrites instead of clearing it first.
func (tp *Tape) ensureOutGrad(out *Tensor) {
	if !out.RequiresGrad || out.Grad != nil {
		return
	}
	if tp == nil || tp.pool == nil {
		out.Grad = make([]float32, len(out.Data))
		return
	}
	out.Grad, out.gradStale = tp.pool.get(len(out.Data)), true
}
