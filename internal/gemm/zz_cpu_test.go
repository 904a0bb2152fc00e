package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gorlhf/gorlhf/internal/par"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3 /*CLOCK_THREAD_CPUTIME_ID*/, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

type tcase struct {
	name     string
	ta, tb   bool
	m, n, kk int
}

var tcases = []tcase{
	{"sq1024", false, false, 1024, 1024, 1024},
	{"qkv", false, false, 1024, 768, 256},
	{"linT", false, true, 1024, 512, 256},
	{"dWT", true, false, 256, 768, 1024},
	{"attn", false, true, 128, 128, 64},
	{"attnPV", false, false, 128, 64, 128},
	{"dec8T", false, true, 8, 768, 256},
	{"dec8", false, false, 8, 768, 256},
	{"dec1T", false, true, 1, 768, 256},
}

func TestCPUTime(t *testing.T) {
	par.SetThreads(1)
	defer par.SetThreads(0)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, name := range []string{"avx512", "avx2"} {
		k, _ := Get(name)
		for _, c := range tcases {
			p := newProblem(rand.New(rand.NewPCG(1, 1)), c.ta, c.tb, c.m, c.n, c.kk, 1, 0, 0)
			flop := 2 * float64(c.m*c.n*c.kk)
			reps := max(1, int(2e9/flop/10))
			best := time.Hour
			for range 7 {
				t0 := threadCPU()
				for range reps {
					k.SgemmSerial(c.ta, c.tb, c.m, c.n, c.kk, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
				}
				best = min(best, (threadCPU()-t0)/time.Duration(reps))
			}
			fmt.Printf("%-7s %-8s %8.1f us %7.1f GFLOP/s\n", name, c.name, float64(best.Nanoseconds())/1e3, flop/best.Seconds()/1e9)
		}
	}
}
