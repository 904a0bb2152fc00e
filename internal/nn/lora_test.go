package nn

import (
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestLoRA_FusedEqualsTwin: a Linear with an adapter gives the same
// output and gradients through the fused op as through its composed
// twin; DeltaInto merges to the same map.
func TestLoRA_FusedEqualsTwin(t *testing.T) {
	l := NewLinear(6, 5, true)
	r := tensor.NewRand(2)
	InitNormal(r, 0.5, l.Weight, l.Bias)
	l.LoRA = NewLoRA(6, 5, 3, 6, 0, r)
	InitNormal(r, 0.5, l.LoRA.B)
	x := tt.Uniform(tt.Rand(3), -1, 1, 4, 6)
	x.RequiresGrad = true
	run := func(f func(tp *tensor.Tape) *tensor.Tensor) ([]float32, []float32, []float32) {
		x.Grad, l.LoRA.A.Grad, l.LoRA.B.Grad = nil, nil, nil
		tp := tensor.NewTape()
		y := f(tp)
		tp.Backward(tensor.Sum(tp, tensor.Square(tp, y)))
		return y.Data, x.Grad, append(slices.Clone(l.LoRA.A.Grad), l.LoRA.B.Grad...)
	}
	y1, dx1, da1 := run(func(tp *tensor.Tape) *tensor.Tensor { return l.Forward(tp, x) })
	y2, dx2, da2 := run(func(tp *tensor.Tape) *tensor.Tensor { return l.LoRA.applyTwin(tp, x, l.Weight, l.Bias, true) })
	for i, pair := range [][2][]float32{{y1, y2}, {dx1, dx2}, {da1, da2}} {
		if e := tt.MaxRelErr(pair[0], pair[1], 1e-6); e > 1e-5 {
			t.Fatalf("value %d: fused vs twin %.3g", i, e)
		}
	}
	w := l.Weight.Clone()
	l.LoRA.DeltaInto(w.Data, false)
	merged := tensor.Linear(nil, x, w, l.Bias)
	if e := tt.MaxRelErr(merged.Data, y1, 1e-6); e > 1e-5 {
		t.Fatalf("merged weight: %.3g", e)
	}
}

// TestLoRA_Dropout: dropout acts in training only (a tape), zeroing about
// p of the adapter's inputs and scaling the rest by 1/(1−p); inference is
// deterministic and equals the fused op without dropout.
func TestLoRA_Dropout(t *testing.T) {
	r := tensor.NewRand(4)
	l := NewLinear(200, 3, false)
	InitNormal(r, 0.5, l.Weight)
	l.LoRA = NewLoRA(200, 3, 2, 4, 0.5, r)
	InitNormal(r, 0.5, l.LoRA.B)
	x := tt.Uniform(tt.Rand(5), -1, 1, 2, 200)
	a := l.Forward(nil, x)
	if b := l.Forward(nil, x); !slices.Equal(a.Data, b.Data) {
		t.Fatal("inference is not deterministic")
	}
	m := l.LoRA.mask([]int{10000})
	zeros := 0
	for _, v := range m.Data {
		switch v {
		case 0:
			zeros++
		case 2:
		default:
			t.Fatalf("mask value %g, want 0 or 1/(1−p) = 2", v)
		}
	}
	if zeros < 4700 || zeros > 5300 {
		t.Fatalf("%d of 10000 dropped at p = 0.5", zeros)
	}
	tr1, tr2 := l.Forward(tensor.NewTape(), x), l.Forward(tensor.NewTape(), x)
	if slices.Equal(tr1.Data, tr2.Data) || slices.Equal(tr1.Data, a.Data) {
		t.Fatal("training passes did not drop")
	}
}
