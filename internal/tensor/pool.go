package tensor

import "math"

// bufPool hands out the float buffers of one tape's ops (outputs, their
// gradients, activations saved for backward) and takes them all back at
// Tape.Recycle, so a training loop reuses the same memory every step
// instead of asking the Go heap (and, through page faults, the kernel)
// for fresh zeroed pages. Buffers are kept by size class; a class's
// buffers that a whole step did not use are dropped at the next Recycle,
// so the pool follows the working set when shapes change.
type bufPool struct {
	free   map[int][][]float32 // by size class, ready to hand out
	held   [][]float32         // handed out since the last Recycle
	poison bool                // fill recycled buffers with NaN (tests)
}

// sizeClass rounds n up to a class with at most 1/8 waste: 8 steps per
// power of two above 64 floats.
func sizeClass(n int) int {
	if n <= 64 {
		return 64
	}
	step := 1
	for step*16 < n {
		step *= 2
	}
	return (n + step - 1) / step * step
}

// get returns a buffer of length n from the pool, or a fresh one.
func (p *bufPool) get(n int) []float32 {
	c := sizeClass(n)
	var b []float32
	if l := p.free[c]; len(l) > 0 {
		b, p.free[c] = l[len(l)-1], l[:len(l)-1]
	} else {
		b = make([]float32, c)
		if p.poison {
			fill(b, float32(math.NaN()))
		}
	}
	p.held = append(p.held, b)
	return b[:n]
}

// recycle makes every held buffer free again and drops the free ones that
// went unused since the last recycle.
func (p *bufPool) recycle() {
	for c := range p.free {
		clear(p.free[c])
		delete(p.free, c)
	}
	for i, b := range p.held {
		b = b[:cap(b)]
		if p.poison {
			fill(b, float32(math.NaN()))
		}
		p.free[len(b)] = append(p.free[len(b)], b)
		p.held[i] = nil
	}
	p.held = p.held[:0]
}

func fill(b []float32, v float32) {
	for i := range b {
		b[i] = v
	}
}
