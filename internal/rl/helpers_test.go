package rl

import (
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// rightPadMask returns a [B, A] mask with the given response lengths.
func rightPadMask(a int, lengths ...int) *tensor.Tensor {
	m := tensor.New(len(lengths), a)
	for b, n := range lengths {
		for t := range n {
			m.Data[b*a+t] = 1
		}
	}
	return m
}

// uniform returns a seeded [shape] tensor with values in [lo, hi).
func uniform(seed uint64, lo, hi float32, shape ...int) *tensor.Tensor {
	return tt.Uniform(tt.Rand(seed), lo, hi, shape...)
}

// scribble overwrites x at masked positions with large junk values.
func scribble(x, mask *tensor.Tensor) *tensor.Tensor {
	y := x.Clone()
	for i, m := range mask.Data {
		if m == 0 {
			y.Data[i] = 1e3 * float32(i%7-3)
		}
	}
	return y
}

// equalOnMask fails unless got and want agree (to tol, absolute) on valid
// positions and got is 0 elsewhere.
func equalOnMask(t *testing.T, what string, got, want, mask *tensor.Tensor, tol float64) {
	t.Helper()
	for i, m := range mask.Data {
		if m == 0 {
			if got.Data[i] != 0 {
				t.Fatalf("%s[%d] = %v at a masked position, want 0", what, i, got.Data[i])
			}
			continue
		}
		if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > tol {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got.Data[i], want.Data[i])
		}
	}
}

// param returns a copy of x that requires grad.
func param(x *tensor.Tensor) *tensor.Tensor {
	p := x.Clone()
	p.RequiresGrad = true
	return p
}
