package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/gorlhf/gorlhf/internal/train"
)

// peakRSSMB returns the process's peak resident set size in MB: VmHWM
// from /proc/self/status (Linux), else getrusage's ru_maxrss (KiB on
// Linux, bytes on macOS).
func peakRSSMB() float64 {
	if kb, ok := procStatusKB("VmHWM"); ok {
		return kb / 1024
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20)
	}
	return float64(ru.Maxrss) / 1024
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
	setupRSS, setupPeak float64
	reset               bool
}

// startMemoryReport settles the heap after setup and starts measuring.
func startMemoryReport() *memoryReport {
	runtime.GC()
	debug.FreeOSMemory()
	m := &memoryReport{setupPeak: peakRSSMB()}
	m.setupRSS, _ = procStatusKB("VmRSS")
	m.setupRSS /= 1024
	m.reset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	return m
}

// print writes the report as one JSON line (nothing for a nil report).
func (m *memoryReport) print(w io.Writer, s *train.Session) {
	if m == nil {
		return
	}
	mem := s.Memory()
	b, _ := json.Marshal(map[string]any{"memory": true, "rank": s.Rank(), "ranks": s.Ranks(), "zero_stage": s.ZeroStage(),
		"param_bytes": mem.Params, "grad_bytes": mem.Grads, "optim_bytes": mem.Optim, "scratch_bytes": mem.Scratch,
		"setup_rss_mb": m.setupRSS, "setup_peak_rss_mb": m.setupPeak, "train_peak_rss_mb": peakRSSMB(), "peak_reset": m.reset})
	fmt.Fprintln(w, string(b))
}
