package nn

import (
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

func TestParams(t *testing.T) {
	l := NewLinear(3, 2, true)
	n := NewRMSNorm(3, 1e-5)
	ps := append(l.Params("a."), n.Params("norm.")...)
	if err := ps.Validate(); err != nil {
		t.Fatal(err)
	}
	if ps.Count() != 3*2+2+3 || ps.Find("a.bias") != l.Bias || ps.Find("missing") != nil {
		t.Fatalf("Count %d, Find wrong", ps.Count())
	}
	if n.Weight.Data[2] != 1 {
		t.Fatal("RMSNorm weight must start at 1")
	}
	dup := append(ps, Param{Name: "a.weight", Tensor: tensor.New(1)})
	if err := dup.Validate(); err == nil {
		t.Fatal("duplicate name accepted")
	}
	y := l.Forward(nil, tensor.New(4, 3))
	if y.Shape[0] != 4 || y.Shape[1] != 2 {
		t.Fatalf("Linear output %v", y.Shape)
	}
}

func TestParams_Shares(t *testing.T) {
	a, b, c := tensor.Param(2), tensor.Param(2), tensor.Param(3)
	ps := Params{{Name: "a", Tensor: a}, {Name: "b", Tensor: b}}
	if ps.Shares(Params{{Name: "c", Tensor: c}}) {
		t.Fatal("distinct tensors reported as shared")
	}
	if !ps.Shares(Params{{Name: "c", Tensor: c}, {Name: "x", Tensor: b}}) {
		t.Fatal("a common tensor under another name not found")
	}
	if ps.Shares(nil) || Params(nil).Shares(ps) {
		t.Fatal("an empty list shares nothing")
	}
}
