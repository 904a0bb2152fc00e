package gemm

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/par"
)

//go:noescape
func kernAVX512x12(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x6(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x8(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512b15(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512b14(kc int, a, b, c *float32, ldc int, alpha, beta float32)

type kfn func(kc int, a, b, c *float32, ldc int, alpha, beta float32)

func wrap(f kfn) microFunc {
	return func(kc int, a, b, c []float32, ldc int, alpha, beta float32) { f(kc, &a[0], &b[0], &c[0], ldc, alpha, beta) }
}

func TestVariants(t *testing.T) {
	vs := []struct {
		name   string
		mr, nr int
		f      kfn
	}{
		{"14x32", 14, 32, kernAVX512}, {"12x32", 12, 32, kernAVX512x12}, {"6x64", 6, 64, kernAVX512x6},
		{"8x48", 8, 48, kernAVX512x8}, {"b15x32", 15, 32, kernAVX512b15}, {"b14x32", 14, 32, kernAVX512b14},
	}
	n := 1024
	par.SetThreads(threadsV)
	for _, kc := range []int{128, 256, 384} {
		for _, nc := range []int{512, 1024, 2048} {
			for _, v := range vs {
				d := &blocked{name: v.name, mr: v.mr, nr: v.nr, kc: kc, nc: nc - nc%v.nr, micro: wrap(v.f)}
				a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
				for i := range a {
					a[i], b[i] = float32(i%7), float32(i%5)
				}
				best := time.Hour
				for range 7 {
					t0 := time.Now()
					d.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
					best = min(best, time.Since(t0))
				}
				fmt.Printf("kc=%d nc=%d %-7s %.1f GFLOP/s\n", kc, nc, v.name, 2*float64(n*n*n)/best.Seconds()/1e9)
			}
		}
	}
}

var threadsV = 1
