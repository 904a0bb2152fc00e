package generate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// stories loads the embedded stories260K model and its tokenizer.
func stories(t testing.TB) (model.Decoder, tokenizer.Tokenizer) {
	t.Helper()
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	return l.Model.(model.Decoder), tok
}

// tinyGPT2 is a random GPT-2 with enough spread in its logits that
// sampling is not near-uniform.
func tinyGPT2(t testing.TB, seed uint64) *gpt2.Model {
	t.Helper()
	m, err := gpt2.New(gpt2.Config{VocabSize: 64, MaxPositions: 96, Hidden: 32, Layers: 2, Heads: 4, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tt.Rand(seed))
	for i := range m.WTE.Data {
		m.WTE.Data[i] *= 20
	}
	return m
}

func tinyLlama(t testing.TB, seed uint64) *llama.Model {
	t.Helper()
	m, err := llama.New(llama.Config{VocabSize: 64, Hidden: 32, Intermediate: 48, Layers: 2, Heads: 4, KVHeads: 2,
		RMSNormEps: 1e-5, AttentionBias: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tt.Rand(seed))
	for i := range m.Embed.Data {
		m.Embed.Data[i] *= 20
	}
	return m
}

func newEngine(t testing.TB, m model.Decoder, dec TextDecoder, cfg Config) *Engine {
	t.Helper()
	e, err := New(m, dec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func generate(t testing.TB, e *Engine, reqs ...Request) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := e.Generate(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func randomPrompt(seed uint64, n, vocab int) []int32 {
	r := tt.Rand(seed)
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(r.IntN(vocab))
	}
	return p
}

// sameCompletion checks tokens, finish reason and text exactly and both
// log-prob series within tol (absolute).
func sameCompletion(t testing.TB, what string, got, want Completion, tol float64) {
	t.Helper()
	if !slices.Equal(got.Tokens, want.Tokens) {
		t.Fatalf("%s: tokens\n got %v\nwant %v", what, got.Tokens, want.Tokens)
	}
	if got.FinishReason != want.FinishReason || got.Text != want.Text {
		t.Fatalf("%s: finish %q text %q, want %q %q", what, got.FinishReason, got.Text, want.FinishReason, want.Text)
	}
	for i := range got.Tokens {
		if d := math.Abs(float64(got.LogProbs[i] - want.LogProbs[i])); d > tol {
			t.Fatalf("%s: token %d sampling log-prob %g vs %g", what, i, got.LogProbs[i], want.LogProbs[i])
		}
		if d := math.Abs(float64(got.RawLogProbs[i] - want.RawLogProbs[i])); d > tol {
			t.Fatalf("%s: token %d raw log-prob %g vs %g", what, i, got.RawLogProbs[i], want.RawLogProbs[i])
		}
	}
}

func sameResults(t testing.TB, what string, got, want []Result, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range got {
		if len(got[i].Completions) != len(want[i].Completions) {
			t.Fatalf("%s: request %d has %d completions, want %d", what, i, len(got[i].Completions), len(want[i].Completions))
		}
		for j := range got[i].Completions {
			sameCompletion(t, fmt.Sprintf("%s request %d sample %d", what, i, j), got[i].Completions[j], want[i].Completions[j], tol)
		}
	}
}

// TestEngine_Greedy_Stories260K reproduces llama2.c's greedy continuation
// of BOS through the engine.
func TestEngine_Greedy_Stories260K(t *testing.T) {
	m, tok := stories(t)
	var ref struct {
		Greedy []int32 `json:"greedy_ids"`
		Text   string  `json:"text"`
	}
	if err := json.Unmarshal(assets.ReferenceGreedy(), &ref); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, m, tok, Config{})
	res := generate(t, e, Request{Prompt: []int32{1}, Params: SamplingParams{MaxNewTokens: len(ref.Greedy)}})
	c := res[0].Completions[0]
	if !slices.Equal(c.Tokens, ref.Greedy) {
		t.Fatalf("greedy tokens\n got %v\nwant %v", c.Tokens, ref.Greedy)
	}
	if c.FinishReason != FinishLength || len(c.LogProbs) != len(c.Tokens) {
		t.Fatalf("finish %q with %d log-probs for %d tokens", c.FinishReason, len(c.LogProbs), len(c.Tokens))
	}
}

// twinRequests are the request mix the engine is checked against the
// naive twin with: greedy, plain sampling with n samples, every filter,
// stop ids and top log-probs.
func twinRequests(vocab int) []Request {
	return []Request{
		{ID: "greedy", Prompt: randomPrompt(1, 5, vocab), Params: SamplingParams{MaxNewTokens: 20}},
		{ID: "sample_n4", Prompt: randomPrompt(2, 9, vocab), Params: SamplingParams{N: 4, Temperature: 1, Seed: 11, MaxNewTokens: 18}},
		{ID: "filters", Prompt: randomPrompt(3, 3, vocab), Params: SamplingParams{N: 3, Temperature: 0.8, TopK: 10, TopP: 0.9, MinP: 0.05, Seed: 5, MaxNewTokens: 16}},
		{ID: "stop_ids_top", Prompt: randomPrompt(4, 17, vocab), Params: SamplingParams{N: 2, Temperature: 1.3, Seed: 9, MaxNewTokens: 25,
			StopTokenIDs: []int32{3, 7, 11}, TopLogProbs: 3}},
		{ID: "one_token_prompt", Prompt: randomPrompt(5, 1, vocab), Params: SamplingParams{N: 2, Temperature: 0.6, Seed: 1, MaxNewTokens: 12}},
	}
}

func naiveResults(t testing.TB, m model.Decoder, dec TextDecoder, eos []int32, reqs []Request) []Result {
	t.Helper()
	out := make([]Result, len(reqs))
	for i, r := range reqs {
		res, err := Naive(context.Background(), m, dec, eos, r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = res
	}
	return out
}

// TestEngine_MatchesNaive runs the request mix through the engine under
// configurations that exercise every scheduler path (prefix sharing on
// and off, one-token blocks, chunked prefill, few sequences per step) and
// compares every completion with the naive full-recompute twin: same
// tokens, log-probs within 1e-5 on the random tiny models. stories260K
// gets 5e-5: its logits reach ±17, where float32 rounding alone moves a
// log-prob by ~1e-5 between two GEMM kernels (package gemm picks its
// kernel by row count, and the engine's batches and the twin's sequences
// have different row counts); measured worst 1.5–2e-5.
func TestEngine_MatchesNaive(t *testing.T) {
	configs := map[string]Config{
		"default":        {},
		"no_sharing":     {NoPrefixSharing: true},
		"block1":         {BlockSize: 1},
		"chunked":        {MaxBatchTokens: 4, BlockSize: 4},
		"prefill_cap":    {MaxBatchTokens: 16, MaxPrefillChunk: 3},
		"few_seqs":       {MaxSeqs: 4},
		"prefix_caching": {PrefixCaching: true, BlockSize: 4},
	}
	stm, tok := stories(t)
	models := map[string]struct {
		m   model.Decoder
		dec TextDecoder
		tol float64
	}{"gpt2": {tinyGPT2(t, 1), nil, 1e-5}, "llama_gqa": {tinyLlama(t, 2), nil, 1e-5}, "stories260K": {stm, tok, 5e-5}}
	for mname, mc := range models {
		vocab := mc.m.Params()[0].Tensor.Shape[0]
		reqs := twinRequests(vocab)
		want := naiveResults(t, mc.m, mc.dec, nil, reqs)
		for cname, cfg := range configs {
			t.Run(mname+"/"+cname, func(t *testing.T) {
				e := newEngine(t, mc.m, mc.dec, cfg)
				sameResults(t, cname, generate(t, e, reqs...), want, mc.tol)
				if st := e.Stats(); st.KVBlocksUsed != 0 {
					t.Fatalf("%d KV blocks still in use after all requests finished", st.KVBlocksUsed)
				}
			})
		}
	}
}

// TestEngine_Preemption squeezes many sampled requests into a cache that
// holds a fraction of them: sequences get preempted and recomputed (with
// and without prefix sharing, with chunked prefill), and the outputs must
// not change.
func TestEngine_Preemption(t *testing.T) {
	m := tinyGPT2(t, 3)
	var reqs []Request
	for i := 0; i < 6; i++ {
		reqs = append(reqs, Request{Prompt: randomPrompt(uint64(20+i), 6+3*i, 64),
			Params: SamplingParams{N: 3, Temperature: 1, Seed: uint64(i), MaxNewTokens: 30, StopTokenIDs: []int32{int32(i)}}})
	}
	want := generate(t, newEngine(t, m, nil, Config{}), reqs...)
	// 24 blocks of 4 tokens hold 96 positions; the requests need ~800.
	for name, cfg := range map[string]Config{
		"sharing":    {BlockSize: 4, KVBlocks: 24},
		"no_sharing": {BlockSize: 4, KVBlocks: 24, NoPrefixSharing: true},
		"chunked":    {BlockSize: 4, KVBlocks: 24, MaxBatchTokens: 5},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, m, nil, cfg)
			sameResults(t, "preempted", generate(t, e, reqs...), want, 1e-5)
			st := e.Stats()
			if st.Preemptions == 0 {
				t.Fatal("the small cache never preempted: the test does not test preemption")
			}
			if st.KVBlocksPeak > 24 || st.KVBlocksUsed != 0 {
				t.Fatalf("blocks: peak %d of 24, %d still used", st.KVBlocksPeak, st.KVBlocksUsed)
			}
			t.Logf("%d preemptions", st.Preemptions)
		})
	}
}

// TestEngine_BatchInvariance checks per-request seeds: a request gives the
// same completions alone and inside a busy batch (other prompts of other
// lengths, prefills and decodes mixed, its samples spread over steps).
// Tokens must be identical; log-probs agree to float rounding (within
// 1e-5), because a GEMM row's last bits may depend on the batch's row
// count (package gemm picks its kernel by row count).
func TestEngine_BatchInvariance(t *testing.T) {
	for name, m := range map[string]model.Decoder{"gpt2": tinyGPT2(t, 4), "llama_gqa": tinyLlama(t, 5)} {
		t.Run(name, func(t *testing.T) {
			probe := Request{ID: "probe", Prompt: randomPrompt(99, 7, 64),
				Params: SamplingParams{N: 3, Temperature: 1, TopP: 0.95, Seed: 1234, MaxNewTokens: 24}}
			alone := generate(t, newEngine(t, m, nil, Config{}), probe)
			var busy []Request
			for i := 0; i < 12; i++ {
				busy = append(busy, Request{Prompt: randomPrompt(uint64(200+i), 2+3*i, 64),
					Params: SamplingParams{N: 1 + i%4, Temperature: 0.9, Seed: uint64(i), MaxNewTokens: 10 + 2*i}})
			}
			busy = slices.Insert(busy, 5, probe)
			e := newEngine(t, m, nil, Config{MaxBatchTokens: 16})
			res := generate(t, e, busy...)
			sameResults(t, "busy", []Result{res[5]}, alone, 1e-5)
		})
	}
}

// TestEngine_PrefixSharing checks that the n samples of a prompt share its
// blocks: same outputs with and without sharing, far fewer blocks and one
// prefill with it. A prompt ending inside a block makes every sample but
// the last copy that block on its first write (copy-on-write).
func TestEngine_PrefixSharing(t *testing.T) {
	m := tinyGPT2(t, 6)
	cases := []struct {
		name                 string
		promptLen            int
		sharedPeak, privPeak int
	}{
		// 4 prompt blocks + one new block per sample; 8 × 5 without sharing.
		{"block_aligned", 64, 4 + 8, 8 * 5},
		// 4 full + 1 partial shared, 7 copies of the partial; 8 × 5 without.
		{"copy_on_write", 70, 5 + 7, 8 * 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := Request{Prompt: randomPrompt(7, c.promptLen, 64), Params: SamplingParams{N: 8, Temperature: 1, Seed: 3, MaxNewTokens: 8}}
			shared := newEngine(t, m, nil, Config{BlockSize: 16})
			private := newEngine(t, m, nil, Config{BlockSize: 16, NoPrefixSharing: true})
			sameResults(t, "sharing vs not", generate(t, shared, req), generate(t, private, req), 1e-5)
			ps, pp := shared.Stats(), private.Stats()
			if ps.KVBlocksPeak != c.sharedPeak || pp.KVBlocksPeak != c.privPeak {
				t.Fatalf("peak blocks: shared %d (want %d), private %d (want %d)", ps.KVBlocksPeak, c.sharedPeak, pp.KVBlocksPeak, c.privPeak)
			}
			if ps.PromptTokens != c.promptLen || pp.PromptTokens != 8*c.promptLen {
				t.Fatalf("prompt tokens computed: shared %d (want %d), private %d (want %d)", ps.PromptTokens, c.promptLen, pp.PromptTokens, 8*c.promptLen)
			}
		})
	}
}

