package gemm

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestChoose checks the decision rule of auto on given timings (seconds
// per call of each probe shape), independent of which kernel wins here.
func TestChoose(t *testing.T) {
	cases := []struct {
		name   string
		ts     []Timing
		pick   int
		reason string
	}{
		{"OwnFaster", []Timing{{"avx2", []float64{1, 2}}, {"blas:openblas", []float64{1.5, 3}}}, 0, "the fastest"},
		{"BLASClearlyFaster", []Timing{{"avx2", []float64{2, 4}}, {"blas:openblas", []float64{1, 2}}}, 1, "the fastest"},
		// BLAS 3% faster: a tie, our kernel wins.
		{"TieGoesToOwn", []Timing{{"avx2", []float64{1.03, 2.06}}, {"blas:openblas", []float64{1, 2}}}, 0, "within 5% of the fastest (blas:openblas"},
		// Exactly equal: the first in preference order.
		{"EqualTimes", []Timing{{"avx512", []float64{1, 1}}, {"avx2", []float64{1, 1}}, {"blas:mkl", []float64{1, 1}}}, 0, "the fastest"},
		// avx2 6% faster than avx512: beyond the margin, avx2 wins.
		{"BeyondMargin", []Timing{{"avx512", []float64{1.06, 1.06}}, {"avx2", []float64{1, 1}}}, 1, "the fastest"},
		// Each shape counts alike: 10× slower on the small decode shape
		// outweighs 2× faster on the big one (geometric mean √5 vs √2).
		{"ShapesWeighEqually", []Timing{{"avx2", []float64{2e-3, 1e-5}}, {"blas:openblas", []float64{1e-3, 1e-4}}}, 0, "the fastest"},
		{"ZeroTimesAreSafe", []Timing{{"avx2", []float64{0, 0}}, {"blas:openblas", []float64{0, 0}}}, 0, "the fastest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pick, scores, reason := Choose(tc.ts)
			if pick != tc.pick || !strings.HasPrefix(reason, tc.reason) {
				t.Fatalf("Choose = %d (%q), scores %v; want %d (%q…)", pick, reason, scores, tc.pick, tc.reason)
			}
			if slices.Min(scores) < 1-1e-12 {
				t.Fatalf("scores %v: the fastest kernel on every shape scores 1, none less", scores)
			}
		})
	}
}

// TestMeasure: the probe returns one of the kernels it was given, with a
// finite positive time for every shape, at least two rounds, and a line
// that names the pick. Which kernel wins is not asserted.
func TestMeasure(t *testing.T) {
	ks := Candidates()
	if len(ks) < 2 {
		ks = append(ks, refKernel{}) // something to choose between
	}
	p := Measure(ks, time.Millisecond)
	if p.Pick < 0 || p.Pick >= len(ks) || len(p.Timings) != len(ks) || p.Rounds < minProbeRounds {
		t.Fatalf("Measure = pick %d of %d timings, %d rounds", p.Pick, len(p.Timings), p.Rounds)
	}
	for i, tm := range p.Timings {
		if tm.Kernel != ks[i].Name() || len(tm.Best) != len(probeShapes) {
			t.Fatalf("timing %d = %+v, want %s with %d shapes", i, tm, ks[i].Name(), len(probeShapes))
		}
		for _, x := range tm.Best {
			if !(x > 0) || x > 10 {
				t.Fatalf("%s: best time %g s", tm.Kernel, x)
			}
		}
	}
	if line := p.String(); !strings.Contains(line, "picked "+ks[p.Pick].Name()+": ") {
		t.Fatalf("Probe.String() = %q", line)
	}
	t.Log(p)
}

// TestAuto: auto returns an available candidate, and probes only when
// there is a choice.
func TestAuto(t *testing.T) {
	k, p := Auto()
	var names []string
	for _, c := range Candidates() {
		names = append(names, c.Name())
	}
	if !slices.Contains(names, k.Name()) {
		t.Fatalf("Auto() = %s, not a candidate (%v)", k.Name(), names)
	}
	if (p == nil) != (len(names) == 1) {
		t.Fatalf("Auto() probe = %v with candidates %v", p, names)
	}
	if p != nil && p.Timings[p.Pick].Kernel != k.Name() {
		t.Fatalf("Auto() = %s but the probe picked %s", k.Name(), p.Timings[p.Pick].Kernel)
	}
	if slices.Contains(names, "ref") {
		t.Fatalf("candidates %v include the naive ref kernel", names)
	}
}
