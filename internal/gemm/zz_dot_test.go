package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/par"
)

func TestDotVsBlocked(t *testing.T) {
	par.SetThreads(1)
	defer par.SetThreads(0)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	k0, _ := Get("avx512")
	withDot := k0.(*blocked)
	noDot := *withDot
	noDot.dot = nil
	for _, m := range []int{24, 32, 48, 64} {
		for _, kk := range []int{256, 1024} {
			n := 768
			p := newProblem(rand.New(rand.NewPCG(1, 1)), false, true, m, n, kk, 1, 0, 0)
			res := []float64{}
			for _, d := range []*blocked{withDot, &noDot} {
				best := time.Hour
				for range 7 {
					t0 := threadCPU()
					for range 20 {
						if d.dot != nil {
							d.runDot(&call{false, true, m, n, kk, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc}, false)
						} else {
							d.SgemmSerial(false, true, m, n, kk, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
						}
					}
					best = min(best, (threadCPU()-t0)/20)
				}
				res = append(res, float64(best.Nanoseconds())/1e3)
			}
			fmt.Printf("m=%d k=%d dot %.1f us, blocked %.1f us\n", m, kk, res[0], res[1])
		}
	}
}
