package tensor

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/par"
)

// elemGrain is the smallest chunk of an elementwise loop worth a goroutine.
const elemGrain = 1 << 14

// parallelElems runs fn over [0, n) in chunks across threads.
func parallelElems(n int, fn func(lo, hi int)) { par.For(n, elemGrain, fn) }

// unary applies y = f(x) elementwise; df(x, y) is dy/dx.
func unary(tp *Tape, x *Tensor, f func(float32) float32, df func(x, y float32) float32) *Tensor {
	out := tp.outputRaw(x.Shape, x)
	parallelElems(len(x.Data), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out.Data[i] = f(x.Data[i])
		}
	})
	tp.record(out, func() {
		gx := x.ensureGrad()
		parallelElems(len(x.Data), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gx[i] += out.Grad[i] * df(x.Data[i], out.Data[i])
			}
		})
	})
	tp.ensureOutGrad(out)
	return out
}

// binary applies z = f(a, b) elementwise on same-shaped tensors, with
// partials da(a, b, z) and db(a, b, z).
func binary(tp *Tape, op string, a, b *Tensor, f func(a, b float32) float32, da, db func(a, b, z float32) float32) *Tensor {
	mustSameShape(op, a, b)
	out := tp.outputRaw(a.Shape, a, b)
	parallelElems(len(a.Data), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out.Data[i] = f(a.Data[i], b.Data[i])
		}
	})
	tp.record(out, func() {
		if a.RequiresGrad {
			ga := a.ensureGrad()
			parallelElems(len(ga), func(lo, hi int) {
				for i := lo; i < hi; i++ {
					ga[i] += out.Grad[i] * da(a.Data[i], b.Data[i], out.Data[i])
				}
			})
		}
		if b.RequiresGrad {
			gb := b.ensureGrad()
			parallelElems(len(gb), func(lo, hi int) {
				for i := lo; i < hi; i++ {
					gb[i] += out.Grad[i] * db(a.Data[i], b.Data[i], out.Data[i])
				}
			})
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// addOrCopy adds g into t's gradient, or copies it there when nothing has
// written that gradient yet.
func addOrCopy(t *Tensor, g []float32) {
	dst, overwrite := t.gradForWrite()
	if overwrite {
		parallelElems(len(g), func(lo, hi int) { copy(dst[lo:hi], g[lo:hi]) })
		return
	}
	addInto(dst, g)
}

// parallelClear zeroes x across threads.
func parallelClear(x []float32) { parallelElems(len(x), func(lo, hi int) { clear(x[lo:hi]) }) }

// Add returns a + b (same shape). It is binary's a + b with the unit
// partials folded in: the residual stream's op, on every block's path.
func Add(tp *Tape, a, b *Tensor) *Tensor {
	mustSameShape("Add", a, b)
	out := tp.outputRaw(a.Shape, a, b)
	parallelElems(len(a.Data), func(lo, hi int) {
		o, x, y := out.Data[lo:hi], a.Data[lo:hi], b.Data[lo:hi]
		for i := range o {
			o[i] = x[i] + y[i]
		}
	})
	tp.record(out, func() {
		if a.RequiresGrad {
			addOrCopy(a, out.Grad)
		}
		if b.RequiresGrad {
			addOrCopy(b, out.Grad)
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// Sub returns a − b (same shape).
func Sub(tp *Tape, a, b *Tensor) *Tensor {
	return binary(tp, "Sub", a, b, func(a, b float32) float32 { return a - b },
		func(_, _, _ float32) float32 { return 1 }, func(_, _, _ float32) float32 { return -1 })
}

// Mul returns a ⊙ b (same shape).
func Mul(tp *Tape, a, b *Tensor) *Tensor {
	return binary(tp, "Mul", a, b, func(a, b float32) float32 { return a * b },
		func(_, b, _ float32) float32 { return b }, func(a, _, _ float32) float32 { return a })
}

// Div returns a / b (same shape).
func Div(tp *Tape, a, b *Tensor) *Tensor {
	return binary(tp, "Div", a, b, func(a, b float32) float32 { return a / b },
		func(_, b, _ float32) float32 { return 1 / b }, func(a, b, _ float32) float32 { return -a / (b * b) })
}

// Minimum returns min(a, b) elementwise; the gradient goes to the smaller
// input (to a on ties, as torch.min does for the first argument).
func Minimum(tp *Tape, a, b *Tensor) *Tensor {
	return binary(tp, "Minimum", a, b, func(a, b float32) float32 { return min(a, b) },
		func(a, b, _ float32) float32 { return b2f(a <= b) }, func(a, b, _ float32) float32 { return b2f(b < a) })
}

// Maximum returns max(a, b) elementwise; ties send the gradient to a.
func Maximum(tp *Tape, a, b *Tensor) *Tensor {
	return binary(tp, "Maximum", a, b, func(a, b float32) float32 { return max(a, b) },
		func(a, b, _ float32) float32 { return b2f(a >= b) }, func(a, b, _ float32) float32 { return b2f(b > a) })
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// Scale returns s·x.
func Scale(tp *Tape, x *Tensor, s float32) *Tensor {
	return unary(tp, x, func(x float32) float32 { return s * x }, func(_, _ float32) float32 { return s })
}

// AddScalar returns x + s.
func AddScalar(tp *Tape, x *Tensor, s float32) *Tensor {
	return unary(tp, x, func(x float32) float32 { return x + s }, func(_, _ float32) float32 { return 1 })
}

// Exp returns eˣ.
func Exp(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, Expf, func(_, y float32) float32 { return y })
}

// Log returns ln x.
func Log(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, Logf, func(x, _ float32) float32 { return 1 / x })
}

// Square returns x².
func Square(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, func(x float32) float32 { return x * x }, func(x, _ float32) float32 { return 2 * x })
}

// Sigmoid returns σ(x) = 1/(1+e^{−x}).
func Sigmoid(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, Sigmoidf, func(_, y float32) float32 { return y * (1 - y) })
}

// LogSigmoid returns log σ(x) = −softplus(−x), computed stably.
func LogSigmoid(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, logSigmoidf, func(x, _ float32) float32 { return 1 - Sigmoidf(x) })
}

func logSigmoidf(x float32) float32 {
	if x >= 0 {
		return -Logf(1 + Expf(-x))
	}
	return x - Logf(1+Expf(x))
}

// Clamp returns x limited to [lo, hi]; the gradient is zero where clamped
// (as torch.clamp).
func Clamp(tp *Tape, x *Tensor, lo, hi float32) *Tensor {
	if lo > hi {
		panic(fmt.Sprintf("tensor: Clamp: lo %v > hi %v", lo, hi))
	}
	return unary(tp, x, func(x float32) float32 { return min(max(x, lo), hi) },
		func(x, _ float32) float32 { return b2f(x >= lo && x <= hi) })
}

// Abs returns |x| (gradient sign(x), 0 at 0).
func Abs(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, func(x float32) float32 { return max(x, -x) }, func(x, _ float32) float32 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	})
}

// Detach returns a copy of x that does not require grad.
func Detach(x *Tensor) *Tensor { return x.Clone() }
