package gemm

import (
	"runtime"
	"testing"
	"time"
)

// TestMeasurePeak: where a probe exists, the FMA loop reports a positive
// rate for one and two threads, and two threads never report more than
// twice one thread's rate by a wide margin (the sum is over real loops).
func TestMeasurePeak(t *testing.T) {
	one, ok := MeasurePeak(1, 50*time.Millisecond)
	if !ok {
		if runtime.GOARCH == "amd64" {
			if isa, _, _ := peakLoop(); isa != "" {
				t.Fatalf("MeasurePeak not ok on a CPU with %s", isa)
			}
		}
		t.Skipf("no FMA probe on %s", runtime.GOARCH)
	}
	two, _ := MeasurePeak(2, 50*time.Millisecond)
	if one.GFLOPS <= 0 || two.GFLOPS <= 0 || one.ISA == "" || two.Threads != 2 {
		t.Fatalf("peaks %+v and %+v", one, two)
	}
	if two.GFLOPS > 3*one.GFLOPS {
		t.Fatalf("2 threads %.1f GFLOP/s vs 1 thread %.1f: more than the loops can do", two.GFLOPS, one.GFLOPS)
	}
	if _, ok := MeasurePeak(0, time.Millisecond); ok {
		t.Fatal("MeasurePeak(0 threads) ok")
	}
}
