package tensor

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/par"
)

// Embedding returns rows ids of table [V, C]: [len(ids), C]. The backward
// scatter-adds into the table gradient column block by column block, so the
// sum order (and the result) does not depend on thread timing.
func Embedding(tp *Tape, table *Tensor, ids []int32) *Tensor {
	v, c := table.Shape[0], table.Shape[1]
	out := tp.outputRaw([]int{len(ids), c}, table)
	for i, id := range ids {
		if id < 0 || int(id) >= v {
			panic(fmt.Sprintf("tensor: Embedding: id %d out of range for table %v", id, table.Shape))
		}
		copy(out.Data[i*c:(i+1)*c], table.Data[int(id)*c:int(id+1)*c])
	}
	tp.record(out, func() {
		g := table.ensureGrad()
		parallelCols(c, func(c0, c1 int) {
			for i, id := range ids {
				addTo(g[int(id)*c+c0:int(id)*c+c1], out.Grad[i*c+c0:i*c+c1])
			}
		})
	})
	tp.ensureOutGrad(out)
	return out
}

// RMSNorm returns x / sqrt(mean(x²) + eps) ⊙ w over the last dimension
// (Zhang & Sennrich 2019), w [C].
func RMSNorm(tp *Tape, x, w *Tensor, eps float32) *Tensor {
	rows, cols := x.Rows()
	if len(w.Data) != cols {
		panic(fmt.Sprintf("tensor: RMSNorm: x %v with weight %v", x.Shape, w.Shape))
	}
	out := tp.outputRaw(x.Shape, x, w)
	rstd := tp.allocRaw(rows)
	be := Active()
	be.RMSNormForward(x.Data, w.Data, out.Data, rstd, rows, cols, eps)
	tp.record(out, func() {
		be.RMSNormBackward(x.Data, w.Data, rstd, out.Grad, gradOrNil(x), gradOrNil(w), rows, cols)
	})
	tp.ensureOutGrad(out)
	return out
}

// LayerNorm returns (x − μ)/sqrt(σ² + eps) ⊙ w + b over the last dimension
// (Ba et al. 2016), w and b [C]; b may be nil.
func LayerNorm(tp *Tape, x, w, b *Tensor, eps float32) *Tensor {
	rows, cols := x.Rows()
	if len(w.Data) != cols || (b != nil && len(b.Data) != cols) {
		panic(fmt.Sprintf("tensor: LayerNorm: x %v with weight %v", x.Shape, w.Shape))
	}
	out := tp.outputRaw(x.Shape, x, w, b)
	mean, rstd := tp.allocRaw(rows), tp.allocRaw(rows)
	var bd []float32
	if b != nil {
		bd = b.Data
	}
	be := Active()
	be.LayerNormForward(x.Data, w.Data, bd, out.Data, mean, rstd, rows, cols, eps)
	tp.record(out, func() {
		be.LayerNormBackward(x.Data, w.Data, mean, rstd, out.Grad, gradOrNil(x), gradOrNil(w), gradOrNil(b), rows, cols)
	})
	tp.ensureOutGrad(out)
	return out
}

// gradOrNil returns t's gradient buffer if t needs one, else nil.
func gradOrNil(t *Tensor) []float32 {
	if t == nil || !t.RequiresGrad {
		return nil
	}
	return t.ensureGrad()
}

const (
	geluC = 0.7978845608028654 // sqrt(2/π)
	geluA = 0.044715
)

// GELU returns the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715x³)))
// (Hendrycks & Gimpel 2016), as GPT-2's "gelu_new".
func GELU(tp *Tape, x *Tensor) *Tensor {
	out := tp.outputRaw(x.Shape, x)
	th := tp.allocRaw(len(x.Data)) // tanh(·), kept for the backward pass
	parallelElems(len(x.Data), func(lo, hi int) { geluForward(x.Data[lo:hi], out.Data[lo:hi], th[lo:hi]) })
	tp.record(out, func() {
		gx, overwrite := x.gradForWrite()
		parallelElems(len(x.Data), func(lo, hi int) {
			x, th, dy, dx := x.Data[lo:hi], th[lo:hi], out.Grad[lo:hi], gx[lo:hi]
			geluBackwardScalar(x, th, dy, dx, overwrite, geluBackwardSIMD(x, th, dy, dx, overwrite))
		})
	})
	tp.ensureOutGrad(out)
	return out
}

