package generate

import (
	"math"
	"slices"
	"testing"
)

// softmaxT is the reference distribution softmax(logits/T) in float64.
func softmaxT(logits []float32, temp float64) []float64 {
	m := float64(slices.Max(logits))
	p := make([]float64, len(logits))
	var s float64
	for i, v := range logits {
		p[i] = math.Exp((float64(v) - m) / temp)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// TestSampler_Filters checks which tokens each filter can ever produce,
// by sweeping the uniform draw over [0, 1), and that the reported
// log-probs are those of the renormalised distribution actually used and
// of the raw model.
func TestSampler_Filters(t *testing.T) {
	// p(T=1) ≈ .50 .25 .12 .06 .04 .03 for tokens 3 1 4 0 5 2
	logits := []float32{-0.7, 0.7, -1.2, 1.4, 0, -1}
	raw := softmaxT(logits, 1)
	cases := []struct {
		name    string
		p       SamplingParams
		allowed []int32
	}{
		{"greedy", SamplingParams{}, []int32{3}},
		{"temperature_all", SamplingParams{Temperature: 1}, []int32{0, 1, 2, 3, 4, 5}},
		{"top_k_2", SamplingParams{Temperature: 1, TopK: 2}, []int32{3, 1}},
		{"top_k_1_is_greedy", SamplingParams{Temperature: 2, TopK: 1}, []int32{3}},
		{"top_p_0.7", SamplingParams{Temperature: 1, TopP: 0.7}, []int32{3, 1}},
		{"top_p_0.8", SamplingParams{Temperature: 1, TopP: 0.8}, []int32{3, 1, 4}},
		{"min_p_0.2", SamplingParams{Temperature: 1, MinP: 0.2}, []int32{3, 1, 4}},
		{"top_k_then_top_p", SamplingParams{Temperature: 1, TopK: 3, TopP: 0.6}, []int32{3, 1}},
		{"min_p_after_top_p", SamplingParams{Temperature: 1, TopP: 0.95, MinP: 0.4}, []int32{3, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sm sampler
			seen := map[int32]bool{}
			for u := 0.0; u < 1; u += 1.0 / 512 {
				x := sm.sample(logits, &c.p, u)
				seen[x.token] = true
				if want := math.Log(raw[x.token]); math.Abs(float64(x.raw)-want) > 1e-6 {
					t.Fatalf("raw log-prob of %d = %g, want %g", x.token, x.raw, want)
				}
				if want := usedLogProb(logits, &c.p, c.allowed, x.token); math.Abs(float64(x.logProb)-want) > 1e-6 {
					t.Fatalf("sampling log-prob of %d = %g, want %g", x.token, x.logProb, want)
				}
			}
			var got []int32
			for tok := range seen {
				got = append(got, tok)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.allowed))
			if !slices.Equal(got, want) {
				t.Fatalf("tokens drawn %v, want exactly %v", got, want)
			}
		})
	}
}

// usedLogProb is log q(tok) for q = softmax(logits/T) renormalised over
// the allowed set (0 for greedy).
func usedLogProb(logits []float32, p *SamplingParams, allowed []int32, tok int32) float64 {
	if p.greedy() {
		return 0
	}
	q := softmaxT(logits, float64(p.Temperature))
	var s float64
	for _, a := range allowed {
		s += q[a]
	}
	return math.Log(q[tok] / s)
}

// TestSampler_Frequencies draws many tokens with a seeded generator and
// compares frequencies with softmax(logits/T): the inverse-CDF walk must
// not be biased.
func TestSampler_Frequencies(t *testing.T) {
	logits := []float32{0.3, -1, 2, 0.5, 1.1}
	for _, temp := range []float32{0.5, 1, 2} {
		p := SamplingParams{Temperature: temp}
		rng := sampleRNG(42, 0)
		var sm sampler
		counts := make([]float64, len(logits))
		const n = 40000
		for i := 0; i < n; i++ {
			counts[sm.sample(logits, &p, rng.Float64()).token]++
		}
		for tok, q := range softmaxT(logits, float64(temp)) {
			// 5 standard deviations of a binomial count.
			if d := math.Abs(counts[tok]/n - q); d > 5*math.Sqrt(q*(1-q)/n) {
				t.Errorf("T=%g token %d: frequency %.4f, probability %.4f", temp, tok, counts[tok]/n, q)
			}
		}
	}
}

// TestSampler_TopLogProbs checks the alternatives: sorted, ties by id,
// raw log-probs.
func TestSampler_TopLogProbs(t *testing.T) {
	logits := []float32{1, 3, 3, -2, 0.5}
	var sm sampler
	x := sm.sample(logits, &SamplingParams{TopLogProbs: 3}, 0.5)
	raw := softmaxT(logits, 1)
	want := []int32{1, 2, 0}
	if len(x.top) != 3 {
		t.Fatalf("got %d alternatives, want 3", len(x.top))
	}
	for i, w := range want {
		if x.top[i].Token != w || math.Abs(float64(x.top[i].LogProb)-math.Log(raw[w])) > 1e-6 {
			t.Fatalf("alternative %d = %+v, want token %d log-prob %g", i, x.top[i], w, math.Log(raw[w]))
		}
	}
	if x.token != 1 {
		t.Fatalf("greedy tie must pick the lower id: got %d", x.token)
	}
}

// TestSampleRNG checks that a sample's generator depends on (seed, index)
// only.
func TestSampleRNG(t *testing.T) {
	a, b, c, d := sampleRNG(7, 3), sampleRNG(7, 3), sampleRNG(7, 4), sampleRNG(8, 3)
	x, y, z, w := a.Float64(), b.Float64(), c.Float64(), d.Float64()
	if x != y {
		t.Fatal("same seed and index must give the same stream")
	}
	if x == z || x == w {
		t.Fatal("different index or seed must give a different stream")
	}
}

// TestSamplingParams_Validate rejects out-of-range values.
func TestSamplingParams_Validate(t *testing.T) {
	bad := map[string]SamplingParams{
		"negative_n":      {N: -1},
		"negative_temp":   {Temperature: -0.1},
		"nan_temp":        {Temperature: float32(math.NaN())},
		"top_p_above_one": {TopP: 1.5},
		"min_p_negative":  {MinP: -1},
		"top_k_negative":  {TopK: -2},
		"too_many_top":    {TopLogProbs: MaxTopLogProbs + 1},
		"empty_stop":      {StopStrings: []string{""}},
		"negative_max":    {MaxNewTokens: -3},
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			if p.Validate() == nil {
				t.Fatalf("Validate accepted %+v", p)
			}
		})
	}
	if err := (SamplingParams{N: 4, Temperature: 0.7, TopK: 5, TopP: 0.9, MinP: 0.05}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestSampler_Survivors checks that pre-filtering by weight before the
// sort (what makes top-p and min-p affordable on a 150k vocabulary) never
// changes the drawn token or its log-prob: against a reference that sorts
// the whole vocabulary, on logits with a heavy tail.
func TestSampler_Survivors(t *testing.T) {
	r := sampleRNG(9, 0)
	logits := make([]float32, 5000)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	logits[17] = logits[4000] // a tie
	cases := []SamplingParams{
		{Temperature: 1, TopP: 0.5}, {Temperature: 1, TopP: 0.9}, {Temperature: 1.5, TopP: 0.999999},
		{Temperature: 0.7, MinP: 0.01}, {Temperature: 1, TopP: 0.95, MinP: 0.001}, {Temperature: 3, TopP: 0.3},
	}
	for _, p := range cases {
		var sm sampler
		for k := 0; k < 40; k++ {
			u := r.Float64()
			got := sm.sample(logits, &p, u)
			want := referenceFiltered(logits, &p, u)
			if got.token != want.token || got.logProb != want.logProb {
				t.Fatalf("%+v u=%g: token %d (%g), full sort gives %d (%g)", p, u, got.token, got.logProb, want.token, want.logProb)
			}
		}
	}
}

// referenceFiltered is sampleFiltered with the whole vocabulary sorted.
func referenceFiltered(logits []float32, p *SamplingParams, u float64) sampled {
	var sm sampler
	m, _ := sm.logSumExp(logits)
	e := append([]float32(nil), sm.exps(sm.scaled(logits, m, 1/p.Temperature), 0)...)
	var total float64
	for _, v := range e {
		total += float64(v)
	}
	idx := make([]int32, len(logits))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, byLogit(logits))
	keep := len(idx)
	var cum float64
	for i, id := range idx {
		cum += float64(e[id])
		if p.TopP > 0 && p.TopP < 1 && cum >= float64(p.TopP)*total {
			keep = i + 1
			break
		}
	}
	for i := 1; i < keep && p.MinP > 0; i++ {
		if float64(e[idx[i]]) < float64(p.MinP)*float64(e[idx[0]]) {
			keep = i
		}
	}
	w := make([]float64, keep)
	var kept float64
	for i := range w {
		w[i] = float64(e[idx[i]])
		kept += w[i]
	}
	i := pick(w, u*kept)
	return sampled{token: idx[i], logProb: float32(math.Log(w[i] / kept))}
}
