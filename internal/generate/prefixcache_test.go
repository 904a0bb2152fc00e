package generate

import (
	"context"
	"slices"
	"testing"
)

// TestPagedCache_PrefixIndex covers the index on its own: Commit keys
// full blocks only, Match finds the longest cached prefix (never the
// block of the last token) and stops at the first miss, released keyed
// blocks stay idle and count as free, eviction takes the least recently
// used (deepest first), and Invalidate forgets everything.
func TestPagedCache_PrefixIndex(t *testing.T) {
	c, err := NewPagedCache(tinyShape, 4, 6)
	if err != nil {
		t.Fatal(err)
	}
	c.EnablePrefixCaching()
	toks := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if err := c.Reserve(0, 0, len(toks)); err != nil { // 3 blocks
		t.Fatal(err)
	}
	c.Commit(0, toks, len(toks)) // blocks 0 and 1 are full; 2 is partial
	t0 := slices.Clone(c.table(0))
	if hit, _ := c.Match(toks); !slices.Equal(hit, t0[:2]) {
		t.Fatalf("Match = %v, want the two full blocks %v", hit, t0[:2])
	}
	if hit, _ := c.Match(toks[:8]); !slices.Equal(hit, t0[:1]) {
		t.Fatalf("Match of 8 tokens = %v, want only the first block (the last token's block is recomputed)", hit)
	}
	other := []int32{1, 2, 3, 4, 9, 9, 9, 9, 5}
	if hit, _ := c.Match(other); !slices.Equal(hit, t0[:1]) {
		t.Fatalf("Match of a diverging prompt = %v, want the first block only", hit)
	}
	if hit, _ := c.Match([]int32{0, 2, 3, 4, 5, 6, 7, 8, 9}); len(hit) != 0 {
		t.Fatalf("Match after a first-block miss = %v, want none", hit)
	}
	c.Release(0)
	if c.CachedBlocks() != 2 || c.FreeBlocks() != 6 || c.UsedBlocks() != 0 {
		t.Fatalf("after release: cached %d (want 2), free %d (want 6), used %d", c.CachedBlocks(), c.FreeBlocks(), c.UsedBlocks())
	}
	// adopt the prefix: the idle blocks leave the LRU list
	hit, keys := c.Match(toks)
	c.Adopt(1, hit, keys)
	if c.CachedBlocks() != 0 || c.UsedBlocks() != 2 {
		t.Fatalf("after adopt: cached %d, used %d", c.CachedBlocks(), c.UsedBlocks())
	}
	c.Release(1)
	// fill the cache: the 4 free blocks go first, then the idle ones are
	// evicted deepest first (block 1 before block 0)
	if err := c.Reserve(2, 0, 16); err != nil {
		t.Fatal(err)
	}
	if hit, _ := c.Match(toks); len(hit) != 2 {
		t.Fatalf("free blocks were not used first: Match = %v", hit)
	}
	if err := c.Reserve(2, 16, 4); err != nil {
		t.Fatal(err)
	}
	if hit, _ := c.Match(toks); !slices.Equal(hit, t0[:1]) {
		t.Fatalf("after one eviction Match = %v, want the first block (the deeper one goes first)", hit)
	}
	if err := c.Reserve(2, 20, 5); err == nil {
		t.Fatal("Reserve past the cache succeeded")
	}
	c.Release(2)
	c.Commit(3, nil, 0) // a sequence with no blocks: nothing to key
	c.Invalidate()
	if hit, _ := c.Match(toks); len(hit) != 0 || c.CachedBlocks() != 0 || c.FreeBlocks() != 6 {
		t.Fatalf("after Invalidate: Match %v, cached %d, free %d", hit, c.CachedBlocks(), c.FreeBlocks())
	}
}

// cachedPair runs the same calls on an engine with prefix caching and one
// without, checks every result matches (tokens exactly, log-probs within
// tol) and returns the caching engine.
func cachedPair(t *testing.T, cfg Config, calls [][]Request) *Engine {
	t.Helper()
	m := tinyGPT2(t, 30)
	plainCfg := cfg
	cfg.PrefixCaching = true
	cached, plain := newEngine(t, m, nil, cfg), newEngine(t, tinyGPT2(t, 30), nil, plainCfg)
	for i, reqs := range calls {
		sameResults(t, "cached vs plain", generate(t, cached, reqs...), generate(t, plain, reqs...), 1e-5)
		if st := cached.Stats(); st.KVBlocksUsed != 0 {
			t.Fatalf("call %d: %d blocks still in use", i, st.KVBlocksUsed)
		}
	}
	return cached
}

