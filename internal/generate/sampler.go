package generate

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// sampleRNG returns the generator of sample index of a request with the
// given seed. It depends on nothing else, which is what makes outputs
// independent of batch composition, scheduling and preemption.
func sampleRNG(seed uint64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(index)*0x9e3779b97f4a7c15+0x632be59bd9b4e019))
}

// sampled is one drawn token with its log-probabilities.
type sampled struct {
	token   int32
	logProb float32 // under the sampling distribution used
	raw     float32 // under the raw model
	top     []TokenLogProb
}

// sampler draws tokens from logits; it holds scratch space, so each
// goroutine needs its own.
type sampler struct {
	idx    []int32
	w      []float64
	x, e32 []float32
}

// sample draws one token from logits [V] with parameters p and the
// uniform draw u ∈ [0, 1). It is a pure function of its inputs: the
// engine and the naive twin call it with the same u and get the same
// token.
func (sm *sampler) sample(logits []float32, p *SamplingParams, u float64) sampled {
	m, lse := sm.logSumExp(logits)
	var out sampled
	switch {
	case p.greedy():
		out.token = argmax(logits)
	case !p.filtered(len(logits)):
		out.token, out.logProb = sm.sampleAll(logits, m, p.Temperature, u)
	default:
		out.token, out.logProb = sm.sampleFiltered(logits, m, p, u)
	}
	out.raw = logits[out.token] - lse
	if p.TopLogProbs > 0 {
		out.top = topLogProbs(logits, lse, p.TopLogProbs)
	}
	return out
}

// filtered reports whether any of top-k, top-p, min-p removes tokens.
func (p *SamplingParams) filtered(vocab int) bool {
	return (p.TopK > 0 && p.TopK < vocab) || (p.TopP > 0 && p.TopP < 1) || p.MinP > 0
}

// logSumExp returns max(x) and log Σ exp(x) (the sum in order).
func (sm *sampler) logSumExp(x []float32) (m, lse float32) {
	m = x[0]
	for _, v := range x {
		m = max(m, v)
	}
	e := sm.exps(x, m)
	var s float32
	for _, v := range e {
		s += v
	}
	return m, m + tensor.Logf(s)
}

// exps returns tensor.Expf(x[j] − m) for every j, in scratch space.
func (sm *sampler) exps(x []float32, m float32) []float32 {
	sm.e32 = slices.Grow(sm.e32[:0], len(x))[:len(x)]
	expShift(sm.e32, x, m)
	return sm.e32
}

