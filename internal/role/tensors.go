package role

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Width is A, the longest response of the batch: the width of its [B, A]
// tensors.
func (s Sequences) Width() int {
	a := 0
	for i := range s.Tokens {
		a = max(a, s.ResponseLen(i))
	}
	return a
}

// Mask returns the action mask [B, A] of the batch: 1 on every response
// token that is an action (ActionMasks, or all of them), 0 on padding.
func (s Sequences) Mask() *tensor.Tensor {
	b, a := s.Len(), s.Width()
	m := tensor.New(b, a)
	for i := range b {
		for j := range s.ResponseLen(i) {
			if s.ActionMasks == nil || s.ActionMasks[i][j] {
				m.Data[i*a+j] = 1
			}
		}
	}
	return m
}

// Pad lays rows out as a right-padded [B, a] tensor (zeros past each row's
// end). Every row must have at most a values.
func (p PerToken) Pad(a int) *tensor.Tensor {
	out := tensor.New(len(p), a)
	for i, row := range p {
		if len(row) > a {
			panic(fmt.Sprintf("role: PerToken.Pad: row %d has %d values for width %d", i, len(row), a))
		}
		copy(out.Data[i*a:], row)
	}
	return out
}

// Unpad cuts a [B, A] tensor back into rows of lens[i] values (copies).
func Unpad(t *tensor.Tensor, lens []int) PerToken {
	if len(t.Shape) != 2 || t.Shape[0] != len(lens) {
		panic(fmt.Sprintf("role: Unpad: tensor %v for %d rows", t.Shape, len(lens)))
	}
	a := t.Shape[1]
	out := make(PerToken, len(lens))
	for i, n := range lens {
		out[i] = append([]float32(nil), t.Data[i*a:i*a+n]...)
	}
	return out
}