// TestEngine_StopRules covers every way a sample ends.
func TestEngine_StopRules(t *testing.T) {
	m, tok := stories(t)
	var ref struct {
		Greedy []int32 `json:"greedy_ids"`
	}
	if err := json.Unmarshal(assets.ReferenceGreedy(), &ref); err != nil {
		t.Fatal(err)
	}
	bos := []int32{1}
	fullText := tok.Decode(toInts(ref.Greedy[:60]))
	stopAt := slices.Index(ref.Greedy, ref.Greedy[9]) // first occurrence of the 10th token
	cases := []struct {
		name     string
		cfg      Config
		p        SamplingParams
		tokens   []int32
		finish   FinishReason
		text     string
		textFrom bool // text is a prefix of fullText
	}{
		{"max_new_tokens", Config{}, SamplingParams{MaxNewTokens: 7}, ref.Greedy[:7], FinishLength, tok.Decode(toInts(ref.Greedy[:7])), false},
		{"stop_token_id", Config{}, SamplingParams{MaxNewTokens: 60, StopTokenIDs: []int32{ref.Greedy[9]}},
			ref.Greedy[:stopAt+1], FinishStop, tok.Decode(toInts(ref.Greedy[:stopAt])), false},
		{"engine_eos", Config{EOS: []int32{ref.Greedy[9]}}, SamplingParams{MaxNewTokens: 60},
			ref.Greedy[:stopAt+1], FinishStop, tok.Decode(toInts(ref.Greedy[:stopAt])), false},
		{"ignore_eos", Config{EOS: []int32{ref.Greedy[9]}}, SamplingParams{MaxNewTokens: 12, IgnoreEOS: true},
			ref.Greedy[:12], FinishLength, tok.Decode(toInts(ref.Greedy[:12])), false},
	}
	// A stop string: the text up to the first "Lily" (must occur in the
	// reference story), cut before it.
	if i := indexOf(fullText, " Lily"); i > 0 {
		cases = append(cases, struct {
			name     string
			cfg      Config
			p        SamplingParams
			tokens   []int32
			finish   FinishReason
			text     string
			textFrom bool
		}{"stop_string", Config{}, SamplingParams{MaxNewTokens: 60, StopStrings: []string{"zzz", " Lily"}}, nil, FinishStop, fullText[:i], true})
	} else {
		t.Fatalf("reference text has no \" Lily\": %q", fullText)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, m, tok, c.cfg)
			got := generate(t, e, Request{Prompt: bos, Params: c.p})[0].Completions[0]
			if c.tokens != nil && !slices.Equal(got.Tokens, c.tokens) {
				t.Fatalf("tokens %v, want %v", got.Tokens, c.tokens)
			}
			if got.FinishReason != c.finish || got.Text != c.text {
				t.Fatalf("finish %q text %q, want %q %q", got.FinishReason, got.Text, c.finish, c.text)
			}
			if c.textFrom && !slices.Equal(got.Tokens, ref.Greedy[:len(got.Tokens)]) {
				t.Fatalf("stop string run diverged from greedy: %v", got.Tokens)
			}
		})
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestEngine_PositionLimit checks that a learned-position model stops at
// its table's end with FinishLength, and that a prompt leaving no room is
// rejected.
func TestEngine_PositionLimit(t *testing.T) {
	m := tinyGPT2(t, 8) // 96 positions
	e := newEngine(t, m, nil, Config{})
	got := generate(t, e, Request{Prompt: randomPrompt(1, 90, 64), Params: SamplingParams{MaxNewTokens: 50}})[0].Completions[0]
	if len(got.Tokens) != 6 || got.FinishReason != FinishLength {
		t.Fatalf("%d tokens, finish %q; want 6 tokens and length", len(got.Tokens), got.FinishReason)
	}
	if _, err := e.Generate(context.Background(), []Request{{Prompt: randomPrompt(1, 96, 64)}}); err == nil {
		t.Fatal("a prompt filling every position was accepted")
	}
}

