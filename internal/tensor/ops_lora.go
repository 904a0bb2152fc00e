package tensor

import "fmt"

// LoRALinear returns x·op(W) + b + s·(x·Aᵀ)·Bᵀ for x [..., in]: a linear
// map (W [out, in] when wOutIn, else GPT-2's Conv1D [in, out]; optional
// bias b [out]) with a LoRA adapter A [r, in], B [out, r] and scale s,
// as one op. It keeps only x·Aᵀ [N, r] for the backward pass, where the
// composition of Linear, Scale and Add would keep three more [N, out]
// tensors and their gradients; nn.LoRA composes those ops as its twin.
// Gradients flow to x, A, B, and to W and b when they require grad.
func LoRALinear(tp *Tape, x, w, b, a, bm *Tensor, scale float32, wOutIn bool) *Tensor {
	n, in := x.Rows()
	wo, wi := 0, 1
	if !wOutIn {
		wo, wi = 1, 0
	}
	if len(w.Shape) != 2 || w.Shape[wi] != in {
		panic(fmt.Sprintf("tensor: LoRALinear: x %v with weight %v", x.Shape, w.Shape))
	}
	out, ldw := w.Shape[wo], w.Shape[1]
	if len(a.Shape) != 2 || a.Shape[1] != in || len(bm.Shape) != 2 || bm.Shape[0] != out || bm.Shape[1] != a.Shape[0] {
		panic(fmt.Sprintf("tensor: LoRALinear: adapter A %v, B %v for weight %v", a.Shape, bm.Shape, w.Shape))
	}
	if b != nil && len(b.Data) != out {
		panic(fmt.Sprintf("tensor: LoRALinear: bias %v for weight %v", b.Shape, w.Shape))
	}
	r := a.Shape[0]
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), out)
	y := tp.output(shape, x, w, b, a, bm)
	be := Active()
	if b != nil {
		for i := 0; i < n; i++ {
			copy(y.Data[i*out:(i+1)*out], b.Data)
		}
	}
	u := make([]float32, n*r)                                                                  // [N, r] x·Aᵀ
	be.Gemm(false, wOutIn, n, out, in, 1, x.Data, in, w.Data, ldw, b2f(b != nil), y.Data, out) // y = x·op(W) + b
	be.Gemm(false, true, n, r, in, 1, x.Data, in, a.Data, in, 0, u, r)                         // u = x·Aᵀ
	be.Gemm(false, true, n, out, r, scale, u, r, bm.Data, r, 1, y.Data, out)                   // y += s·u·Bᵀ
	tp.record(y, func() {
		du := make([]float32, n*r) // [N, r] s·dy·B
		be.Gemm(false, false, n, r, out, scale, y.Grad, out, bm.Data, r, 0, du, r)
		if bm.RequiresGrad { // dB [out, r] += s·dyᵀ·u
			be.Gemm(true, false, out, r, n, scale, y.Grad, out, u, r, 1, bm.ensureGrad(), r)
		}
		if a.RequiresGrad { // dA [r, in] += duᵀ·x
			be.Gemm(true, false, r, in, n, 1, du, r, x.Data, in, 1, a.ensureGrad(), in)
		}
		if x.RequiresGrad { // dx [N, in] += dy·op(W)ᵀ + du·A
			be.Gemm(false, !wOutIn, n, in, out, 1, y.Grad, out, w.Data, ldw, 1, x.ensureGrad(), in)
			be.Gemm(false, false, n, in, r, 1, du, r, a.Data, in, 1, x.Grad, in)
		}
		if w.RequiresGrad && wOutIn { // dW [out, in] += dyᵀ·x
			be.Gemm(true, false, out, in, n, 1, y.Grad, out, x.Data, in, 1, w.ensureGrad(), in)
		} else if w.RequiresGrad { // dW [in, out] += xᵀ·dy
			be.Gemm(true, false, in, out, n, 1, x.Data, in, y.Grad, out, 1, w.ensureGrad(), out)
		}
		if b != nil && b.RequiresGrad {
			colSumInto(b.ensureGrad(), y.Grad, n, out)
		}
	})
	tp.ensureOutGrad(y)
	return y
}
