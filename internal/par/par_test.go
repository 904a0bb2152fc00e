package par

import (
	"sync"
	"testing"
)

func TestFor(t *testing.T) {
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2, 3, 8} {
		SetThreads(threads)
		for _, c := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 1}, {100, 16}, {1000, 1}, {5, 100}, {9, 0}} {
			seen := make([]int, c.n)
			var mu sync.Mutex
			var chunks [][2]int
			For(c.n, c.grain, func(lo, hi int) {
				mu.Lock()
				chunks = append(chunks, [2]int{lo, hi})
				mu.Unlock()
				for i := lo; i < hi; i++ {
					seen[i]++
				}
			})
			for i, s := range seen {
				if s != 1 {
					t.Fatalf("threads=%d n=%d: index %d visited %d times", threads, c.n, i, s)
				}
			}
			if len(chunks) > threads && c.n > 0 {
				t.Fatalf("threads=%d n=%d: %d chunks", threads, c.n, len(chunks))
			}
		}
	}
}

// TestFor_Deterministic: the split depends only on n, grain and the thread count.
func TestFor_Deterministic(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(3)
	split := func() map[[2]int]bool {
		var mu sync.Mutex
		m := map[[2]int]bool{}
		For(1000, 10, func(lo, hi int) { mu.Lock(); m[[2]int{lo, hi}] = true; mu.Unlock() })
		return m
	}
	a, b := split(), split()
	if len(a) != 3 || len(a) != len(b) {
		t.Fatalf("chunks %v vs %v", a, b)
	}
	for k := range a {
		if !b[k] {
			t.Fatalf("chunk %v missing in second run", k)
		}
	}
}

func TestSetThreads(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(5)
	if Threads() != 5 {
		t.Fatal(Threads())
	}
	SetThreads(0)
	if Threads() < 1 {
		t.Fatal("SetThreads(0) must mean all cores")
	}
}
