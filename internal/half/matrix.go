package half

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/par"
)

// Matrix is a weight matrix [In, Out] kept in DType: 16-bit numbers in
// h for BF16 and F16, f32 in f for F32 (the same kernels over unconverted
// weights, for comparisons).
type Matrix struct {
	DType   DType
	In, Out int
	h       []uint16  // [In, Out] (BF16, F16)
	f       []float32 // [In, Out] (F32)
}

// NewMatrix returns an empty matrix [in, out] of dt.
func NewMatrix(dt DType, in, out int) *Matrix {
	m := &Matrix{DType: dt, In: in, Out: out}
	if dt == F32 {
		m.f = make([]float32, in*out)
	} else {
		m.h = make([]uint16, in*out)
	}
	return m
}

// FromOutIn converts w [out, in] (an nn.Linear weight) into a new
// Matrix [in, out].
func FromOutIn(dt DType, w []float32, out, in int) *Matrix {
	m := NewMatrix(dt, in, out)
	m.SetOutIn(w)
	return m
}

// FromInOut converts w [in, out] (a GPT-2 Conv1D weight) into a new
// Matrix [in, out].
func FromInOut(dt DType, w []float32, in, out int) *Matrix {
	m := NewMatrix(dt, in, out)
	m.SetInOut(w)
	return m
}

// SetOutIn overwrites the matrix with w [Out, In], transposed and rounded
// (after a weight update).
func (m *Matrix) SetOutIn(w []float32) {
	m.checkLen(len(w))
	par.For(m.In, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < m.Out; j++ {
				m.set(i*m.Out+j, w[j*m.In+i])
			}
		}
	})
}

// SetInOut overwrites the matrix with w [In, Out], rounded.
func (m *Matrix) SetInOut(w []float32) {
	m.checkLen(len(w))
	par.For(m.In, 64, func(lo, hi int) {
		for i := lo * m.Out; i < hi*m.Out; i++ {
			m.set(i, w[i])
		}
	})
}

func (m *Matrix) checkLen(n int) {
	if n != m.In*m.Out {
		panic(fmt.Sprintf("half: %d weights for a [%d, %d] matrix", n, m.In, m.Out))
	}
}

func (m *Matrix) set(i int, v float32) {
	switch m.DType {
	case F32:
		m.f[i] = v
	case BF16:
		m.h[i] = BF16FromF32(v)
	default:
		m.h[i] = F16FromF32(v)
	}
}

// At returns W[i][j] widened to f32.
func (m *Matrix) At(i, j int) float32 {
	k := i*m.Out + j
	if m.DType == F32 {
		return m.f[k]
	}
	return m.DType.ToF32(m.h[k])
}

// Bytes is the memory the weights take.
func (m *Matrix) Bytes() int { return 2*len(m.h) + 4*len(m.f) }