// scaled returns (x[j] − m)·inv in scratch space.
func (sm *sampler) scaled(x []float32, m, inv float32) []float32 {
	sm.x = slices.Grow(sm.x[:0], len(x))[:len(x)]
	for j, v := range x {
		sm.x[j] = (v - m) * inv
	}
	return sm.x
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// sampleAll draws from softmax(logits/T) over the whole vocabulary,
// walking the cumulative sum in id order.
func (sm *sampler) sampleAll(logits []float32, m, temp float32, u float64) (int32, float32) {
	e := sm.exps(sm.scaled(logits, m, 1/temp), 0)
	sm.w = slices.Grow(sm.w[:0], len(logits))[:len(logits)]
	var total float64
	for i, v := range e {
		sm.w[i] = float64(v)
		total += sm.w[i]
	}
	tok := pick(sm.w, u*total)
	return int32(tok), float32(math.Log(sm.w[tok] / total))
}

// sampleFiltered sorts the candidates by logit (descending, lower id
// first on ties), keeps the top-k, then the top-p prefix, then those
// above min-p, and draws from the renormalised rest.
func (sm *sampler) sampleFiltered(logits []float32, m float32, p *SamplingParams, u float64) (int32, float32) {
	inv := 1 / p.Temperature
	var total float64
	if p.TopK > 0 && p.TopK < len(logits) {
		sm.idx = sm.topK(logits, p.TopK)
		sm.x = slices.Grow(sm.x[:0], len(sm.idx))[:len(sm.idx)]
		for i, id := range sm.idx {
			sm.x[i] = (logits[id] - m) * inv
		}
		sm.setWeights(sm.exps(sm.x, 0), nil)
		for _, w := range sm.w {
			total += w
		}
	} else {
		e := sm.exps(sm.scaled(logits, m, inv), 0) // in id order; the top token has weight 1
		for _, v := range e {
			total += float64(v)
		}
		sm.idx = sm.survivors(logits, e, total, p)
		sm.setWeights(e, sm.idx)
	}
	keep := len(sm.idx)
	if p.TopP > 0 && p.TopP < 1 {
		var cum float64
		for i, w := range sm.w {
			cum += w
			if cum >= float64(p.TopP)*total {
				keep = i + 1
				break
			}
		}
	}
	if p.MinP > 0 {
		th := float64(p.MinP) * sm.w[0]
		for i := 1; i < keep; i++ {
			if sm.w[i] < th {
				keep = i
				break
			}
		}
	}
	w := sm.w[:keep]
	var kept float64
	for _, v := range w {
		kept += v
	}
	i := pick(w, u*kept)
	return sm.idx[i], float32(math.Log(w[i] / kept))
}

// setWeights fills sm.w with e (in order) or with e[idx[i]].
func (sm *sampler) setWeights(e []float32, idx []int32) {
	n := len(e)
	if idx != nil {
		n = len(idx)
	}
	sm.w = slices.Grow(sm.w[:0], n)[:n]
	for i := range sm.w {
		if idx != nil {
			sm.w[i] = float64(e[idx[i]])
		} else {
			sm.w[i] = float64(e[i])
		}
	}
}

// survivors returns, sorted, a set of tokens that surely contains every
// token top-p and min-p can keep, without sorting the whole vocabulary:
// the tokens of weight ≥ τ (the top weight is 1). With min-p, τ = min-p is
// exact. With top-p, a set holding at least top-p of the mass contains
// the top-p prefix (every token outside it is lighter than every token
// inside), so τ is lowered until the set is that heavy.
func (sm *sampler) survivors(logits, e []float32, total float64, p *SamplingParams) []int32 {
	taus := []float32{1e-4, 1e-8, 0}
	if p.MinP > 0 {
		taus = []float32{p.MinP}
	}
	for _, tau := range taus {
		idx := sm.idx[:0]
		var mass float64
		for i, v := range e {
			if v >= tau {
				idx = append(idx, int32(i))
				mass += float64(v)
			}
		}
		sm.idx = idx
		if p.MinP > 0 || !(p.TopP > 0 && p.TopP < 1) || mass >= float64(p.TopP)*total || tau == 0 {
			slices.SortFunc(idx, byLogit(logits))
			return idx
		}
	}
	panic("unreachable: the last threshold keeps every token")
}

// byLogit orders token ids by logit, descending, lower id first on ties.
func byLogit(logits []float32) func(a, b int32) int {
	return func(a, b int32) int {
		switch {
		case logits[a] > logits[b]:
			return -1
		case logits[a] < logits[b]:
			return 1
		}
		return int(a - b)
	}
}

// topK returns the k highest-logit token ids in byLogit order, keeping a
// sorted window while scanning: O(V·log k) compares beat sorting a large
// vocabulary.
func (sm *sampler) topK(logits []float32, k int) []int32 {
	less := byLogit(logits)
	top := sm.idx[:0]
	for i := 0; i < k; i++ {
		top = append(top, int32(i))
	}
	slices.SortFunc(top, less)
	for id := int32(k); int(id) < len(logits); id++ {
		if less(id, top[k-1]) < 0 {
			pos, _ := slices.BinarySearchFunc(top, id, less)
			copy(top[pos+1:], top[pos:k-1])
			top[pos] = id
		}
	}
	return top
}

// pick returns the first index whose cumulative weight exceeds target
// (the last positive weight if rounding runs past the end).
func pick(w []float64, target float64) int {
	var cum float64
	last := 0
	for i, v := range w {
		if v > 0 {
			last = i
		}
		cum += v
		if cum > target {
			return i
		}
	}
	return last
}

// topLogProbs returns the k most likely tokens (descending; lower id first
// on ties) with their raw log-probabilities.
func topLogProbs(logits []float32, lse float32, k int) []TokenLogProb {
	k = min(k, len(logits))
	top := make([]TokenLogProb, 0, k+1)
	for i, v := range logits {
		if len(top) == k && v <= top[k-1].LogProb {
			continue
		}
		pos := len(top)
		for pos > 0 && v > top[pos-1].LogProb {
			pos--
		}
		top = slices.Insert(top, pos, TokenLogProb{Token: int32(i), LogProb: v})
		if len(top) > k {
			top = top[:k]
		}
	}
	for i := range top {
		top[i].LogProb -= lse
	}
	return top
}
