package gemm

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gorlhf/gorlhf/internal/par"
)

func BenchmarkOne(b *testing.B) {
	par.SetThreads(1)
	k, _ := Get("avx512")
	var c tcase
	for _, x := range tcases {
		if x.name == os.Getenv("CASE") {
			c = x
		}
	}
	p := newProblem(rand.New(rand.NewPCG(1, 1)), c.ta, c.tb, c.m, c.n, c.kk, 1, 0, 0)
	for b.Loop() {
		k.SgemmSerial(c.ta, c.tb, c.m, c.n, c.kk, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
	}
}
