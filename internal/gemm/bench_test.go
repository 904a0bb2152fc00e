package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSgemm times square products for every available kernel, e.g.
//
//	go test -run ^$ -bench 'Sgemm/.*/1024' ./internal/gemm
//
// It reports GFLOP/s (2·m·n·k per call) next to ns/op.
func BenchmarkSgemm(b *testing.B) {
	for _, k := range Available() {
		for _, n := range []int{64, 256, 1024} {
			if k.Name() == "ref" && n > 256 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%d", k.Name(), n), func(b *testing.B) {
				benchShape(b, k, false, false, n, n, n)
			})
		}
	}
}

// BenchmarkSgemmShapes times the products of a small transformer (d=256,
// 1024 tokens): the projections and their weight gradients.
func BenchmarkSgemmShapes(b *testing.B) {
	shapes := []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"qkv_1024x768x256", false, false, 1024, 768, 256},
		{"linT_1024x512x256", false, true, 1024, 512, 256},
		{"dW_256x768x1024", true, false, 256, 768, 1024},
		{"attn_128x128x64", false, true, 128, 128, 64},
	}
	for _, k := range Available() {
		if k.Name() == "ref" {
			continue
		}
		for _, s := range shapes {
			b.Run(k.Name()+"/"+s.name, func(b *testing.B) {
				benchShape(b, k, s.transA, s.transB, s.m, s.n, s.k)
			})
		}
	}
}

func benchShape(b *testing.B, k Kernel, transA, transB bool, m, n, kk int) {
	rng := rand.New(rand.NewPCG(7, 8))
	p := newProblem(rng, transA, transB, m, n, kk, 1, 0, 0)
	b.ResetTimer()
	for b.Loop() {
		k.Sgemm(transA, transB, m, n, kk, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
