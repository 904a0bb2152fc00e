package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/par"
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
	for _, name := range []string{"go", "avx2", "avx512", "neon", "blas"} {
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

// smallBlockKernels copies every blocked kernel with tiny cache blocks, so
// that small shapes cross many k and n blocks (k block multiple of 8 or
// not, for the AVX transposes) and every packing mode is exercised.
func smallBlockKernels() []Kernel {
	var ks []Kernel
	for _, k := range Available() {
		d, ok := k.(*blocked)
		if !ok {
			continue
		}
		for _, kc := range []int{16, 19} {
			v := *d
			v.name = fmt.Sprintf("%s/kc%d", d.name, kc)
			v.kc, v.nc = kc, 2*d.nr
			ks = append(ks, &v)
		}
	}
	// The 4×4 pure Go tile is what the other 64-bit targets (and arm64
	// with --gemm go) run; test it here too.
	return append(ks, &blocked{name: "go4x4/kc19", mr: goMR, nr: goNR, kc: 19, nc: 8, micro: wholeTiles(microGo, goMR, goNR)})
}

type shape struct{ m, n, k int }

func shapes() []shape {
	return []shape{
		{1, 1, 1}, {1, 37, 5}, {29, 1, 7}, {13, 17, 1}, {1, 1, 300},
		{14, 32, 16}, {6, 16, 8}, {15, 33, 17}, {28, 64, 3}, {7, 5, 3},
		{31, 47, 259}, {45, 100, 513}, {3, 200, 64}, {200, 3, 64},
		{100, 1030, 20}, {70, 70, 70}, {20, 70, 600}, {28, 100, 40}, {29, 100, 40}, {8, 300, 77},
	}
}

func TestKernel_Sgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := refKernel{}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 1}, {-1.5, 0.25}, {1, 1}}
	for _, k := range append(testKernels(t), smallBlockKernels()...) {
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

func TestKernel_SgemmScalars(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name        string
		alpha, beta float32
		k           int
	}{
		{"alpha0_keeps_beta_c", 0, 0.5, 9},
		{"alpha0_beta0_zeroes_nan", 0, 0, 9},
		{"k0_scales_c", 1, 2, 0},
		{"k0_beta0_zeroes_nan", 1, 0, 0},
		{"beta_minus1", 2, -1, 33},
	}
	for _, kern := range testKernels(t) {
		for _, tc := range cases {
			t.Run(kern.Name()+"/"+tc.name, func(t *testing.T) {
				p := newProblem(rng, false, true, 17, 35, tc.k, tc.alpha, tc.beta, 2)
				want := p.run(refKernel{}, true)
				p.compare(t, kern.Name(), p.run(kern, false), want)
			})
		}
	}
}

// TestKernel_Determinism checks that the pure kernels give the same bits
// for 1, 2 and 3 threads, serially, and on repeated runs. The shape spans
// several k and n cache blocks and ragged edges.
func TestKernel_Determinism(t *testing.T) {
	defer par.SetThreads(par.Threads())
	rng := rand.New(rand.NewPCG(5, 6))
	for _, kern := range testKernels(t) {
		if kern.Name() == "ref" {
			continue
		}
		t.Run(kern.Name(), func(t *testing.T) {
			for tr := range 8 {
				// Several row tiles (B packed up front) over two n blocks and
				// three k blocks; then few row tiles (B read in place or
				// packed panel by panel).
				sh := shape{61, 1100, 530}
				if testing.Short() || kern.Name() == "go" {
					sh = shape{45, 300, 300}
				}
				if tr >= 4 {
					sh = shape{20, 700, 300}
				}
				p := newProblem(rng, tr&1 != 0, tr&2 != 0, sh.m, sh.n, sh.k, 1, 0.5, 1)
				par.SetThreads(1)
				want := p.run(kern, false)
				blasLogged := false
				for _, threads := range []int{2, 3, 2} {
					par.SetThreads(threads)
					got := p.run(kern, false)
					if i := firstBitDiff(got, want); i >= 0 && !strings.HasPrefix(kern.Name(), "blas:") {
						t.Fatalf("%v: threads=%d differs from threads=1 at %d: %g vs %g", p, threads, i, got[i], want[i])
					} else if i >= 0 && !blasLogged {
						t.Logf("%v: system BLAS result depends on the thread count (allowed)", p)
						blasLogged = true
					}
					if i := firstBitDiff(p.run(kern, false), got); i >= 0 {
						t.Fatalf("%v: threads=%d: repeated run differs at %d", p, threads, i)
					}
				}
				if i := firstBitDiff(p.run(kern, true), want); i >= 0 && !strings.HasPrefix(kern.Name(), "blas:") {
					t.Fatalf("%v: SgemmSerial differs from Sgemm at %d", p, i)
				}
			}
		})
	}
}

func firstBitDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

func TestKernel_SgemmPanicsOnBadShape(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	cases := []struct {
		name string
		call func(k Kernel)
		want string
	}{
		{"lda_too_small", func(k Kernel) { k.Sgemm(false, false, 3, 3, 4, 1, a, 3, b, 3, 0, c, 3) }, "A stored 3x4 (trans=false) needs stride >= 4, got 3"},
		{"b_too_short", func(k Kernel) { k.Sgemm(false, true, 2, 5, 2, 1, a, 2, b[:9], 2, 0, c, 5) }, "B stored 5x2 (trans=true) with stride 2 needs 10 elements, got 9"},
		{"c_too_short", func(k Kernel) { k.Sgemm(true, false, 4, 3, 2, 1, a, 4, b, 3, 0, c, 4) }, "C stored 4x3 (trans=false) with stride 4 needs 15 elements, got 12"},
		{"negative", func(k Kernel) { k.SgemmSerial(false, false, -1, 3, 2, 1, a, 2, b, 3, 0, c, 3) }, "negative size m=-1 n=3 k=2"},
	}
	for _, kern := range Available() {
		for _, tc := range cases {
			t.Run(kern.Name()+"/"+tc.name, func(t *testing.T) {
				defer func() {
					r := recover()
					msg, _ := r.(string)
					if !strings.Contains(msg, tc.want) {
						t.Fatalf("panic %q, want it to contain %q", r, tc.want)
					}
				}()
				tc.call(kern)
			})
		}
	}
}

func TestGet(t *testing.T) {
	for _, k := range Available() {
		got, err := Get(strings.ToUpper(k.Name()))
		if err != nil || got.Name() != k.Name() {
			t.Errorf("Get(%q) = %v, %v", k.Name(), got, err)
		}
	}
	if k, err := Get("blas"); err == nil && !strings.HasPrefix(k.Name(), "blas:") {
		t.Errorf(`Get("blas").Name() = %q`, k.Name())
	}
	_, err := Get("tpu")
	if err == nil || !strings.Contains(err.Error(), `"tpu"`) || !strings.Contains(err.Error(), "ref, go") {
		t.Fatalf(`Get("tpu") error = %v, want one naming it and listing the available kernels`, err)
	}
}

// TestDefault: without a command's choice ops use the fastest kernel that
// needs no system library, and every name Get accepts is normalised.
func TestDefault(t *testing.T) {
	want := "go"
	for _, name := range []string{"neon", "avx2", "avx512"} {
		if _, err := Get(name); err == nil {
			want = name
		}
	}
	if got := Default().Name(); got != want {
		t.Errorf("Default() = %q, want %q", got, want)
	}
	for _, tc := range []struct{ name, want string }{{"ref", "ref"}, {" Go ", "go"}, {"GO", "go"}} {
		if k, err := Get(tc.name); err != nil || k.Name() != tc.want {
			t.Errorf("Get(%q) = %v, %v; want %s", tc.name, k, err, tc.want)
		}
	}
	if _, err := Get("cuda"); err == nil {
		t.Fatal(`Get("cuda") succeeded`)
	}
}

func TestDescribe(t *testing.T) {
	k, err := Get("go")
	if err != nil {
		t.Fatal(err)
	}
	d := Describe(k)
	for _, want := range []string{"gemm: go (portable pure Go)", fmt.Sprintf("threads=%d", par.Threads()), "blas: "} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe(go) = %q, want it to contain %q", d, want)
		}
	}
	t.Log(Describe(Default()))
}

// TestBLAS_Loaded fails when libopenblas is installed but was not opened,
// which is what happens if purego's loader breaks under CGO_ENABLED=0.
func TestBLAS_Loaded(t *testing.T) {
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libopenblas.so.0"); err != nil || runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("no libopenblas.so.0 at the Debian amd64 path")
	}
	if noblasTag {
		t.Skip("built with -tags noblas")
	}
	k, err := Get("blas")
	if err != nil {
		t.Fatalf("libopenblas.so.0 exists but: %v (%s)", err, blasStatus())
	}
	t.Logf("%s: %s", k.Name(), blasStatus())
}