// geluBackwardScalar writes (overwrite) or adds dx = dy·GELU'(x) from
// element from on, with th = tanh(√(2/π)(x + 0.044715x³)) saved by the
// forward pass; from 0 it is the twin geluBackwardSIMD is tested against.
func geluBackwardScalar(x, th, dy, dx []float32, overwrite bool, from int) {
	for i := from; i < len(x); i++ {
		v, t := x[i], th[i]
		d := 0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*geluA*v*v)
		if overwrite {
			dx[i] = dy[i] * d
		} else {
			dx[i] += dy[i] * d
		}
	}
}

// geluForward writes y = GELU(x) and th = tanh(√(2/π)(x + 0.044715x³)):
// SIMD for the bulk where available, the scalar twin for the rest.
func geluForward(x, y, th []float32) { geluScalar(x, y, th, geluForwardSIMD(x, y, th)) }

// geluScalar is geluForward in pure Go from element from on; from 0 it is
// the twin tests compare the SIMD kernel with.
func geluScalar(x, y, th []float32, from int) {
	for i := from; i < len(x); i++ {
		v := x[i]
		t := Tanhf(geluC * (v + geluA*v*v*v))
		th[i] = t
		y[i] = 0.5 * v * (1 + t)
	}
}

// SiLU returns x·σ(x).
func SiLU(tp *Tape, x *Tensor) *Tensor {
	return unary(tp, x, func(v float32) float32 { return v * Sigmoidf(v) }, func(v, _ float32) float32 {
		s := Sigmoidf(v)
		return s * (1 + v*(1-s))
	})
}

// SwiGLU returns silu(gate) ⊙ up (Shazeer 2020), the Llama MLP activation.
func SwiGLU(tp *Tape, gate, up *Tensor) *Tensor {
	mustSameShape("SwiGLU", gate, up)
	out := tp.outputRaw(gate.Shape, gate, up)
	parallelElems(len(gate.Data), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := gate.Data[i]
			out.Data[i] = g * Sigmoidf(g) * up.Data[i]
		}
	})
	tp.record(out, func() {
		gg, gu := gradOrNil(gate), gradOrNil(up)
		parallelElems(len(gate.Data), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g, s := gate.Data[i], Sigmoidf(gate.Data[i])
				d := out.Grad[i]
				if gg != nil {
					gg[i] += d * up.Data[i] * s * (1 + g*(1-s))
				}
				if gu != nil {
					gu[i] += d * g * s
				}
			}
		})
	})
	tp.ensureOutGrad(out)
	return out
}

// LogSoftmax returns z − logsumexp(z) over the last dimension.
func LogSoftmax(tp *Tape, x *Tensor) *Tensor {
	rows, cols := x.Rows()
	out := tp.output(x.Shape, x)
	par.For(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			z, o := x.Data[r*cols:(r+1)*cols], out.Data[r*cols:(r+1)*cols]
			l := logSumExp(z)
			for j, v := range z {
				o[j] = v - l
			}
		}
	})
	tp.record(out, func() { // dx = dy − softmax·Σdy
		gx := x.ensureGrad()
		par.For(rows, rowGrain, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				o, dy, dx := out.Data[r*cols:(r+1)*cols], out.Grad[r*cols:(r+1)*cols], gx[r*cols:(r+1)*cols]
				var s float32
				for _, g := range dy {
					s += g
				}
				for j, g := range dy {
					dx[j] += g - Expf(o[j])*s
				}
			}
		})
	})
	tp.ensureOutGrad(out)
	return out
}

