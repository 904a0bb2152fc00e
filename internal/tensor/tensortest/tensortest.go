// Package tensortest holds test helpers for the tensor engine: seeded
// random tensors, closeness checks, and finite-difference gradient checks.
package tensortest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Rand returns a seeded generator (PCG), so tests are reproducible; it is
// tensor.NewRand, which commands use.
func Rand(seed uint64) *rand.Rand { return tensor.NewRand(seed) }

// Uniform returns a tensor of values uniform in [lo, hi).
func Uniform(r *rand.Rand, lo, hi float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = lo + (hi-lo)*r.Float32()
	}
	return t
}

// MaxRelErr returns max_i |got−want| / max(|want|_∞, floor): the error
// relative to the largest reference magnitude, so near-zero elements of a
// large tensor do not dominate.
func MaxRelErr(got, want []float32, floor float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	scale := floor
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	var e float64
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		e = math.Max(e, d/scale)
	}
	return e
}

// samePooled runs loss twice on one pooled tape that poisons its buffers
// with NaN (the second run in the first one's memory) and wants the
// gradients of the plain tape the inputs hold, value for value.
func samePooled(loss func(tp *tensor.Tape) *tensor.Tensor, inputs []*tensor.Tensor) error {
	want := make([][]float32, len(inputs))
	for k, in := range inputs {
		want[k] = in.Grad
	}
	defer func() {
		for k, in := range inputs {
			in.Grad = want[k]
		}
	}()
	tp := tensor.NewPooledTape()
	tp.PoisonRecycled()
	for pass := range 2 {
		for _, in := range inputs {
			in.Grad = nil
		}
		tp.Recycle()
		tp.Backward(loss(tp))
		for k, in := range inputs {
			for i := range want[k] {
				if in.Grad[i] != want[k][i] {
					return fmt.Errorf("pooled tape, pass %d: input %d %v element %d: gradient %g, plain tape %g", pass, k, in.Shape, i, in.Grad[i], want[k][i])
				}
			}
		}
	}
	return nil
}

// GradCheck compares the analytic gradients of loss(f(inputs)) with
// central finite differences, for every element of every input that
// requires grad. The loss is Σ f(x) ⊙ R with a fixed random R, so every
// output element matters. It returns a descriptive error for the worst
// element beyond tol (relative to max(1, |grad|)).
func GradCheck(f func(tp *tensor.Tape) *tensor.Tensor, inputs []*tensor.Tensor, h, tol float64) error {
	var proj *tensor.Tensor
	loss := func(tp *tensor.Tape) *tensor.Tensor {
		out := f(tp)
		if proj == nil {
			r := Rand(42)
			proj = Uniform(r, -1, 1, out.Shape...)
		}
		return tensor.Sum(tp, tensor.Mul(tp, out, proj))
	}
	for _, in := range inputs {
		in.Grad = nil
	}
	tp := tensor.NewTape()
	tp.Backward(loss(tp))
	if err := samePooled(loss, inputs); err != nil {
		return err
	}
	for k, in := range inputs {
		if !in.RequiresGrad {
			continue
		}
		if in.Grad == nil {
			return fmt.Errorf("input %d %v: no gradient was produced", k, in.Shape)
		}
		for i := range in.Data {
			orig := in.Data[i]
			in.Data[i] = orig + float32(h)
			up := float64(loss(nil).Item())
			in.Data[i] = orig - float32(h)
			down := float64(loss(nil).Item())
			in.Data[i] = orig
			num := (up - down) / (2 * h)
			ana := float64(in.Grad[i])
			if d := math.Abs(num - ana); d > tol*math.Max(1, math.Abs(ana)) {
				return fmt.Errorf("input %d %v element %d: analytic %.6g, numeric %.6g", k, in.Shape, i, ana, num)
			}
		}
	}
	return nil
}
