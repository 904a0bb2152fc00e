package tensor

import (
	"math"
	"testing"
)

// TestSizeClass: a class holds n, wastes at most 1/8 of it above 64 floats,
// and lengths of one class share it.
func TestSizeClass(t *testing.T) {
	for n := 1; n < 1<<20; n += 1 + n/3 {
		c := sizeClass(n)
		if c < n || (n > 64 && float64(c-n) > float64(n)/8) {
			t.Fatalf("sizeClass(%d) = %d", n, c)
		}
	}
	if sizeClass(1000) != sizeClass(1024) {
		t.Fatalf("1000 and 1024 floats in classes %d and %d", sizeClass(1000), sizeClass(1024))
	}
}

// TestPool_ReuseAndDrop: Recycle hands the same memory to the next step,
// and a class a whole step left unused is dropped at the next Recycle.
func TestPool_ReuseAndDrop(t *testing.T) {
	tp := NewPooledTape()
	a := tp.allocRaw(1000)
	tp.Recycle()
	if b := tp.allocRaw(1000); &b[0] != &a[0] {
		t.Fatal("the next step did not get the recycled buffer")
	}
	tp.Recycle() // the 1000-float buffer is free again ...
	_ = tp.allocRaw(5000)
	tp.Recycle() // ... and went unused for a step: dropped
	if l := tp.pool.free[sizeClass(1000)]; len(l) != 0 {
		t.Fatalf("%d unused buffers of the 1000-float class kept", len(l))
	}
	if l := tp.pool.free[sizeClass(5000)]; len(l) != 1 {
		t.Fatalf("%d buffers of the 5000-float class kept, want 1", len(l))
	}
}

// TestPooled_SeedGradBackwardFrom: output gradients seeded with SeedGrad
// on a pooled, poisoned tape give the plain tape's parameter gradients,
// step after step (the seeds are not taken for stale leftovers).
func TestPooled_SeedGradBackwardFrom(t *testing.T) {
	r := NewRand(9)
	x, w := Randn(r, 1, 6, 5), Randn(r, 1, 3, 5)
	w.RequiresGrad = true
	seed := Randn(r, 1, 6, 3)
	run := func(tp *Tape) []float32 {
		w.Grad = nil
		y := Linear(tp, x, w, nil)
		copy(y.SeedGrad(), seed.Data)
		tp.BackwardFrom()
		return w.Grad
	}
	want := run(NewTape())
	tp := NewPooledTape()
	tp.PoisonRecycled()
	for step := range 3 {
		tp.Recycle()
		got := run(tp)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("step %d: gradient %d: %v, plain tape %v", step, i, got[i], want[i])
			}
		}
	}
}
