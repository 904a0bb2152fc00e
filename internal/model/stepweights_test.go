package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = r.Float32()*2 - 1
	}
	return t
}

// Without copies Linear and Conv1D are tensor's, bit for bit; with bf16
// copies they equal tensor's on the rounded weights to float rounding; F32
// drops the copies again.
func TestStepWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := randTensor(r, 3, 40)
	wl, wc, b := randTensor(r, 24, 40), randTensor(r, 40, 24), randTensor(r, 24)
	var s StepWeights
	same := func(what string, got, want *tensor.Tensor, tol float64) {
		t.Helper()
		for i := range want.Data {
			if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > tol {
				t.Fatalf("%s: [%d] = %v, want %v", what, i, got.Data[i], want.Data[i])
			}
		}
	}
	same("f32 Linear", s.Linear(x, wl, b), tensor.Linear(nil, x, wl, b), 0)
	same("f32 Conv1D", s.Conv1D(x, wc, b), tensor.Conv1D(nil, x, wc, b), 0)
	s.Set(half.BF16, []StepMatrix{{W: wl, OutIn: true}, {W: wc}})
	if s.DType() != half.BF16 || s.Bytes() != 2*2*24*40 {
		t.Fatalf("dtype %v, %d bytes", s.DType(), s.Bytes())
	}
	rounded := func(w *tensor.Tensor) *tensor.Tensor {
		c := tensor.New(w.Shape...)
		for i, v := range w.Data {
			c.Data[i] = half.BF16ToF32(half.BF16FromF32(v))
		}
		return c
	}
	same("bf16 Linear", s.Linear(x, wl, b), tensor.Linear(nil, x, rounded(wl), b), 1e-5)
	same("bf16 Conv1D", s.Conv1D(x, wc, b), tensor.Conv1D(nil, x, rounded(wc), b), 1e-5)
	s.Set(half.F32, nil)
	same("f32 again", s.Linear(x, wl, b), tensor.Linear(nil, x, wl, b), 0)
}
