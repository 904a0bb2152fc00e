package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorlhf/gorlhf/internal/train"
)

// peakRSSMB returns the process's peak resident set size in MB: VmHWM
// from /proc/self/status (Linux), else getrusage's ru_maxrss where the
// system has it (rusage_unix.go), else 0.
func peakRSSMB() float64 {
	if kb, ok := procStatusKB("VmHWM"); ok {
		return kb / 1024
	}
	return maxRSSMB()
}

// procStatusKB reads a "Name:   123 kB" line of /proc/self/status.
func procStatusKB(name string) (float64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != name {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, false
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		return v, err == nil
	}
	return 0, false
}

// memoryReport is a rank's memory over a training run (--report_memory):
// the resident set after setup (model loaded, state sharded, garbage
// returned to the OS), the peak before that, and the peak of training
// alone, read from VmHWM after resetting it (Linux /proc/self/clear_refs;
// elsewhere the training peak is the whole run's).
type memoryReport struct {
	setupRSS, setupPeak, trainPeak float64
	reset                          bool
	// live is the largest live heap a garbage collection found during
	// training (runtime/metrics /gc/heap/live:bytes, sampled): what the
	// run needs, without the collector's slack (GOGC) and the pages it has
	// not yet returned to the OS, which peak RSS adds.
	live    atomic.Uint64
	stop    chan struct{}
	stopped sync.WaitGroup
}

// startMemoryReport settles the heap after setup and starts measuring
// until s's last step is done (the final save is not training).
func startMemoryReport(s *train.Session) *memoryReport {
	runtime.GC()
	debug.FreeOSMemory()
	m := &memoryReport{setupPeak: peakRSSMB()}
	m.setupRSS, _ = procStatusKB("VmRSS")
	m.setupRSS /= 1024
	m.reset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.stop = make(chan struct{})
	m.stopped.Go(m.sampleLive)
	s.BeforeFinish = func() {
		m.trainPeak = peakRSSMB()
		close(m.stop)
		m.stopped.Wait()
	}
	return m
}

// sampleLive records the live heap every 5 ms until stop is closed.
func (m *memoryReport) sampleLive() {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if v := sample[0].Value; v.Kind() == metrics.KindUint64 && v.Uint64() > m.live.Load() {
			m.live.Store(v.Uint64())
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// print writes the report as one JSON line (nothing for a nil report).
func (m *memoryReport) print(w io.Writer, s *train.Session) {
	if m == nil {
		return
	}
	mem := s.Memory()
	b, _ := json.Marshal(map[string]any{"memory": true, "rank": s.Rank(), "ranks": s.Ranks(), "zero_stage": s.ZeroStage(),
		"param_bytes": mem.Params, "grad_bytes": mem.Grads, "optim_bytes": mem.Optim, "scratch_bytes": mem.Scratch,
		"setup_rss_mb": m.setupRSS, "setup_peak_rss_mb": m.setupPeak, "train_peak_rss_mb": m.trainPeak, "peak_rss_mb": peakRSSMB(), "peak_live_heap_mb": float64(m.live.Load()) / (1 << 20),
		"peak_reset": m.reset})
	fmt.Fprintln(w, string(b))
}
