package gemm

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// TieMargin is how much faster (as a fraction of the fastest score) a
// kernel must measure to beat one earlier in Candidates' preference order:
// a system BLAS must be more than 5% faster than our own kernel to be
// chosen, and avx2 more than 5% faster than avx512.
const TieMargin = 0.05

// ProbeBudget is the time Auto spends measuring, about. Every candidate
// gets at least minProbeRounds rounds even if that takes longer.
const ProbeBudget = 150 * time.Millisecond

const (
	minProbeRounds = 2
	maxProbeRounds = 12
)

// probeShape is one product the probe times: C[m, n] = op(A)·op(B) with
// inner dimension k, called reps times per timing.
type probeShape struct {
	name           string
	transA, transB bool
	m, n, k, reps  int
}

// probeShapes are the products of a small transformer step and of decoding
// (d=256, 512 tokens): a projection x·W, the input gradient dy·Wᵀ, the
// weight gradient xᵀ·dy, and x·Wᵀ for the 4 rows of a decode step.
var probeShapes = []probeShape{
	{"x·W 512×768×256", false, false, 512, 768, 256, 1},
	{"dy·Wᵀ 512×256×768", false, true, 512, 256, 768, 1},
	{"xᵀ·dy 256×768×512", true, false, 256, 768, 512, 1},
	{"decode x·Wᵀ 4×1024×256", false, true, 4, 1024, 256, 8},
}

// Candidates returns the kernels `auto` chooses among, in order of
// preference: our SIMD kernels, widest first (or the portable go kernel
// when there are none), then a system BLAS when one was found.
func Candidates() []Kernel {
	var ks []Kernel
	simd := simdKernels()
	for i := len(simd) - 1; i >= 0; i-- {
		ks = append(ks, simd[i])
	}
	if len(ks) == 0 {
		ks = append(ks, newGoKernel())
	}
	if bk := blasKernel(); bk != nil {
		ks = append(ks, bk)
	}
	return ks
}

// Timing is what the probe measured for one kernel: the best time of each
// probe shape over the rounds, in seconds per call.
type Timing struct {
	Kernel string
	Best   []float64
}

// Total is the summed best time of one call of every probe shape.
func (t Timing) Total() float64 {
	var s float64
	for _, x := range t.Best {
		s += x
	}
	return s
}

// Probe is the outcome of timing the candidates: what was measured and
// which kernel the rule of Choose picked, and why.
type Probe struct {
	Timings []Timing // in Candidates' order
	Scores  []float64
	Pick    int // index into Timings
	Reason  string
	Rounds  int
	Elapsed time.Duration
}

// Choose is the decision rule of `auto`, a function of the timings alone.
// A kernel's score is the geometric mean, over the probe shapes, of its
// time divided by the fastest kernel's time on that shape (1 = fastest on
// every shape). The pick is the first kernel in ts (preference order)
// whose score is within TieMargin of the lowest score, so ties go to our
// own kernels. ts must be non-empty and every Best as long as the first.
func Choose(ts []Timing) (pick int, scores []float64, reason string) {
	scores = make([]float64, len(ts))
	for s := range ts[0].Best {
		fastest := math.Inf(1)
		for _, t := range ts {
			fastest = min(fastest, max(t.Best[s], 1e-12))
		}
		for i, t := range ts {
			scores[i] += math.Log(max(t.Best[s], 1e-12) / fastest)
		}
	}
	best := 0
	for i := range scores {
		scores[i] = math.Exp(scores[i] / float64(max(1, len(ts[0].Best))))
		if scores[i] < scores[best] {
			best = i
		}
	}
	for i := range ts {
		if scores[i] <= scores[best]*(1+TieMargin) {
			pick = i
			break
		}
	}
	if pick == best {
		return pick, scores, "the fastest"
	}
	return pick, scores, fmt.Sprintf("within %.0f%% of the fastest (%s, %.2f) and preferred: ties go to our own kernels, widest first",
		TieMargin*100, ts[best].Kernel, scores[best])
}

// Measure times every kernel of ks on the probe shapes, in rounds that
// interleave the kernels (so a disturbance hits all of them alike), until
// budget has passed (at least minProbeRounds rounds), keeps each kernel's
// best time per shape, and applies Choose. ks must be non-empty.
func Measure(ks []Kernel, budget time.Duration) Probe {
	ops := make([]probeOperands, len(probeShapes))
	for i, s := range probeShapes {
		ops[i] = newProbeOperands(s)
	}
	ts := make([]Timing, len(ks))
	for i, k := range ks {
		ts[i] = Timing{Kernel: k.Name(), Best: make([]float64, len(probeShapes))}
		for s := range ts[i].Best {
			ts[i].Best[s] = math.Inf(1)
		}
	}
	start := time.Now()
	rounds := 0
	for rounds < maxProbeRounds && (rounds < minProbeRounds || time.Since(start) < budget) {
		for i, k := range ks {
			for s, sh := range probeShapes {
				ts[i].Best[s] = min(ts[i].Best[s], ops[s].time(k, sh))
			}
		}
		rounds++
	}
	p := Probe{Timings: ts, Rounds: rounds, Elapsed: time.Since(start)}
	p.Pick, p.Scores, p.Reason = Choose(ts)
	return p
}

// Auto returns the kernel that `auto` means here: the only candidate, or
// the one Measure picks within ProbeBudget. The probe is nil when there
// was nothing to choose between.
func Auto() (Kernel, *Probe) {
	ks := Candidates()
	if len(ks) == 1 {
		return ks[0], nil
	}
	p := Measure(ks, ProbeBudget)
	return ks[p.Pick], &p
}

// String is one line for start-up logs, e.g. "gemm auto: avx512 4.10 ms
// (1.00), blas:openblas 4.60 ms (1.12) per probe round; 4 products × 6
// rounds in 152 ms; picked avx512: the fastest".
func (p Probe) String() string {
	var b strings.Builder
	b.WriteString("gemm auto: ")
	for i, t := range p.Timings {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f ms (%.2f)", t.Kernel, t.Total()*1e3, p.Scores[i])
	}
	fmt.Fprintf(&b, " per probe round (relative time in brackets); %d products × %d rounds in %d ms; picked %s: %s",
		len(probeShapes), p.Rounds, p.Elapsed.Milliseconds(), p.Timings[p.Pick].Kernel, p.Reason)
	return b.String()
}

// probeOperands are the matrices of one probe shape, shared by every
// kernel (C is overwritten: beta 0).
type probeOperands struct{ a, b, c []float32 }

func newProbeOperands(s probeShape) probeOperands {
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%17-8) / 16
		}
		return x
	}
	return probeOperands{a: fill(s.m * s.k), b: fill(s.k * s.n), c: make([]float32, s.m*s.n)}
}

// time returns the seconds per call of s with k.
func (o probeOperands) time(k Kernel, s probeShape) float64 {
	lda, ldb := s.k, s.n
	if s.transA {
		lda = s.m
	}
	if s.transB {
		ldb = s.k
	}
	t0 := time.Now()
	for range s.reps {
		k.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, o.a, lda, o.b, ldb, 0, o.c, s.n)
	}
	return time.Since(t0).Seconds() / float64(s.reps)
}
