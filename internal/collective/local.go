package collective

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed is returned by collectives on a closed Comm.
var ErrClosed = errors.New("collective: closed")

// NewLocal returns size ranks of one group living in this process
// (goroutines, one rank each): the reference twin of every transport. It
// computes each result straight from every rank's buffer with RingSum,
// so its bits define what a transport must produce.
func NewLocal(size int) []Comm {
	h := &hub{size: size, bufs: make([]any, size)}
	h.cond = sync.NewCond(&h.mu)
	out := make([]Comm, size)
	for r := range out {
		out[r] = &local{h: h, rank: r}
	}
	return out
}

// hub is where the local ranks meet: each collective is two barriers,
// one after every rank has posted its buffer, one after every rank has
// read what it needs (so no buffer changes while another rank reads it).
type hub struct {
	mu     sync.Mutex
	cond   *sync.Cond
	size   int
	bufs   []any
	snap   []any // the buffers of the last completed meeting
	count  int
	gen    int
	closed bool
}

// meet posts v as rank's buffer and waits for every rank; it returns the
// posted buffers. Cancellation is checked on entry only: a rank that
// never arrives is a bug of the caller in-process, not a lost peer.
func (h *hub) meet(ctx context.Context, rank int, v any) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	h.bufs[rank] = v
	gen := h.gen
	h.count++
	if h.count == h.size {
		h.count = 0
		h.gen++
		h.snap = append([]any(nil), h.bufs...)
		h.cond.Broadcast()
	}
	for gen == h.gen && !h.closed {
		h.cond.Wait()
	}
	if gen == h.gen { // closed before the meeting completed
		return nil, ErrClosed
	}
	// Every rank must arrive again before the next meeting completes, so
	// snap stays this meeting's until this rank has read it.
	return h.snap, nil
}

type local struct {
	h    *hub
	rank int
}

func (c *local) Rank() int { return c.rank }
func (c *local) Size() int { return c.h.size }

func (c *local) Close() error {
	c.h.mu.Lock()
	c.h.closed = true
	c.h.cond.Broadcast()
	c.h.mu.Unlock()
	return nil
}

func (c *local) Barrier(ctx context.Context) error {
	_, err := c.h.meet(ctx, c.rank, nil)
	return err
}

// exchange posts v, runs read on every rank's buffer, then waits until
// every rank has read.
func (c *local) exchange(ctx context.Context, v any, read func(all []any) error) error {
	all, err := c.h.meet(ctx, c.rank, v)
	if err != nil {
		return err
	}
	rerr := read(all)
	if _, err := c.h.meet(ctx, c.rank, nil); err != nil {
		return err
	}
	return rerr
}

func f32s(all []any) ([][]float32, error) {
	out := make([][]float32, len(all))
	for i, v := range all {
		out[i] = v.([]float32)
		if len(out[i]) != len(out[0]) {
			return nil, fmt.Errorf("collective: rank %d has %d values, rank 0 %d", i, len(out[i]), len(out[0]))
		}
	}
	return out, nil
}

func (c *local) AllReduce(ctx context.Context, buf []float32) error {
	sum := make([]float32, len(buf))
	err := c.exchange(ctx, buf, func(all []any) error {
		bufs, err := f32s(all)
		if err != nil {
			return err
		}
		for s, r := range Partition(len(buf), c.h.size) {
			RingSum(sum, bufs, s, r)
		}
		return nil
	})
	if err == nil {
		copy(buf, sum)
	}
	return err
}

func (c *local) ReduceScatter(ctx context.Context, buf, shard []float32) error {
	r := Partition(len(buf), c.h.size)[c.rank]
	if len(shard) != r.Len() {
		return fmt.Errorf("collective: reduce-scatter: rank %d's shard has %d values, its range %d", c.rank, len(shard), r.Len())
	}
	sum := make([]float32, len(buf))
	return c.exchange(ctx, buf, func(all []any) error {
		bufs, err := f32s(all)
		if err != nil {
			return err
		}
		RingSum(sum, bufs, c.rank, r)
		copy(shard, sum[r.Lo:r.Hi])
		return nil
	})
}

func (c *local) AllGather(ctx context.Context, shard, buf []float32) error {
	parts := Partition(len(buf), c.h.size)
	if len(shard) != parts[c.rank].Len() {
		return fmt.Errorf("collective: all-gather: rank %d's shard has %d values, its range %d", c.rank, len(shard), parts[c.rank].Len())
	}
	return c.exchange(ctx, shard, func(all []any) error {
		for k, v := range all {
			copy(buf[parts[k].Lo:parts[k].Hi], v.([]float32))
		}
		return nil
	})
}

func (c *local) Broadcast(ctx context.Context, buf []float32, root int) error {
	if root < 0 || root >= c.h.size {
		return fmt.Errorf("collective: broadcast from rank %d of %d", root, c.h.size)
	}
	return c.exchange(ctx, buf, func(all []any) error {
		if c.rank != root {
			src := all[root].([]float32)
			if len(src) != len(buf) {
				return fmt.Errorf("collective: broadcast: root %d has %d values, rank %d %d", root, len(src), c.rank, len(buf))
			}
			copy(buf, src)
		}
		return nil
	})
}

func (c *local) AllReduceF64(ctx context.Context, buf []float64) error {
	sum := make([]float64, len(buf))
	err := c.exchange(ctx, buf, func(all []any) error {
		bufs := make([][]float64, len(all))
		for i, v := range all {
			bufs[i] = v.([]float64)
			if len(bufs[i]) != len(buf) {
				return fmt.Errorf("collective: rank %d has %d values, rank %d %d", i, len(bufs[i]), c.rank, len(buf))
			}
		}
		for s, r := range Partition(len(buf), c.h.size) {
			RingSumF64(sum, bufs, s, r)
		}
		return nil
	})
	if err == nil {
		copy(buf, sum)
	}
	return err
}