// Softmax returns e^{z−max}/Σ over the last dimension.
func Softmax(tp *Tape, x *Tensor) *Tensor {
	rows, cols := x.Rows()
	out := tp.output(x.Shape, x)
	par.For(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(x.Data[r*cols:(r+1)*cols], out.Data[r*cols:(r+1)*cols])
		}
	})
	tp.record(out, func() { // dx = p ⊙ (dy − Σ p·dy)
		gx := x.ensureGrad()
		par.For(rows, rowGrain, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				p, dy, dx := out.Data[r*cols:(r+1)*cols], out.Grad[r*cols:(r+1)*cols], gx[r*cols:(r+1)*cols]
				var s float32
				for j, g := range dy {
					s += g * p[j]
				}
				for j, g := range dy {
					dx[j] += p[j] * (g - s)
				}
			}
		})
	})
	tp.ensureOutGrad(out)
	return out
}

// softmaxRow writes softmax(z) into p (which may alias z).
func softmaxRow(z, p []float32) {
	m := z[0]
	for _, v := range z {
		m = max(m, v)
	}
	inv := 1 / expShift(z, p, m)
	for j := range p {
		p[j] *= inv
	}
}

// TokenLogProbs returns log π(target | context) per row: logits [..., V]
// and targets (one per row) → [...]. Rows whose target is negative (e.g.
// −100, "ignore") give 0 and no gradient. This fused op is the quantity
// every RL loss starts from; it never materialises the [N, V] log-softmax.
func TokenLogProbs(tp *Tape, logits *Tensor, targets []int32) *Tensor {
	rows, vocab := logits.Rows()
	if len(targets) != rows {
		panic(fmt.Sprintf("tensor: TokenLogProbs: %d targets for logits %v", len(targets), logits.Shape))
	}
	for _, t := range targets {
		if int(t) >= vocab {
			panic(fmt.Sprintf("tensor: TokenLogProbs: target %d out of range for logits %v", t, logits.Shape))
		}
	}
	out := tp.output(logits.Shape[:len(logits.Shape)-1], logits)
	lse := tp.allocRaw(rows)
	be := Active()
	be.TokenLogProbsForward(logits.Data, targets, out.Data, lse, rows, vocab)
	tp.record(out, func() {
		be.TokenLogProbsBackward(logits.Data, targets, lse, out.Grad, logits.ensureGrad(), rows, vocab)
	})
	tp.ensureOutGrad(out)
	return out
}

// CrossEntropy returns the mean of −log softmax(logits)[target] over rows
// whose target is ≥ 0 (targets < 0 are ignored, as ignore_index=−100).
func CrossEntropy(tp *Tape, logits *Tensor, targets []int32) *Tensor {
	lp := TokenLogProbs(tp, logits, targets)
	mask := New(lp.Shape...)
	for i, t := range targets {
		mask.Data[i] = b2f(t >= 0)
	}
	return Scale(tp, MaskedMean(tp, lp, mask), -1)
}

// Entropy returns H(softmax(z)) = −Σ p log p per row: [..., V] → [...].
func Entropy(tp *Tape, logits *Tensor) *Tensor {
	rows, cols := logits.Rows()
	out := tp.output(logits.Shape[:len(logits.Shape)-1], logits)
	par.For(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			z := logits.Data[r*cols : (r+1)*cols]
			l := logSumExp(z)
			var h float32
			for _, v := range z {
				h -= Expf(v-l) * (v - l)
			}
			out.Data[r] = h
		}
	})
	tp.record(out, func() { // ∂H/∂z_j = −p_j·(log p_j + H)
		gz := logits.ensureGrad()
		par.For(rows, rowGrain, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				z, dz := logits.Data[r*cols:(r+1)*cols], gz[r*cols:(r+1)*cols]
				l, h, g := logSumExp(z), out.Data[r], out.Grad[r]
				for j, v := range z {
					dz[j] -= g * Expf(v-l) * (v - l + h)
				}
			}
		})
	})
	tp.ensureOutGrad(out)
	return out
}
