package data

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// Cursor is where a Sampler stands: the epoch and how many indices of that
// epoch's order were handed out. It is what a checkpoint saves to resume
// the data stream exactly.
type Cursor struct {
	Epoch  int `json:"epoch"`
	Offset int `json:"offset"`
}

// Sampler hands out dataset indices in batches, epoch after epoch, in an
// order that depends only on the seed and the epoch number: epoch e is a
// Fisher–Yates shuffle driven by PCG(seed, e). Restarting from a Cursor
// therefore continues with exactly the indices an uninterrupted run would
// have seen. Like a PyTorch DataLoader with drop_last, an epoch ends when
// fewer than a batch of indices remain; the remainder is skipped.
type Sampler struct {
	n       int
	seed    uint64
	shuffle bool
	cur     Cursor
	order   []int // the order of cur.Epoch
}

// NewSampler returns a sampler over n items at epoch 0. With shuffle false
// every epoch is 0, 1, …, n−1.
func NewSampler(n int, seed uint64, shuffle bool) *Sampler {
	s := &Sampler{n: n, seed: seed, shuffle: shuffle}
	s.order = s.orderOf(0)
	return s
}

// Len is the number of items.
func (s *Sampler) Len() int { return s.n }

// Cursor returns the current position.
func (s *Sampler) Cursor() Cursor { return s.cur }

// Seek moves to c (from a checkpoint).
func (s *Sampler) Seek(c Cursor) error {
	if c.Epoch < 0 || c.Offset < 0 || c.Offset > s.n {
		return fmt.Errorf("data: cursor %+v out of range for %d items", c, s.n)
	}
	s.cur = c
	s.order = s.orderOf(c.Epoch)
	return nil
}

// Next returns the next k indices, starting a new epoch when fewer than k
// remain in the current one. k must be in [1, Len].
func (s *Sampler) Next(k int) []int {
	if k < 1 || k > s.n {
		panic(fmt.Sprintf("data: Sampler.Next(%d) with %d items", k, s.n))
	}
	if s.cur.Offset+k > s.n {
		s.cur = Cursor{Epoch: s.cur.Epoch + 1}
		s.order = s.orderOf(s.cur.Epoch)
	}
	out := append([]int(nil), s.order[s.cur.Offset:s.cur.Offset+k]...)
	s.cur.Offset += k
	return out
}

// orderOf returns epoch e's permutation.
func (s *Sampler) orderOf(e int) []int {
	order := make([]int, s.n)
	for i := range order {
		order[i] = i
	}
	if !s.shuffle {
		return order
	}
	src := rand.NewPCG(s.seed, uint64(e))
	for i := s.n - 1; i > 0; i-- {
		j := int(uniform(src, uint64(i+1)))
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// uniform returns a uniform integer in [0, n) from src by Lemire's
// multiply-and-reject method. It is written out (rather than using
// rand.Shuffle) so that the order can never change with the Go version.
func uniform(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
