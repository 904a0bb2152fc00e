package tensor_test

import (
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// loraTwin is LoRALinear as separate ops: base map + s·(x·Aᵀ)·Bᵀ.
func loraTwin(tp *tensor.Tape, x, w, b, a, bm *tensor.Tensor, s float32, outIn bool) *tensor.Tensor {
	var y *tensor.Tensor
	if outIn {
		y = tensor.Linear(tp, x, w, b)
	} else {
		y = tensor.Conv1D(tp, x, w, b)
	}
	return tensor.Add(tp, y, tensor.Scale(tp, tensor.Linear(tp, tensor.Linear(tp, x, a, nil), bm, nil), s))
}

// TestLoRALinear checks the fused op's backward by finite differences
// (x, W, b, A, B all requiring grad) and its forward and every gradient
// against the composed twin, for the Linear and the Conv1D layouts.
func TestLoRALinear(t *testing.T) {
	for _, outIn := range []bool{true, false} {
		in, out, r := 5, 4, 2
		wShape := []int{out, in}
		if !outIn {
			wShape = []int{in, out}
		}
		x, w, b := param(1, -1, 1, 2, 3, in), param(2, -1, 1, wShape...), param(3, -1, 1, out)
		a, bm := param(4, -1, 1, r, in), param(5, -1, 1, out, r)
		inputs := []*tensor.Tensor{x, w, b, a, bm}
		fused := func(tp *tensor.Tape) *tensor.Tensor { return tensor.LoRALinear(tp, x, w, b, a, bm, 1.5, outIn) }
		if err := tt.GradCheck(fused, inputs, 3e-3, 2e-2); err != nil {
			t.Fatalf("outIn=%v: %v", outIn, err)
		}
		grads := func(f func(tp *tensor.Tape) *tensor.Tensor) ([]float32, [][]float32) {
			for _, p := range inputs {
				p.Grad = nil
			}
			tp := tensor.NewTape()
			y := f(tp)
			proj := tt.Uniform(tt.Rand(9), -1, 1, y.Shape...)
			tp.Backward(tensor.Sum(tp, tensor.Mul(tp, y, proj)))
			var gs [][]float32
			for _, p := range inputs {
				gs = append(gs, append([]float32(nil), p.Grad...))
			}
			return append([]float32(nil), y.Data...), gs
		}
		y1, g1 := grads(fused)
		y2, g2 := grads(func(tp *tensor.Tape) *tensor.Tensor { return loraTwin(tp, x, w, b, a, bm, 1.5, outIn) })
		if e := tt.MaxRelErr(y1, y2, 1e-6); e > 1e-5 {
			t.Fatalf("outIn=%v: forward differs from the twin by %.3g", outIn, e)
		}
		for i := range g1 {
			if e := tt.MaxRelErr(g1[i], g2[i], 1e-6); e > 1e-5 {
				t.Fatalf("outIn=%v: gradient of input %d differs from the twin by %.3g", outIn, i, e)
			}
		}
	}
	// A frozen base: no gradient for W or b, and no step at all without a
	// trainable input.
	x, w := tt.Uniform(tt.Rand(1), -1, 1, 3, 4), tt.Uniform(tt.Rand(2), -1, 1, 2, 4)
	a, bm := param(3, -1, 1, 1, 4), param(4, -1, 1, 2, 1)
	tp := tensor.NewTape()
	tp.Backward(tensor.Sum(tp, tensor.LoRALinear(tp, x, w, nil, a, bm, 2, true)))
	if w.Grad != nil || x.Grad != nil || a.Grad == nil || bm.Grad == nil {
		t.Fatal("gradients of a frozen base or input were computed, or the adapter's were not")
	}
}

// BenchmarkLoRALinear times one forward and backward pass of a 512 → 1376
// map over 512 rows: the trainable base (Linear), the frozen base with a
// rank-8 adapter (LoRALinear) and the adapter's composed twin.
func BenchmarkLoRALinear(b *testing.B) {
	n, in, out, r := 512, 512, 1376, 8
	x := tt.Uniform(tt.Rand(1), -1, 1, n, in)
	x.RequiresGrad = true
	w := tt.Uniform(tt.Rand(2), -1, 1, out, in)
	a, bm := param(3, -1, 1, r, in), param(4, -1, 1, out, r)
	run := func(b *testing.B, f func(tp *tensor.Tape) *tensor.Tensor) {
		for b.Loop() {
			tp := tensor.NewTape()
			tp.Backward(tensor.Sum(tp, f(tp)))
		}
	}
	b.Run("full", func(b *testing.B) {
		w.RequiresGrad = true
		run(b, func(tp *tensor.Tape) *tensor.Tensor { return tensor.Linear(tp, x, w, nil) })
		w.RequiresGrad = false
	})
	b.Run("frozen", func(b *testing.B) {
		run(b, func(tp *tensor.Tape) *tensor.Tensor { return tensor.Linear(tp, x, w, nil) })
	})
	b.Run("lora", func(b *testing.B) {
		run(b, func(tp *tensor.Tape) *tensor.Tensor { return tensor.LoRALinear(tp, x, w, nil, a, bm, 2, true) })
	})
	b.Run("lora-twin", func(b *testing.B) {
		run(b, func(tp *tensor.Tape) *tensor.Tensor { return loraTwin(tp, x, w, nil, a, bm, 2, true) })
	})
}
