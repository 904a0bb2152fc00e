package tensor

import "fmt"

// Tape records the backward closures of ops in execution order.
//
// A nil *Tape is valid everywhere: ops then record nothing (inference mode).
// A Tape is not safe for concurrent use; build one loss per goroutine.
type Tape struct {
	steps []func()
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// record adds fn to the tape when gradients are wanted for out. It returns
// whether it did, so ops can skip saving activations otherwise.
func (tp *Tape) record(out *Tensor, fn func()) {
	if tp == nil || !out.RequiresGrad {
		return
	}
	tp.steps = append(tp.steps, fn)
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
// the tape.
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
	out := New(shape...)
	out.RequiresGrad = tp.on(inputs...)
	return out
}
