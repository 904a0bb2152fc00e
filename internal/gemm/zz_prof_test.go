package gemm

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkProf(b *testing.B) {
	k, _ := Get("avx512")
	cases := []struct {
		name     string
		ta, tb   bool
		m, n, kk int
		serial   bool
	}{
		{"qkv", false, false, 1024, 768, 256, false},
		{"linT", false, true, 1024, 512, 256, false},
		{"attn", false, true, 128, 128, 64, true},
		{"attnPV", false, false, 128, 64, 128, true},
		{"dec8", false, true, 8, 768, 256, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := newProblem(rand.New(rand.NewPCG(1, 1)), c.ta, c.tb, c.m, c.n, c.kk, 1, 0, 0)
			f := k.Sgemm
			if c.serial {
				f = k.SgemmSerial
			}
			for b.Loop() {
				f(c.ta, c.tb, c.m, c.n, c.kk, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
			}
			b.ReportMetric(2*float64(c.m*c.n*c.kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
