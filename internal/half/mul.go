package half

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/par"
)

// Mul sets y [n, Out] = x [n, In] · W, widening W's numbers to f32: one
// FMA chain per output over In in increasing order, from zero. W's
// panels go to the threads; within a panel, rows go to the kernel four
// at a time, so W is read from memory once per call whatever n, in one
// sequential stretch per panel.
func Mul(y, x []float32, n int, m *Matrix) {
	if len(y) < n*m.Out || len(x) < n*m.In {
		panic(fmt.Sprintf("half: Mul: y has %d floats, x %d, for %d rows of [%d, %d]", len(y), len(x), n, m.In, m.Out))
	}
	if n == 0 || m.Out == 0 {
		return
	}
	if m.In == 0 {
		clear(y[:n*m.Out])
		return
	}
	ks := kernelsFor(m.DType)
	pw := m.panel
	panels := (m.Out + pw - 1) / pw
	par.For(panels, 1, func(lo, hi int) {
		var scratch []float32
		for p := lo; p < hi; p++ {
			j0, j1 := p*pw, min((p+1)*pw, m.Out)
			scratch = mulPanel(y, x, n, m, j0, j1, ks, scratch)
		}
	})
}

// mulPanel computes columns [j0, j1) of every row: the SIMD kernels where
// whole tiles fit, the portable loop for the rest.
func mulPanel(y, x []float32, n int, m *Matrix, j0, j1 int, ks *kernelSet, scratch []float32) []float32 {
	r := 0
	for ; ks.ok && r+4 <= n; r += 4 {
		j := j0
		for ; j+ks.c4 <= j1; j += ks.c4 {
			ks.call(ks.r4, y, x, m, r, j)
		}
		for ; j+ks.ct <= j1; j += ks.ct {
			ks.call(ks.r4t, y, x, m, r, j)
		}
		scratch = mulGo(y, x, r, r+4, m, j, j1, scratch)
	}
	for ; ks.ok && r < n; r++ {
		j := j0
		for ; j+ks.c1 <= j1; j += ks.c1 {
			ks.call(ks.r1, y, x, m, r, j)
		}
		for ; j+ks.ct <= j1; j += ks.ct {
			ks.call(ks.r1t, y, x, m, r, j)
		}
		scratch = mulGo(y, x, r, r+1, m, j, j1, scratch)
	}
	return mulGo(y, x, r, n, m, j0, j1, scratch)
}

// mulGo is the portable kernel for rows [r0, r1) and columns [j0, j1):
// each row of W widened once into scratch, then one multiply-add per
// output (fused where the compiler fuses, explicitly on amd64 so that tail
// columns round like the SIMD tiles).
func mulGo(y, x []float32, r0, r1 int, m *Matrix, j0, j1 int, scratch []float32) []float32 {
	if r0 >= r1 || j0 >= j1 {
		return scratch
	}
	w := j1 - j0
	if cap(scratch) < w {
		scratch = make([]float32, w)
	}
	s := scratch[:w]
	for r := r0; r < r1; r++ {
		clear(y[r*m.Out+j0 : r*m.Out+j1])
	}
	for i := 0; i < m.In; i++ {
		widenRow(s, m, i, j0)
		for r := r0; r < r1; r++ {
			a := x[r*m.In+i]
			yr := y[r*m.Out+j0 : r*m.Out+j1]
			if fusedTail {
				for j, v := range s {
					yr[j] = float32(math.FMA(float64(a), float64(v), float64(yr[j])))
				}
			} else {
				for j, v := range s {
					yr[j] += a * v
				}
			}
		}
	}
	return scratch
}

// widenRow writes W[i][j0 : j0+len(s)] into s as f32.
func widenRow(s []float32, m *Matrix, i, j0 int) {
	k := m.index(i, j0)
	switch m.DType {
	case F32:
		copy(s, m.f[k:k+len(s)])
	case BF16:
		for j, h := range m.h[k : k+len(s)] {
			s[j] = math.Float32frombits(uint32(h) << 16)
		}
	default:
		for j, h := range m.h[k : k+len(s)] {
			s[j] = F16ToF32(h)
		}
	}
}

// mulRef is the naive twin: y = x·W with one explicit f32 FMA per term
// (through float64; a·b is exact there), in increasing In order.
func mulRef(y, x []float32, n int, m *Matrix) {
	for r := 0; r < n; r++ {
		for j := 0; j < m.Out; j++ {
			var acc float32
			for i := 0; i < m.In; i++ {
				acc = float32(math.FMA(float64(x[r*m.In+i]), float64(m.At(i, j)), float64(acc)))
			}
			y[r*m.Out+j] = acc
		}
	}
}
