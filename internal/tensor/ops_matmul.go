package tensor

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/par"
)

// Linear returns x·Wᵀ + b for x [..., in], w [out, in] (the PyTorch and
// Hugging Face nn.Linear layout) and optional bias b [out]: [..., out].
func Linear(tp *Tape, x, w, b *Tensor) *Tensor { return linear(tp, x, w, b, true) }

// Conv1D returns x·W + b for W [in, out]: GPT-2's Conv1D layout, kept as
// stored so Hugging Face weights load and save without a transpose.
func Conv1D(tp *Tape, x, w, b *Tensor) *Tensor { return linear(tp, x, w, b, false) }

// linear is x·op(W) + b where op transposes W [out, in] when wOutIn.
func linear(tp *Tape, x, w, b *Tensor, wOutIn bool) *Tensor {
	n, in := x.Rows()
	wo, wi := 0, 1
	if !wOutIn {
		wo, wi = 1, 0
	}
	if len(w.Shape) != 2 || w.Shape[wi] != in {
		panic(fmt.Sprintf("tensor: Linear/Conv1D: x %v with weight %v", x.Shape, w.Shape))
	}
	out := w.Shape[wo]
	ldw := w.Shape[1]
	if b != nil && len(b.Data) != out {
		panic(fmt.Sprintf("tensor: Linear: bias %v for weight %v", b.Shape, w.Shape))
	}
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), out)
	y := tp.outputRaw(shape, x, w, b)
	be := Active()
	if b != nil {
		parallelRows(n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(y.Data[r*out:(r+1)*out], b.Data)
			}
		})
	}
	be.Gemm(false, wOutIn, n, out, in, 1, x.Data, in, w.Data, ldw, b2f(b != nil), y.Data, out)
	tp.record(y, func() {
		if x.RequiresGrad { // dx [n,in] += dy [n,out] · op(W)ᵀ
			gx, overwrite := x.gradForWrite()
			be.Gemm(false, !wOutIn, n, in, out, 1, y.Grad, out, w.Data, ldw, b2f(!overwrite), gx, in)
		}
		if w.RequiresGrad && wOutIn { // dW [out,in] += dyᵀ · x
			be.Gemm(true, false, out, in, n, 1, y.Grad, out, x.Data, in, 1, w.ensureGrad(), in)
		} else if w.RequiresGrad { // dW [in,out] += xᵀ · dy
			be.Gemm(true, false, in, out, n, 1, x.Data, in, y.Grad, out, 1, w.ensureGrad(), out)
		}
		if b != nil && b.RequiresGrad {
			colSumInto(b.ensureGrad(), y.Grad, n, out)
		}
	})
	tp.ensureOutGrad(y)
	return y
}

// MatMul returns op(a)·op(b) where op transposes the last two dimensions
// when asked. a is [M, K] or [Bt, M, K]; b is [K, N] or [Bt, K, N] (before
// op). A 2-d b is shared by every batch of a 3-d a.
func MatMul(tp *Tape, a, b *Tensor, transA, transB bool) *Tensor {
	ba, m, ka := mat3(a, transA)
	bb, kb, n := mat3(b, transB)
	if ka != kb || (bb != 1 && bb != ba) {
		panic(fmt.Sprintf("tensor: MatMul: %v (transA=%v) · %v (transB=%v)", a.Shape, transA, b.Shape, transB))
	}
	shape := []int{m, n}
	if len(a.Shape) == 3 {
		shape = []int{ba, m, n}
	}
	out := tp.outputRaw(shape, a, b)
	be := Active()
	lda, ldb := a.Shape[len(a.Shape)-1], b.Shape[len(b.Shape)-1]
	sa, sb, so := m*ka, kb*n, m*n
	if bb == 1 {
		sb = 0
	}
	batched(be, ba, func(g gemmFn, i int) {
		g(transA, transB, m, n, ka, 1, a.Data[i*sa:], lda, b.Data[i*sb:], ldb, 0, out.Data[i*so:], n)
	})
	tp.record(out, func() {
		if a.RequiresGrad {
			ga := a.ensureGrad()
			batched(be, ba, func(g gemmFn, i int) {
				if transA { // a holds Aᵀ [K,M]: d(Aᵀ) = op(B)·dOᵀ
					g(transB, true, ka, m, n, 1, b.Data[i*sb:], ldb, out.Grad[i*so:], n, 1, ga[i*sa:], lda)
				} else { // dA [M,K] = dO · op(B)ᵀ
					g(false, !transB, m, ka, n, 1, out.Grad[i*so:], n, b.Data[i*sb:], ldb, 1, ga[i*sa:], lda)
				}
			})
		}
		if b.RequiresGrad {
			gb := b.ensureGrad()
			// A shared 2-d b sums its gradient over batches: run them in order.
			run := batched
			if bb == 1 {
				run = sequential
			}
			run(be, ba, func(g gemmFn, i int) {
				if transB { // b holds Bᵀ [N,K]: d(Bᵀ) = dOᵀ · op(A)
					g(true, transA, n, kb, m, 1, out.Grad[i*so:], n, a.Data[i*sa:], lda, 1, gb[i*sb:], ldb)
				} else { // dB [K,N] = op(A)ᵀ · dO
					g(!transA, false, kb, n, m, 1, a.Data[i*sa:], lda, out.Grad[i*so:], n, 1, gb[i*sb:], ldb)
				}
			})
		}
	})
	tp.ensureOutGrad(out)
	return out
}

type gemmFn func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// batched runs fn for every batch index: one multi-threaded GEMM when there
// is one batch, otherwise batches split across threads with serial GEMMs.
func batched(be Backend, nb int, fn func(g gemmFn, i int)) {
	if nb == 1 {
		fn(be.Gemm, 0)
		return
	}
	par.For(nb, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			fn(be.GemmSerial, i)
		}
	})
}

// sequential runs fn for every batch index in order, each GEMM multi-threaded.
func sequential(be Backend, nb int, fn func(g gemmFn, i int)) {
	for i := 0; i < nb; i++ {
		fn(be.Gemm, i)
	}
}

// mat3 returns (batch, rows, cols) of op(t) for a 2-d or 3-d tensor.
func mat3(t *Tensor, trans bool) (b, r, c int) {
	switch len(t.Shape) {
	case 2:
		b, r, c = 1, t.Shape[0], t.Shape[1]
	case 3:
		b, r, c = t.Shape[0], t.Shape[1], t.Shape[2]
	default:
		panic(fmt.Sprintf("tensor: MatMul: want a 2-d or 3-d tensor, got %v", t.Shape))
	}
	if trans {
		r, c = c, r
	}
	return b, r, c
}
