// Package par runs loops across a fixed number of worker goroutines.
//
// Every heavy kernel in gorlhf (GEMM, attention, norms, AdamW) splits its
// outer loop with For. The split depends only on the loop length and the
// thread count, never on timing, so results are bit-identical for a fixed
// thread count. The thread count defaults to runtime.NumCPU() and is set
// once at start-up (the --threads flag) with SetThreads. The chunks run on
// a team of long-lived workers that spin briefly between loops (team.go),
// or on fresh goroutines when the team is taken (nested or concurrent
// loops) or there are more threads than GOMAXPROCS.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.NumCPU())) }

// Threads returns the number of workers kernels use.
func Threads() int { return int(threads.Load()) }

// SetThreads sets the number of workers; n < 1 means runtime.NumCPU().
func SetThreads(n int) {
	if n < 1 {
		n = runtime.NumCPU()
	}
	threads.Store(int32(n))
}

// For calls fn(lo, hi) over disjoint chunks covering [0, n), using up to
// Threads() goroutines. Chunks hold at least grain items (grain < 1 means 1)
// so tiny loops stay on the calling goroutine. fn must be safe to run
// concurrently on disjoint ranges.
func For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	w := Threads()
	if maxW := (n + grain - 1) / grain; w > maxW {
		w = maxW
	}
	if w <= 1 {
		fn(0, n)
		return
	}
	chunk := (n + w - 1) / w
	if runTeam(n, chunk, fn) {
		return
	}
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}
