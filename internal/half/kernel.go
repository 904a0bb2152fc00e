package half

import "unsafe"

// kernel computes a tile of y = x·W from zero: y and x rows ldy and ldx
// floats apart, W rows ldw numbers apart, k terms per output.
type kernel func(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

// kernelSet is one CPU's kernels for one DType: r1 computes 1×c1 tiles,
// r4 4×c4, r1t and r4t narrower tail tiles (ct columns); Mul hands each
// thread panels of panel columns. ok is false for the portable set.
type kernelSet struct {
	ok                bool
	panel, c1, c4, ct int
	r1, r4, r1t, r4t  kernel
}

// portable has no kernels: everything runs in mulGo.
var portable = kernelSet{panel: 128}

// call runs k on the tile whose top-left output is y[r][j] (the tile
// lies within one panel of W).
func (ks *kernelSet) call(k kernel, y, x []float32, m *Matrix, r, j int) {
	var w unsafe.Pointer
	if k0 := m.index(0, j); m.DType == F32 {
		w = unsafe.Pointer(&m.f[k0])
	} else {
		w = unsafe.Pointer(&m.h[k0])
	}
	k(&y[r*m.Out+j], m.Out, &x[r*m.In], m.In, w, m.width(j/m.panel), m.In)
}
