package collective

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
)

// onRanks runs f on every rank of comms concurrently and fails on any error.
func onRanks(t *testing.T, comms []Comm, f func(c Comm) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(comms))
	for i, c := range comms {
		wg.Go(func() { errs[i] = f(c) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
}

func randBufs(size, n int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float32, size)
	for k := range out {
		out[k] = make([]float32, n)
		for i := range out[k] {
			out[k][i] = float32(r.NormFloat64())
		}
	}
	return out
}

func TestLocal_AllReduceEqualsReduceScatterThenAllGather(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{1, 2, 3, 4} {
		for _, n := range []int{0, 1, 5, 1000} {
			in := randBufs(size, n, uint64(size*1000+n))
			ar := make([][]float32, size)
			rsag := make([][]float32, size)
			comms := NewLocal(size)
			onRanks(t, comms, func(c Comm) error {
				k := c.Rank()
				ar[k] = append([]float32(nil), in[k]...)
				if err := c.AllReduce(ctx, ar[k]); err != nil {
					return err
				}
				shard := make([]float32, Partition(n, size)[k].Len())
				if err := c.ReduceScatter(ctx, in[k], shard); err != nil {
					return err
				}
				rsag[k] = make([]float32, n)
				return c.AllGather(ctx, shard, rsag[k])
			})
			for k := range size {
				for i := range n {
					var want float64
					for j := range size {
						want += float64(in[j][i])
					}
					if ar[k][i] != ar[0][i] || rsag[k][i] != ar[0][i] {
						t.Fatalf("size %d n %d rank %d [%d]: all-reduce %v, rs+ag %v, rank 0 %v", size, n, k, i, ar[k][i], rsag[k][i], ar[0][i])
					}
					if d := float64(ar[k][i]) - want; d > 1e-5 || d < -1e-5 {
						t.Fatalf("size %d [%d]: sum %v, want %v", size, i, ar[k][i], want)
					}
				}
			}
		}
	}
}

func TestPartition(t *testing.T) {
	got := Partition(10, 4)
	want := []Range{{0, 3}, {3, 6}, {6, 8}, {8, 10}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Partition(10, 4) = %v, want %v", got, want)
		}
	}
	if o := RingOrder(1, 4); o[0] != 2 || o[3] != 1 {
		t.Fatalf("RingOrder(1, 4) = %v", o)
	}
}
