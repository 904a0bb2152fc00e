package zero

import (
	"context"
	"runtime"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
)

// solo is the one-rank Comm: every collective is a copy or nothing. It
// allocates nothing, so the engine's own allocations can be counted.
type solo struct{}

func (solo) Rank() int                                       { return 0 }
func (solo) Size() int                                       { return 1 }
func (solo) AllReduce(context.Context, []float32) error      { return nil }
func (solo) AllReduceF64(context.Context, []float64) error   { return nil }
func (solo) Broadcast(context.Context, []float32, int) error { return nil }
func (solo) Barrier(context.Context) error                   { return nil }
func (solo) Close() error                                    { return nil }
func (solo) ReduceScatter(_ context.Context, buf, shard []float32) error {
	copy(shard, buf)
	return nil
}
func (solo) AllGather(_ context.Context, shard, buf []float32) error {
	copy(buf, shard)
	return nil
}

var _ collective.Comm = solo{}

// TestNoGarbage: a whole step of the engine's own work — the micro-batch
// hooks, every block's gather, gradient binding, reduction and release,
// and Step — allocates no buffer: its scratch is reused. What remains is
// the closure optim.Update hands par.For, about a hundred bytes per
// parameter tensor and step, whatever the tensor's size.
func TestNoGarbage(t *testing.T) {
	base := stories(t)
	ctx := context.Background()
	for stage := 0; stage <= 3; stage++ {
		e, err := New(ctx, solo{}, base, Config{Stage: stage, Optim: testOptim, MaxNorm: 1})
		if err != nil {
			t.Fatal(err)
		}
		step := func() {
			if err := e.BeginMicro(ctx); err != nil {
				t.Fatal(err)
			}
			for _, s := range e.segs {
				call(s.BeforeForward)
				call(s.AfterForward)
			}
			for i := len(e.segs) - 1; i >= 0; i-- {
				call(e.segs[i].BeforeBackward)
				call(e.segs[i].AfterBackward)
			}
			if err := e.EndMicro(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Step(ctx, 1, 1e-3); err != nil {
				t.Fatal(err)
			}
		}
		step()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const rounds = 5
		for range rounds {
			step()
		}
		runtime.ReadMemStats(&after)
		perStep := (after.TotalAlloc - before.TotalAlloc) / rounds
		t.Logf("stage %d: %d bytes in %d allocations per step", stage, perStep, (after.Mallocs-before.Mallocs)/rounds)
		if limit := uint64(200 * len(e.Params())); perStep > limit {
			t.Errorf("stage %d allocates %d bytes a step, more than %d for %d tensors", stage, perStep, limit, len(e.Params()))
		}
		base = stories(t) // New rebound the previous model's parameters
	}
}

func call(f func()) {
	if f != nil {
		f()
	}
}
