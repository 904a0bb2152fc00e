// Package collective moves tensors between the ranks of a data-parallel
// group: all-reduce, reduce-scatter, all-gather, broadcast and barrier,
// on float32 buffers (float64 for the few scalars that must be exact, such
// as partial gradient norms).
//
// Every reduction adds in one fixed order — the ring order defined by
// Partition and RingSum — whatever the transport, so that a result is
// bit-identical run to run for a fixed number of ranks, and so that an
// all-reduce equals a reduce-scatter followed by an all-gather bit for
// bit. Local is the in-process reference twin of that order; transports
// (TCP here, NCCL on GPUs later) are tested against it. Connect joins a
// group of processes over TCP; docs/COLLECTIVES.md describes the ring,
// the bootstrap and the errors.
package collective

import (
	"context"
	"fmt"
)

// Comm is one rank's handle on a group of Size ranks. Every rank of the
// group calls the same collectives in the same order with buffers of the
// same length; a Comm is not safe for concurrent use. The interface is
// shaped after NCCL's (ncclAllReduce, ncclReduceScatter, ncclAllGather,
// ncclBroadcast, with the sum as the one reduction), so that a GPU
// implementation loaded at run time can stand behind it.
type Comm interface {
	// Rank is this rank's index in [0, Size).
	Rank() int
	// Size is the number of ranks.
	Size() int
	// AllReduce replaces buf on every rank by the element-wise sum of
	// every rank's buf, added in ring order (RingSum) shard by shard
	// (Partition).
	AllReduce(ctx context.Context, buf []float32) error
	// ReduceScatter sums buf over the ranks as AllReduce does and writes
	// this rank's shard of the sum, Partition(len(buf), Size)[Rank], to
	// shard (whose length must match).
	ReduceScatter(ctx context.Context, buf, shard []float32) error
	// AllGather writes every rank's shard into buf at its Partition
	// range; shard's length must be this rank's range's.
	AllGather(ctx context.Context, shard, buf []float32) error
	// Broadcast copies root's buf to every rank's buf.
	Broadcast(ctx context.Context, buf []float32, root int) error
	// AllReduceF64 is AllReduce on float64 values (small buffers:
	// gradient-norm partials, token counts, metrics).
	AllReduceF64(ctx context.Context, buf []float64) error
	// Barrier returns once every rank has entered it.
	Barrier(ctx context.Context) error
	// Close releases the rank's connections; collectives fail after it.
	Close() error
}

// Range is a half-open range [Lo, Hi) of a flat buffer.
type Range struct{ Lo, Hi int }

// Len is Hi − Lo.
func (r Range) Len() int { return r.Hi - r.Lo }

// Partition splits n elements into size contiguous shards in rank order,
// the first n mod size shards one element longer: shard r is rank r's
// part of a reduce-scatter or all-gather, and of the sharded optimizer
// state in package zero.
func Partition(n, size int) []Range {
	if size < 1 || n < 0 {
		panic(fmt.Sprintf("collective: Partition(%d, %d)", n, size))
	}
	q, rem := n/size, n%size
	out := make([]Range, size)
	lo := 0
	for r := range out {
		hi := lo + q
		if r < rem {
			hi++
		}
		out[r] = Range{lo, hi}
		lo = hi
	}
	return out
}

// RingOrder returns the order in which the ranks' contributions to shard
// s are added: s+1, s+2, …, s (mod size), the order of a ring
// reduce-scatter in which each rank passes its partial sum to the next
// and shard s ends at its owner, rank s.
func RingOrder(s, size int) []int {
	out := make([]int, size)
	for i := range out {
		out[i] = (s + 1 + i) % size
	}
	return out
}

// RingSum is the reference of every reduction: dst[i] = the sum over
// ranks of bufs[rank][i] for i in shard s of the partition, added one
// rank at a time in RingOrder(s, len(bufs)), in float32.
func RingSum(dst []float32, bufs [][]float32, s int, r Range) { ringSum(dst, bufs, s, r) }

// RingSumF64 is RingSum on float64 values.
func RingSumF64(dst []float64, bufs [][]float64, s int, r Range) { ringSum(dst, bufs, s, r) }

func ringSum[T float32 | float64](dst []T, bufs [][]T, s int, r Range) {
	order := RingOrder(s, len(bufs))
	copy(dst[r.Lo:r.Hi], bufs[order[0]][r.Lo:r.Hi])
	for _, k := range order[1:] {
		src := bufs[k]
		for i := r.Lo; i < r.Hi; i++ {
			dst[i] += src[i]
		}
	}
}

// Agree tells every rank of c which ranks failed: each passes its own
// outcome (err, nil when it succeeded) and gets back the ranks whose err
// was not nil, in rank order, the same list on every rank; an error is
// the all-reduce's own failure. Ranks use it to fail (or go on) together,
// e.g. before committing a checkpoint every rank wrote part of.
func Agree(ctx context.Context, c Comm, err error) ([]int, error) {
	flags := make([]float64, c.Size())
	if err != nil {
		flags[c.Rank()] = 1
	}
	if cerr := c.AllReduceF64(ctx, flags); cerr != nil {
		return nil, cerr
	}
	var failed []int
	for r, f := range flags {
		if f != 0 {
			failed = append(failed, r)
		}
	}
	return failed, nil
}
