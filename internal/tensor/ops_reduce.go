package tensor

import "fmt"

// Sum returns Σ x as a scalar. Accumulation is in float64 for accuracy.
func Sum(tp *Tape, x *Tensor) *Tensor {
	out := tp.output([]int{}, x)
	var s float64
	for _, v := range x.Data {
		s += float64(v)
	}
	out.Data[0] = float32(s)
	tp.record(out, func() {
		g := out.Grad[0]
		gx := x.ensureGrad()
		for i := range gx {
			gx[i] += g
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// Mean returns Σ x / numel as a scalar.
func Mean(tp *Tape, x *Tensor) *Tensor {
	if len(x.Data) == 0 {
		panic("tensor: Mean of an empty tensor")
	}
	return Scale(tp, Sum(tp, x), 1/float32(len(x.Data)))
}

// MaskedMean returns Σ x·m / Σ m over all elements (m is a constant 0/1 or
// weight tensor of x's shape). An all-zero mask gives 0, not NaN: a batch
// with nothing to score contributes nothing.
func MaskedMean(tp *Tape, x, mask *Tensor) *Tensor {
	mustSameShape("MaskedMean", x, mask)
	out := tp.output([]int{}, x)
	var s, w float64
	for i, v := range x.Data {
		s += float64(v) * float64(mask.Data[i])
		w += float64(mask.Data[i])
	}
	if w != 0 {
		out.Data[0] = float32(s / w)
	}
	tp.record(out, func() {
		if w == 0 {
			return
		}
		g := out.Grad[0] / float32(w)
		gx := x.ensureGrad()
		for i := range gx {
			gx[i] += g * mask.Data[i]
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// SumLastDim returns the sum over the last dimension: [..., K] → [...].
func SumLastDim(tp *Tape, x *Tensor) *Tensor {
	if len(x.Shape) == 0 {
		panic("tensor: SumLastDim of a scalar")
	}
	rows, cols := x.Rows()
	out := tp.output(x.Shape[:len(x.Shape)-1], x)
	for r := 0; r < rows; r++ {
		var s float64
		for _, v := range x.Data[r*cols : (r+1)*cols] {
			s += float64(v)
		}
		out.Data[r] = float32(s)
	}
	tp.record(out, func() {
		gx := x.ensureGrad()
		for r := 0; r < rows; r++ {
			g := out.Grad[r]
			for c := r * cols; c < (r+1)*cols; c++ {
				gx[c] += g
			}
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// Reshape returns x viewed with a new shape of the same element count. The
// data is shared; the gradient flows back through a copy-add.
func Reshape(tp *Tape, x *Tensor, shape ...int) *Tensor {
	if numel(shape) != len(x.Data) {
		panic(fmt.Sprintf("tensor: Reshape: %v (%d) to %v (%d)", x.Shape, len(x.Data), shape, numel(shape)))
	}
	out := &Tensor{Shape: append([]int(nil), shape...), Data: x.Data, RequiresGrad: tp.on(x)}
	tp.record(out, func() {
		gx := x.ensureGrad()
		for i, g := range out.Grad {
			gx[i] += g
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// GatherRows returns rows idx of x viewed as [rows, cols]: [len(idx), cols].
// It picks e.g. the hidden state of each sequence's last token for a value
// or reward head.
func GatherRows(tp *Tape, x *Tensor, idx []int) *Tensor {
	rows, cols := x.Rows()
	out := tp.output([]int{len(idx), cols}, x)
	for i, r := range idx {
		if r < 0 || r >= rows {
			panic(fmt.Sprintf("tensor: GatherRows: row %d out of range for shape %v", r, x.Shape))
		}
		copy(out.Data[i*cols:(i+1)*cols], x.Data[r*cols:(r+1)*cols])
	}
	tp.record(out, func() {
		gx := x.ensureGrad()
		for i, r := range idx {
			dst := gx[r*cols : (r+1)*cols]
			for c, g := range out.Grad[i*cols : (i+1)*cols] {
				dst[c] += g
			}
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// AddRowVector returns x + v broadcast over rows: x [..., C], v [C].
func AddRowVector(tp *Tape, x, v *Tensor) *Tensor {
	rows, cols := x.Rows()
	if len(v.Data) != cols {
		panic(fmt.Sprintf("tensor: AddRowVector: %v + %v", x.Shape, v.Shape))
	}
	out := tp.output(x.Shape, x, v)
	parallelElems(rows*cols, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out.Data[i] = x.Data[i] + v.Data[i%cols]
		}
	})
	tp.record(out, func() {
		if x.RequiresGrad {
			addInto(x.ensureGrad(), out.Grad)
		}
		if v.RequiresGrad {
			colSumInto(v.ensureGrad(), out.Grad, rows, cols)
		}
	})
	tp.ensureOutGrad(out)
	return out
}

// addInto does dst += src in parallel.
func addInto(dst, src []float32) {
	parallelElems(len(dst), func(lo, hi int) { addTo(dst[lo:hi], src[lo:hi]) })
}

// addTo does dst[i] += src[i] for i < len(dst): SIMD for the bulk where
// there is a kernel, addToScalar (its twin) for the rest.
func addTo(dst, src []float32) {
	src = src[:len(dst)]
	addToScalar(dst, src, addToSIMD(dst, src))
}

// addToScalar is addTo in pure Go from element from on.
func addToScalar(dst, src []float32, from int) {
	for i := from; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

// colSumInto does dst[c] += Σ_r src[r, c] (deterministic: one pass per
// column block, rows added in order).
func colSumInto(dst, src []float32, rows, cols int) {
	parallelCols(cols, func(c0, c1 int) {
		for r := 0; r < rows; r++ {
			addTo(dst[c0:c1], src[r*cols+c0:r*cols+c1])
		}
	})
}

// SplitLastDim splits x [..., ΣK] into contiguous tensors [..., K_i]
// (e.g. GPT-2's fused q|k|v projection into q, k and v).
func SplitLastDim(tp *Tape, x *Tensor, sizes ...int) []*Tensor {
	rows, cols := x.Rows()
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != cols {
		panic(fmt.Sprintf("tensor: SplitLastDim: sizes %v do not add up to the last dim of %v", sizes, x.Shape))
	}
	outs := make([]*Tensor, len(sizes))
	off := 0
	for i, s := range sizes {
		shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), s)
		out := tp.outputRaw(shape, x)
		o := off
		parallelRows(rows, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(out.Data[r*s:(r+1)*s], x.Data[r*cols+o:r*cols+o+s])
			}
		})
		tp.record(out, func() {
			gx := x.ensureGrad()
			parallelRows(rows, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					addTo(gx[r*cols+o:r*cols+o+s], out.Grad[r*s:(r+1)*s])
				}
			})
		})
		tp.ensureOutGrad(out)
		outs[i] = out
		off += s
	}
	return outs
}