func sampledReq(prompt []int32, n int, seed uint64, maxNew int) Request {
	return Request{Prompt: prompt, Params: SamplingParams{N: n, Temperature: 1, Seed: seed, MaxNewTokens: maxNew}}
}

// TestEngine_PrefixCaching_Repeated sends the same prompts twice: the
// second call prefills only the last, partial block of each prompt.
func TestEngine_PrefixCaching_Repeated(t *testing.T) {
	reqs := []Request{sampledReq(randomPrompt(1, 37, 64), 4, 1, 12), sampledReq(randomPrompt(2, 16, 64), 1, 2, 12),
		{Prompt: randomPrompt(3, 50, 64), Params: SamplingParams{MaxNewTokens: 10}}}
	e := cachedPair(t, Config{BlockSize: 8}, [][]Request{reqs})
	first := e.Stats()
	if first.PrefixHitTokens != 0 || first.PrefixQueryTokens != 37+16+50 {
		t.Fatalf("first call: hits %d, queries %d", first.PrefixHitTokens, first.PrefixQueryTokens)
	}
	res := generate(t, e, reqs...)
	second := e.Stats()
	// full blocks short of the last token: 36/8, 15/8, 49/8 blocks
	if hits := second.PrefixHitTokens; hits != (4+1+6)*8 {
		t.Fatalf("second call hit %d tokens, want %d", hits, (4+1+6)*8)
	}
	if fed := second.PromptTokens - first.PromptTokens; fed != 37+16+50-(4+1+6)*8 {
		t.Fatalf("second call prefilled %d prompt tokens, want %d", fed, 37+16+50-88)
	}
	sameResults(t, "second call", res, generate(t, newEngine(t, tinyGPT2(t, 30), nil, Config{BlockSize: 8}), reqs...), 1e-5)
	t.Logf("hit rate %.2f after two calls", second.PrefixHitRate())
}

// TestEngine_PrefixCaching_SharedPrefix: a GRPO-like group workload, long
// shared prompt heads with different tails over several calls, with and
// without sharing the n samples.
func TestEngine_PrefixCaching_SharedPrefix(t *testing.T) {
	head := randomPrompt(10, 40, 64)
	call := func(seed uint64) []Request {
		var reqs []Request
		for i := 0; i < 3; i++ {
			reqs = append(reqs, sampledReq(append(slices.Clone(head), randomPrompt(seed+uint64(i), 3+i, 64)...), 4, seed+uint64(i), 10))
		}
		return reqs
	}
	for name, cfg := range map[string]Config{"sharing": {BlockSize: 8}, "no_sharing": {BlockSize: 8, NoPrefixSharing: true},
		"chunked": {BlockSize: 8, MaxBatchTokens: 12}} {
		t.Run(name, func(t *testing.T) {
			e := cachedPair(t, cfg, [][]Request{call(100), call(200), call(300)})
			if st := e.Stats(); st.PrefixHitTokens < 2*3*40 {
				t.Fatalf("hit %d tokens of %d, want at least the head of every later request", st.PrefixHitTokens, st.PrefixQueryTokens)
			}
		})
	}
}

// TestEngine_PrefixCaching_MultiTurn: turn t+1's prompt extends turn t's
// prompt and completion, so the completion's full blocks (filled during
// decode) are reused too.
func TestEngine_PrefixCaching_MultiTurn(t *testing.T) {
	m := tinyGPT2(t, 31)
	cached := newEngine(t, m, nil, Config{BlockSize: 4, PrefixCaching: true})
	plain := newEngine(t, tinyGPT2(t, 31), nil, Config{BlockSize: 4})
	prompt, computed := randomPrompt(40, 9, 64), 0
	for turn := 0; turn < 4; turn++ {
		req := Request{Prompt: prompt, Params: SamplingParams{Temperature: 1, Seed: uint64(turn), MaxNewTokens: 12, IgnoreEOS: true}}
		before := cached.Stats()
		got := generate(t, cached, req)
		sameResults(t, "turn", got, generate(t, plain, req), 1e-5)
		st := cached.Stats()
		// every full block of the episode so far but the one holding the
		// last sampled token, which was never fed to the model
		if want := min(len(prompt)-1, computed) / 4 * 4; turn > 0 && st.PrefixHitTokens-before.PrefixHitTokens != want {
			t.Fatalf("turn %d: hit %d tokens, want %d", turn, st.PrefixHitTokens-before.PrefixHitTokens, want)
		}
		computed = len(prompt) + len(got[0].Completions[0].Tokens) - 1
		prompt = append(append(prompt, got[0].Completions[0].Tokens...), randomPrompt(uint64(50+turn), 3, 64)...)
	}
}