// TestEngine_Repeatable: the same call on two fresh engines gives the
// same completions bit for bit, log-probs included. The requests of a call
// are admitted together, so the batches the scheduler forms do not depend
// on goroutine timing (a GEMM row's last bits depend on the batch's row
// count, and a trainer that uses the engine's log-probs must repeat).
func TestEngine_Repeatable(t *testing.T) {
	m := tinyLlama(t, 5)
	var reqs []Request
	for i := range 48 {
		reqs = append(reqs, Request{Prompt: randomPrompt(uint64(300+i), 2+i%13, 64),
			Params: SamplingParams{N: 1 + i%3, Temperature: 1, Seed: uint64(i), MaxNewTokens: 6 + i%5}})
	}
	want := generate(t, newEngine(t, m, nil, Config{MaxBatchTokens: 24}), reqs...)
	for run := range 3 {
		got := generate(t, newEngine(t, m, nil, Config{MaxBatchTokens: 24}), reqs...)
		for i := range want {
			for j, c := range want[i].Completions {
				d := got[i].Completions[j]
				if !slices.Equal(c.Tokens, d.Tokens) || !slices.Equal(c.RawLogProbs, d.RawLogProbs) {
					t.Fatalf("run %d, request %d sample %d: tokens %v / %v, log-probs %v / %v", run, i, j, c.Tokens, d.Tokens, c.RawLogProbs, d.RawLogProbs)
				}
			}
		}
	}
}

