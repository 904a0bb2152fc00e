package generate

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// The prefix-caching benchmarks run one workload with and without
// Config.PrefixCaching in alternating rounds (a fresh engine per round and
// mode) on the bench GPT of `gorlhf bench generate` (4 layers, d 256,
// vocab 512), and report the medians over rounds of the calls after the
// first (turns ≥ 2, or GRPO iterations ≥ 2), their ratio, the median of
// the rounds' own ratios (steadier on a shared machine) and the hit rate
// of those calls:
//
//	go test -run '^$' -bench PrefixCaching -benchtime 5x ./internal/generate/

func benchGPT(b *testing.B) *gpt2.Model {
	m, err := gpt2.New(gpt2.Config{Layers: 4, Hidden: 256, Heads: 4, VocabSize: 512, MaxPositions: 1024, LayerNormEps: 1e-5})
	if err != nil {
		b.Fatal(err)
	}
	m.Init(tt.Rand(1))
	return m
}

// workload is a sequence of calls; call i may depend on the results of
// call i−1 (multi-turn).
type workload func(call int, prev []Result) []Request

// runRounds times every call after the first, per mode, over b.N
// alternating rounds and reports medians, speedup and hit rate.
func runRounds(b *testing.B, calls int, w workload) {
	m := benchGPT(b)
	var on, off []float64
	var hits, queries int
	for r := 0; r < b.N; r++ {
		for _, cache := range []bool{r%2 == 0, r%2 != 0} { // alternate which mode goes first
			e, err := New(m, nil, Config{PrefixCaching: cache, KVCacheMB: 256})
			if err != nil {
				b.Fatal(err)
			}
			var prev []Result
			var took time.Duration
			var st0 Stats
			for c := 0; c < calls; c++ {
				if c == 1 {
					st0 = e.Stats()
				}
				t0 := time.Now()
				prev, err = e.Generate(context.Background(), w(c, prev))
				if err != nil {
					b.Fatal(err)
				}
				if c > 0 {
					took += time.Since(t0)
				}
			}
			ms := float64(took.Microseconds()) / 1e3 / float64(calls-1)
			if cache {
				st := e.Stats()
				hits, queries = hits+st.PrefixHitTokens-st0.PrefixHitTokens, queries+st.PrefixQueryTokens-st0.PrefixQueryTokens
				on = append(on, ms)
			} else {
				off = append(off, ms)
			}
			e.Close()
		}
	}
	mOn, mOff := median(on), median(off)
	ratios := make([]float64, len(on))
	for i := range on {
		ratios[i] = off[i] / on[i]
	}
	b.ReportMetric(mOff, "ms/call-off")
	b.ReportMetric(mOn, "ms/call-on")
	b.ReportMetric(mOff/mOn, "speedup")
	b.ReportMetric(median(ratios), "speedup-per-round")
	b.ReportMetric(float64(hits)/float64(max(queries, 1)), "hit-rate")
	b.Logf("rounds %d: off %v ms, on %v ms", b.N, off, on)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// BenchmarkPrefixCaching_MultiTurn: 16 episodes of 3 turns, as the agent
// path plays them (each turn's prompt is the episode so far: the first
// prompt, every action and every observation): a 256-token first prompt,
// 16-token actions, 64-token observations. Times turns 2 and 3.
func BenchmarkPrefixCaching_MultiTurn(b *testing.B) {
	const episodes, first, action, obs = 16, 256, 16, 64
	var last []Request // the previous turn's requests
	runRounds(b, 3, func(turn int, prev []Result) []Request {
		reqs := make([]Request, episodes)
		for i := range reqs {
			var p []int32
			if turn == 0 {
				p = randomPrompt(uint64(i), first, 512)
			} else {
				p = slices.Concat(last[i].Prompt, prev[i].Completions[0].Tokens, randomPrompt(uint64(1000*turn+i), obs, 512))
			}
			reqs[i] = Request{Prompt: p, Params: SamplingParams{Temperature: 1, Seed: uint64(i), MaxNewTokens: action, IgnoreEOS: true}}
		}
		last = reqs
		return reqs
	})
}

// BenchmarkPrefixCaching_GRPO: 3 calls of 8 prompts × 8 samples, every
// prompt a 512-token shared head (a system prompt, few-shot examples) and
// a 16-token question of its own, 32 tokens generated. Times calls 2 and 3.
func BenchmarkPrefixCaching_GRPO(b *testing.B) {
	const prompts, n, head, tail, gen = 8, 8, 512, 16, 32
	h := randomPrompt(7, head, 512)
	runRounds(b, 3, func(call int, _ []Result) []Request {
		reqs := make([]Request, prompts)
		for i := range reqs {
			p := slices.Concat(h, randomPrompt(uint64(100*call+i), tail, 512))
			reqs[i] = Request{Prompt: p, Params: SamplingParams{N: n, Temperature: 1, Seed: uint64(i), MaxNewTokens: gen, IgnoreEOS: true}}
		}
		return reqs
	})
}
