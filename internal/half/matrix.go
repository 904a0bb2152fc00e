package half

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/par"
)

// Matrix is a weight matrix [In, Out] kept in DType: 16-bit numbers in
// h for BF16 and F16, f32 in f for F32 (the same kernels over unconverted
// weights, for comparisons).
//
// Storage is panel-major: the columns are cut into panels of panel
// columns (the last one narrower), and each panel is stored whole,
// [In, width] row-major, one after the other. A thread computing a panel
// of y then reads one contiguous stretch of memory, as a dot-product
// kernel over [Out, In] rows would.
type Matrix struct {
	DType   DType
	In, Out int
	panel   int
	h       []uint16  // BF16, F16
	f       []float32 // F32
}

// panelWidth is the panel of a new matrix: the kernels' on this CPU.
func panelWidth() int { return defaultPanel }

// defaultPanel is the panel width of new matrices (benchmarks vary it).
var defaultPanel = 128

// index is where W[i][j] is stored.
func (m *Matrix) index(i, j int) int {
	p := j / m.panel
	base := p * m.panel * m.In
	return base + i*m.width(p) + j - p*m.panel
}

// width is the number of columns of panel p.
func (m *Matrix) width(p int) int { return min(m.panel, m.Out-p*m.panel) }

// NewMatrix returns an empty matrix [in, out] of dt.
func NewMatrix(dt DType, in, out int) *Matrix {
	m := &Matrix{DType: dt, In: in, Out: out, panel: panelWidth()}
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
	par.For(m.Out, 64, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			for i, v := range w[j*m.In : (j+1)*m.In] {
				m.set(m.index(i, j), v)
			}
		}
	})
}

// SetInOut overwrites the matrix with w [In, Out], rounded.
func (m *Matrix) SetInOut(w []float32) {
	m.checkLen(len(w))
	par.For(m.In, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j, v := range w[i*m.Out : (i+1)*m.Out] {
				m.set(m.index(i, j), v)
			}
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
	k := m.index(i, j)
	if m.DType == F32 {
		return m.f[k]
	}
	return m.DType.ToF32(m.h[k])
}

// Bytes is the memory the weights take.
func (m *Matrix) Bytes() int { return 2*len(m.h) + 4*len(m.f) }
