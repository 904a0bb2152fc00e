package gemm

import (
	"sync"
	"time"
)

// Peak is the machine's measured fp32 peak: threads goroutines each run a
// loop of independent FMAs (no loads, no dependencies between them) on the
// widest vector unit the CPU has, so the rate is what the FMA pipes give
// at the clock the cores run at now (turbo included), not a paper number.
type Peak struct {
	ISA       string  `json:"isa"`               // "avx512", "avx2"; "" where no probe exists
	Threads   int     `json:"threads"`           // concurrent loops
	GFLOPS    float64 `json:"gflops"`            // all threads together
	PerThread float64 `json:"gflops_per_thread"` // GFLOPS / Threads
}

// MeasurePeak times the FMA loop on threads goroutines for about dur and
// returns the summed rate. ok is false where this architecture has no
// probe (the result is then zero).
func MeasurePeak(threads int, dur time.Duration) (p Peak, ok bool) {
	isa, loop, flopsPerIter := peakLoop()
	if loop == nil || threads < 1 {
		return Peak{}, false
	}
	const chunk = 1 << 16 // iterations per call: ~0.1–1 ms
	loop(chunk)           // warm the vector unit up (AVX-512 licence, clocks)
	var wg sync.WaitGroup
	counts := make([]int, threads)
	start := time.Now()
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < dur {
				loop(chunk)
				counts[t]++
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	var iters float64
	for _, c := range counts {
		iters += float64(c) * chunk
	}
	g := iters * flopsPerIter / el / 1e9
	return Peak{ISA: isa, Threads: threads, GFLOPS: g, PerThread: g / float64(threads)}, true
}
