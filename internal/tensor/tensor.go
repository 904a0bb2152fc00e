// Package tensor is gorlhf's compute engine: f32 tensors, coarse ops with
// hand-written backward passes, and a small tape that composes them.
//
// The design follows llm.c: each op (matmul, attention, RMSNorm, fused
// log-prob of the target token, ...) has a forward kernel and a backward
// kernel written by hand, and the Tape only records, in order, the closures
// that run those backward kernels. Losses built from ops (cross-entropy,
// Bradley–Terry, DPO, PPO) therefore get gradients without deriving the whole
// model by hand, while every heavy kernel stays a tight loop.
//
// Tensors are contiguous, row-major f32 with an explicit shape. Shape
// mismatches are programmer errors and panic with both shapes in the message.
// Heavy kernels run through a Backend (see backend.go) and use every core
// (package par), with results that are bit-identical for a fixed thread count.
//
// Shape glossary: B batch, T tokens, C hidden size, H heads, Hkv KV heads,
// D head dim, V vocab, N = B·T rows.
package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Tensor is a contiguous row-major f32 array with an optional gradient.
type Tensor struct {
	Shape []int
	Data  []float32
	// Grad accumulates ∂loss/∂Data during Tape.Backward. It is allocated
	// (zeroed) when a tape first needs it; nil means "no gradient yet".
	Grad []float32
	// RequiresGrad marks leaves (parameters) and every op output computed
	// from one. Ops record backward closures only for such outputs.
	RequiresGrad bool
	// gradStale says Grad holds leftovers from a pooled buffer and stands
	// for zeros: the first backward step that reaches it overwrites it
	// whole (gradForWrite) or clears it first (ensureGrad).
	gradStale bool
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numel(shape))}
}

// FromSlice wraps data (not copied) with a shape; len(data) must match.
func FromSlice(data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor: FromSlice: %d values do not fill shape %v (%d)", len(data), shape, n))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Param returns a zero tensor that requires grad (a trainable leaf).
func Param(shape ...int) *Tensor {
	t := New(shape...)
	t.RequiresGrad = true
	return t
}

// Scalar returns a 0-d tensor (shape []) holding v.
func Scalar(v float32) *Tensor { return &Tensor{Shape: []int{}, Data: []float32{v}} }

// NewRand returns a PCG generator seeded from seed alone, the source of
// reproducible random tensors (Randn) and weights (model Init) in tests
// and benchmarks.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Randn returns a tensor of N(0, std²) values from r.
func Randn(r *rand.Rand, std float32, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64()) * std
	}
	return t
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// Numel is the number of elements.
func (t *Tensor) Numel() int { return len(t.Data) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float32 {
	if len(t.Data) != 1 {
		panic(fmt.Sprintf("tensor: Item on shape %v", t.Shape))
	}
	return t.Data[0]
}

// Rows returns the product of all dimensions but the last, and the last one.
func (t *Tensor) Rows() (rows, cols int) {
	if len(t.Shape) == 0 {
		return 1, 1
	}
	cols = t.Shape[len(t.Shape)-1]
	if cols == 0 {
		return 0, 0
	}
	return len(t.Data) / cols, cols
}

// Clone returns a deep copy of the data (no grad, no RequiresGrad).
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// ensureGrad returns the gradient buffer for accumulation (+=), making a
// zero one if there is none and clearing a stale one.
func (t *Tensor) ensureGrad() []float32 {
	switch {
	case t.Grad == nil:
		t.Grad = make([]float32, len(t.Data))
	case t.gradStale:
		parallelClear(t.Grad)
		t.gradStale = false
	}
	return t.Grad
}

// SeedGrad returns t's gradient buffer, zeroed if nothing has written it
// yet, for a caller seeding output gradients before Tape.BackwardFrom.
func (t *Tensor) SeedGrad() []float32 { return t.ensureGrad() }

// gradForWrite returns the gradient buffer for a backward step that writes
// all of it, and whether it may overwrite (=) instead of accumulate (+=):
// true when the buffer is stale, i.e. no step has written it yet. Writing
// v where the accumulation would give 0 + v keeps the bits (but for the
// sign of a zero gradient).
func (t *Tensor) gradForWrite() (g []float32, overwrite bool) {
	if t.gradStale {
		t.gradStale = false
		return t.Grad, true
	}
	return t.ensureGrad(), false
}

// ZeroGrad sets the gradient to zero, keeping its buffer.
func (t *Tensor) ZeroGrad() { parallelClear(t.Grad) }

// String prints the shape and the first few values.
func (t *Tensor) String() string {
	n := min(len(t.Data), 6)
	return fmt.Sprintf("Tensor%v%v", t.Shape, t.Data[:n])
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustSameShape(op string, a, b *Tensor) {
	if !SameShape(a.Shape, b.Shape) {
		panic(fmt.Sprintf("tensor: %s: shape mismatch %v vs %v", op, a.Shape, b.Shape))
	}
}

// HasNonFinite reports whether any value is NaN or ±Inf.
func HasNonFinite(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return true
		}
	}
	return false
}