// TestEngine_PrefixCaching_Eviction: many distinct prompts through a small
// cache; idle blocks are evicted (never a running sequence preempted for
// them), and outputs do not change.
func TestEngine_PrefixCaching_Eviction(t *testing.T) {
	var calls [][]Request
	for c := 0; c < 4; c++ {
		var reqs []Request
		for i := 0; i < 3; i++ {
			reqs = append(reqs, sampledReq(randomPrompt(uint64(60+i+c%2*10), 20, 64), 2, uint64(c*10+i), 8))
		}
		calls = append(calls, reqs)
	}
	e := cachedPair(t, Config{BlockSize: 4, KVBlocks: 40}, calls)
	st := e.Stats()
	if st.Preemptions != 0 {
		t.Fatalf("%d preemptions: cached blocks must be evicted before anything is preempted", st.Preemptions)
	}
	if st.KVBlocksCached > 40 || st.KVBlocksPeak > 40 {
		t.Fatalf("blocks: %d cached, peak %d of 40", st.KVBlocksCached, st.KVBlocksPeak)
	}
	// calls alternate two prompt sets whose blocks do not all fit: the
	// later calls find some, not all, of their prompts
	if st.PrefixHitTokens == 0 || st.PrefixHitTokens >= 2*3*16 {
		t.Fatalf("hit %d tokens: want some hits but evictions too", st.PrefixHitTokens)
	}
	t.Logf("hit rate %.2f, %d cached blocks", st.PrefixHitRate(), st.KVBlocksCached)
}

// TestEngine_PrefixCaching_Preemption: a cache too small for the load
// preempts sequences while cached blocks are around; results match.
func TestEngine_PrefixCaching_Preemption(t *testing.T) {
	var reqs []Request
	for i := 0; i < 6; i++ {
		reqs = append(reqs, Request{Prompt: randomPrompt(uint64(20+i), 6+3*i, 64),
			Params: SamplingParams{N: 3, Temperature: 1, Seed: uint64(i), MaxNewTokens: 30, StopTokenIDs: []int32{int32(i)}}})
	}
	for name, cfg := range map[string]Config{"sharing": {BlockSize: 4, KVBlocks: 24},
		"no_sharing": {BlockSize: 4, KVBlocks: 24, NoPrefixSharing: true}} {
		t.Run(name, func(t *testing.T) {
			e := cachedPair(t, cfg, [][]Request{reqs, reqs})
			if st := e.Stats(); st.Preemptions == 0 || st.PrefixHitTokens == 0 {
				t.Fatalf("%d preemptions, %d hit tokens: want both", st.Preemptions, st.PrefixHitTokens)
			}
		})
	}
}

// TestEngine_PrefixCaching_LoadWeights: new weights forget every cached
// block, so a repeated prompt is recomputed on them.
func TestEngine_PrefixCaching_LoadWeights(t *testing.T) {
	req := sampledReq(randomPrompt(70, 30, 64), 2, 7, 10)
	e := newEngine(t, tinyGPT2(t, 32), nil, Config{BlockSize: 4, PrefixCaching: true})
	generate(t, e, req)
	if err := e.LoadWeights(context.Background(), Weights{Params: tinyGPT2(t, 33).Params()}); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.KVBlocksCached != 0 {
		t.Fatalf("%d cached blocks survived LoadWeights", st.KVBlocksCached)
	}
	before := e.Stats().PrefixHitTokens
	got := generate(t, e, req)
	if hits := e.Stats().PrefixHitTokens - before; hits != 0 {
		t.Fatalf("hit %d tokens cached under the old weights", hits)
	}
	sameResults(t, "after LoadWeights", got, generate(t, newEngine(t, tinyGPT2(t, 33), nil, Config{BlockSize: 4}), req), 1e-5)
}

// TestEngine_PrefixCaching_WithinCall: requests of one call that are
// admitted in later steps (the step budget holds a few prompts at a time)
// find the shared head the first ones computed.
func TestEngine_PrefixCaching_WithinCall(t *testing.T) {
	head := randomPrompt(7, 80, 64)
	var reqs []Request
	for i := 0; i < 8; i++ {
		reqs = append(reqs, sampledReq(slices.Concat(head, randomPrompt(uint64(100+i), 5, 64)), 4, uint64(i), 5))
	}
	e := cachedPair(t, Config{MaxBatchTokens: 128}, [][]Request{reqs})
	if st := e.Stats(); st.PrefixHitTokens == 0 || st.PromptTokens >= 8*85 {
		t.Fatalf("one call: hit %d tokens, prefilled %d of %d: later requests should find the head", st.PrefixHitTokens, st.PromptTokens, 8*85)
	}
}
