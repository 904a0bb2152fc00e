package par

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// withProcs runs the test body with GOMAXPROCS and Threads set to n, so
// For may use a team of n−1 workers even on a small CI machine.
func withProcs(t *testing.T, n int) {
	t.Helper()
	oldProcs, oldThreads := runtime.GOMAXPROCS(n), Threads()
	SetThreads(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(oldProcs); SetThreads(oldThreads) })
}

// TestFor_TeamSameChunks: with a team, For makes exactly the chunks the
// goroutine path makes, and the workers (not only the caller) run them.
func TestFor_TeamSameChunks(t *testing.T) {
	withProcs(t, 4)
	for _, c := range []struct{ n, grain int }{{1, 1}, {5, 1}, {7, 2}, {100, 16}, {1000, 1}, {9, 0}} {
		var mu sync.Mutex
		var got [][2]int
		For(c.n, c.grain, func(lo, hi int) {
			mu.Lock()
			got = append(got, [2]int{lo, hi})
			mu.Unlock()
		})
		var want [][2]int
		w := min(Threads(), (c.n+max(c.grain, 1)-1)/max(c.grain, 1))
		chunk := (c.n + w - 1) / w
		for lo := 0; lo < c.n; lo += chunk {
			want = append(want, [2]int{lo, min(lo+chunk, c.n)})
		}
		slices.SortFunc(got, func(a, b [2]int) int { return a[0] - b[0] })
		if !slices.Equal(got, want) {
			t.Errorf("n=%d grain=%d: chunks %v, want %v", c.n, c.grain, got, want)
		}
	}
	tm := current.Load()
	if tm == nil || len(tm.workers) != 3 {
		t.Fatalf("no team of 3 workers after For at 4 threads: %+v", tm)
	}
	for i, w := range tm.workers {
		if w.done.Load() == 0 {
			t.Errorf("worker %d never ran a chunk", i)
		}
	}
}

// TestFor_NestedAndConcurrent: For inside For, and For from many
// goroutines at once, fall back to goroutines where the team is taken and
// still visit every index once; bounded in time.
func TestFor_NestedAndConcurrent(t *testing.T) {
	withProcs(t, 4)
	var total atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					For(16, 1, func(lo, hi int) {
						for range hi - lo {
							For(10, 1, func(lo, hi int) { total.Add(int64(hi - lo)) })
						}
					})
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("nested/concurrent For did not finish in 60 s")
	}
	if want := int64(8 * 200 * 16 * 10); total.Load() != want {
		t.Fatalf("visited %d items, want %d", total.Load(), want)
	}
}

// TestSetThreads_RetiresTeam: a new thread count makes a new team and the
// old one is closed, its workers let go.
func TestSetThreads_RetiresTeam(t *testing.T) {
	withProcs(t, 4)
	For(100, 1, func(lo, hi int) {})
	old := current.Load()
	SetThreads(3)
	For(100, 1, func(lo, hi int) {})
	if tm := current.Load(); tm == old || len(tm.workers) != 2 {
		t.Fatalf("team after SetThreads(3): %d workers (same as before: %v)", len(tm.workers), tm == old)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !old.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("old team not closed after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSetSpin_Zero: with no spinning, workers park after every loop and
// For still runs every chunk, loop after loop.
func TestSetSpin_Zero(t *testing.T) {
	withProcs(t, 3)
	defer SetSpin(Spin())
	SetSpin(0)
	var n atomic.Int64
	for range 200 {
		For(30, 1, func(lo, hi int) { n.Add(int64(hi - lo)) })
	}
	if n.Load() != 200*30 {
		t.Fatalf("visited %d, want %d", n.Load(), 200*30)
	}
	if SetSpin(-time.Second); Spin() != 0 {
		t.Fatalf("SetSpin(-1s) left %v", Spin())
	}
}

// TestFor_ParkWakeStress: with no spinning every loop parks the worker and
// the next one must wake it; thousands of such hand-offs in a row, bounded
// in time, find a lost wake-up as a hang (one was seen under qemu's arm64
// emulation with a two-word handshake; tools/ci/arm64-qemu-check.sh runs
// this package there).
func TestFor_ParkWakeStress(t *testing.T) {
	withProcs(t, 2)
	defer SetSpin(Spin())
	SetSpin(0)
	const loops = 5000
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range loops {
			For(2, 1, func(lo, hi int) { n.Add(int64(hi - lo)) })
		}
	}()
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatalf("hung after %d of %d loops", n.Load()/2, loops)
	}
	if n.Load() != 2*loops {
		t.Fatalf("visited %d, want %d", n.Load(), 2*loops)
	}
}
