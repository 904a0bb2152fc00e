package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// problem is one Sgemm call with its own random operands. Strides may be
// larger than the rows they hold, and C is surrounded by sentinel values
// that no kernel may touch.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	lda, ldb, ldc  int
	a, b, c        []float32
}

const sentinel = float32(-12345.5)

func newProblem(rng *rand.Rand, transA, transB bool, m, n, k int, alpha, beta float32, pad int) *problem {
	p := &problem{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	p.lda, p.ldb, p.ldc = max(ac, 1)+pad, max(bc, 1)+pad, max(n, 1)+pad
	p.a = randSlice(rng, ar*p.lda)
	p.b = randSlice(rng, br*p.ldb)
	p.c = make([]float32, m*p.ldc+pad) // tail past the last row must stay untouched too
	for i := range p.c {
		p.c[i] = sentinel
	}
	for i := range m {
		for j := range n {
			if beta == 0 {
				p.c[i*p.ldc+j] = float32(math.NaN())
			} else {
				p.c[i*p.ldc+j] = rng.Float32()*2 - 1
			}
		}
	}
	return p
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

func (p *problem) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d",
		p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.beta, p.lda, p.ldb, p.ldc)
}

// run applies kernel k to a fresh copy of C and returns it.
func (p *problem) run(k Kernel, serial bool) []float32 {
	c := append([]float32(nil), p.c...)
	f := k.Sgemm
	if serial {
		f = k.SgemmSerial
	}
	f(p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
	return c
}

// tolerance bounds the rounding error of element (i, j) by the classic
// worst case for a k-term float32 sum: (k+4)·u·(|alpha|·Σ|a||b| + |beta·c|).
// A missing or doubled term (error about Σ|a||b|/k) still exceeds it.
func (p *problem) tolerance(i, j int) float64 {
	var s float64
	for q := range p.k {
		s += math.Abs(float64(at(p.a, p.lda, p.transA, i, q) * at(p.b, p.ldb, p.transB, q, j)))
	}
	s *= math.Abs(float64(p.alpha))
	if p.beta != 0 {
		s += math.Abs(float64(p.beta * p.c[i*p.ldc+j]))
	}
	return float64(p.k+4)*1.2e-7*s + 1e-30
}

// compare reports the first element that differs from want beyond
// tolerance, and any change outside the C window.
func (p *problem) compare(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for idx := range got {
		i, j := idx/p.ldc, idx%p.ldc
		inside := i < p.m && j < p.n
		if !inside {
			if math.Float32bits(got[idx]) != math.Float32bits(sentinel) {
				t.Fatalf("%s %v: element %d (row %d col %d) outside C changed to %g", name, p, idx, i, j, got[idx])
			}
			continue
		}
		d := math.Abs(float64(got[idx] - want[idx]))
		if !(d <= p.tolerance(i, j)) {
			t.Fatalf("%s %v: C[%d][%d] = %g, ref %g (|diff| %g > tol %g)", name, p, i, j, got[idx], want[idx], d, p.tolerance(i, j))
		}
	}
}

// testKernels is every available kernel plus each one Get can force.
func testKernels(t *testing.T) []Kernel {
	ks := Available()
	for _, name := range []string{"go", "avx2", "avx512", "blas"} {
		if k, err := Get(name); err == nil {
			if k.Name() != name && name != "blas" {
				t.Errorf("Get(%q).Name() = %q", name, k.Name())
			}
		} else {
			t.Logf("kernel %s not available: %v", name, err)
		}
	}
	return ks
}

type shape struct{ m, n, k int }

func shapes() []shape {
	return []shape{
		{1, 1, 1}, {1, 37, 5}, {29, 1, 7}, {13, 17, 1}, {1, 1, 300},
		{14, 32, 16}, {6, 16, 8}, {15, 33, 17}, {28, 64, 3}, {7, 5, 3},
		{31, 47, 259}, {45, 100, 513}, {3, 200, 64}, {200, 3, 64},
		{100, 1030, 20}, {70, 70, 70},
	}
}

func TestKernel_Sgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := refKernel{}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 1}, {-1.5, 0.25}, {1, 1}}
	for _, k := range testKernels(t) {
		if k.Name() == "ref" {
			continue
		}
		t.Run(k.Name(), func(t *testing.T) {
			for si, sh := range shapes() {
				for tr := range 4 {
					sc := scalars[(si+tr)%len(scalars)]
					pad := (si + tr) % 3 * 3
					p := newProblem(rng, tr&1 != 0, tr&2 != 0, sh.m, sh.n, sh.k, sc.alpha, sc.beta, pad)
					want := p.run(ref, true)
					p.compare(t, k.Name()+"/Sgemm", p.run(k, false), want)
					p.compare(t, k.Name()+"/SgemmSerial", p.run(k, true), want)
				}
			}
		})
	}
}
