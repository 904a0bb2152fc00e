package gemm

import (
	"fmt"
	"testing"
	"time"
)

func TestTrSpeed(t *testing.T) {
	for _, rows := range []int{8, 32, 768} {
		kc := 256
		src := alignedFloats(rows * kc)
		dst := alignedFloats(kc * 32 * (rows/32 + 1))
		reps := 2000000 / rows
		best := time.Hour
		for range 5 {
			t0 := time.Now()
			for range reps {
				for r := 0; r+8 <= rows; r += 8 {
					pan := r / 32
					transpose8Strip(&src[r*kc], kc, &dst[pan*kc*32+r%32], 32, kc/8)
				}
			}
			best = min(best, time.Since(t0))
		}
		fmt.Printf("rows=%d: %.3f ns/elem\n", rows, float64(best.Nanoseconds())/float64(reps*rows*kc))
	}
}