// TestEngine_TextAfterPrompt: Text is decoded after the prompt, so with
// tok512 (SentencePiece-style, whose Decode drops a sequence's leading
// space) prompt text + Text reads as the whole sequence does: "Once" then
// " upon a time", not "upon a time". A stop string that starts with that
// space ends the sample at its first token, in the engine and its twin.
func TestEngine_TextAfterPrompt(t *testing.T) {
	m, tok := stories(t)
	once := toIDs32(tok.Encode("Once"))
	prompt := append([]int32{1}, once...) // BOS "Once"
	e := newEngine(t, m, tok, Config{})
	c := generate(t, e, Request{Prompt: prompt, Params: SamplingParams{MaxNewTokens: 12}})[0].Completions[0]
	whole := tok.Decode(toInts(append(slices.Clone(once), c.Tokens...)))
	if !strings.HasPrefix(c.Text, " ") || "Once"+c.Text != whole {
		t.Fatalf("text %q after \"Once\"; the whole sequence reads %q", c.Text, whole)
	}
	stop := Request{Prompt: prompt, Params: SamplingParams{MaxNewTokens: 12, StopStrings: []string{" " + strings.Fields(c.Text)[0]}}}
	for name, got := range map[string]Completion{
		"engine": generate(t, e, stop)[0].Completions[0],
		"naive":  naiveResults(t, m, tok, nil, []Request{stop})[0].Completions[0],
	} {
		if got.FinishReason != FinishStop || len(got.Tokens) != 1 || got.Text != "" {
			t.Fatalf("%s: stop %q: finish %q after %d tokens, text %q; want a stop at the first token", name, stop.Params.StopStrings[0], got.FinishReason, len(got.Tokens), got.Text)
		}
	}
	// After BOS alone the text starts the story: no space in front.
	c = generate(t, e, Request{Prompt: []int32{1}, Params: SamplingParams{MaxNewTokens: 5}})[0].Completions[0]
	if c.Text != tok.Decode(toInts(c.Tokens)) || strings.HasPrefix(c.Text, " ") {
		t.Fatalf("after BOS: text %q, tokens decode to %q", c.Text, tok.Decode(toInts(c.Tokens)))
	}
}

func toIDs32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}
