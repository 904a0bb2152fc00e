package collective

import (
	"context"
	"fmt"
)

// solo is a group of one (Connect with Size 1): every collective is a
// copy or nothing, with no network and no allocation.
type solo struct{ closed bool }

func (s *solo) check(ctx context.Context) error {
	if s.closed {
		return ErrClosed
	}
	return ctx.Err()
}

func (s *solo) Rank() int { return 0 }
func (s *solo) Size() int { return 1 }

func (s *solo) AllReduce(ctx context.Context, buf []float32) error { return s.check(ctx) }

func (s *solo) ReduceScatter(ctx context.Context, buf, shard []float32) error {
	if len(shard) != len(buf) {
		return fmt.Errorf("collective: reduce-scatter: rank 0's shard has %d values, its range %d", len(shard), len(buf))
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	copy(shard, buf)
	return nil
}

func (s *solo) AllGather(ctx context.Context, shard, buf []float32) error {
	if len(shard) != len(buf) {
		return fmt.Errorf("collective: all-gather: rank 0's shard has %d values, its range %d", len(shard), len(buf))
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	copy(buf, shard)
	return nil
}

func (s *solo) Broadcast(ctx context.Context, buf []float32, root int) error {
	if root != 0 {
		return fmt.Errorf("collective: broadcast from rank %d of 1", root)
	}
	return s.check(ctx)
}

func (s *solo) AllReduceF64(ctx context.Context, buf []float64) error { return s.check(ctx) }
func (s *solo) Barrier(ctx context.Context) error                     { return s.check(ctx) }
func (s *solo) Close() error                                          { s.closed = true; return nil }

var _ Comm = (*solo)(nil)
