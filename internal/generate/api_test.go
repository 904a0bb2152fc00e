package generate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEngine_Stream checks the event protocol: every token of every
// sample in order, the last one with Done and the Completion, then the
// channel closes; the events rebuild exactly what Generate returns.
func TestEngine_Stream(t *testing.T) {
	m := tinyGPT2(t, 12)
	e := newEngine(t, m, nil, Config{})
	req := Request{Prompt: randomPrompt(3, 6, 64), Params: SamplingParams{N: 3, Temperature: 1, Seed: 2, MaxNewTokens: 15,
		StopTokenIDs: []int32{5}, TopLogProbs: 2}}
	want := generate(t, e, req)[0]
	events, err := e.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	toks := make([][]int32, 3)
	done := make([]bool, 3)
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if done[ev.Index] {
			t.Fatalf("event for sample %d after its Done", ev.Index)
		}
		toks[ev.Index] = append(toks[ev.Index], ev.Token)
		c := want.Completions[ev.Index]
		i := len(toks[ev.Index]) - 1
		if ev.LogProb != c.LogProbs[i] || ev.RawLogProb != c.RawLogProbs[i] || len(ev.Top) != 2 {
			t.Fatalf("sample %d token %d: event %+v disagrees with the completion", ev.Index, i, ev)
		}
		if ev.Done {
			done[ev.Index] = true
			if ev.Completion == nil || !slices.Equal(ev.Completion.Tokens, c.Tokens) {
				t.Fatalf("sample %d: Done without the right completion", ev.Index)
			}
		}
	}
	for i, c := range want.Completions {
		if !done[i] || !slices.Equal(toks[i], c.Tokens) {
			t.Fatalf("sample %d: streamed %v (done %v), want %v", i, toks[i], done[i], c.Tokens)
		}
	}
}

// TestEngine_Cancel checks that a cancelled request stops, returns the
// context's error and gives its KV blocks back.
func TestEngine_Cancel(t *testing.T) {
	m, _ := stories(t)
	e := newEngine(t, m, nil, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	events, err := e.Stream(ctx, Request{Prompt: []int32{1}, Params: SamplingParams{N: 4, Temperature: 1, MaxNewTokens: 5000}})
	if err != nil {
		t.Fatal(err)
	}
	<-events
	cancel()
	for range events {
	}
	gctx, gcancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer gcancel()
	_, err = e.Generate(gctx, []Request{{Prompt: []int32{1}, Params: SamplingParams{MaxNewTokens: 100000, Temperature: 1}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Generate past its deadline: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().KVBlocksUsed != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d KV blocks still held after cancellation", e.Stats().KVBlocksUsed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEngine_Validate checks that bad requests are errors before anything
// runs, naming the problem.
func TestEngine_Validate(t *testing.T) {
	m := tinyGPT2(t, 1)
	e := newEngine(t, m, nil, Config{MaxSeqs: 8})
	cases := map[string]struct {
		r    Request
		want string
	}{
		"empty_prompt":              {Request{}, "empty"},
		"token_out_of_vocab":        {Request{Prompt: []int32{3, 64}}, "outside the vocabulary"},
		"negative_token":            {Request{Prompt: []int32{-1}}, "outside the vocabulary"},
		"n_above_max_seqs":          {Request{Prompt: []int32{1}, Params: SamplingParams{N: 9}}, "exceeds"},
		"stop_strings_no_tokenizer": {Request{Prompt: []int32{1}, Params: SamplingParams{StopStrings: []string{"x"}}}, "tokenizer"},
		"bad_stop_id":               {Request{Prompt: []int32{1}, Params: SamplingParams{StopTokenIDs: []int32{99}}}, "stop token"},
		"bad_top_p":                 {Request{Prompt: []int32{1}, Params: SamplingParams{TopP: 2}}, "top-p"},
		"prompt_too_long":           {Request{Prompt: make([]int32, 96)}, "limit"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.Generate(context.Background(), []Request{{Prompt: []int32{1}, Params: SamplingParams{MaxNewTokens: 2}}, c.r})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "request 1") {
				t.Fatalf("error %v, want one about request 1 mentioning %q", err, c.want)
			}
		})
	}
	if _, err := New(m, nil, Config{BlockSize: -1}); err == nil {
		t.Fatal("New accepted a negative block size")
	}
}

// TestEngine_Close fails new and queued work with ErrClosed.
func TestEngine_Close(t *testing.T) {
	e, err := New(tinyGPT2(t, 1), nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := e.Stream(context.Background(), Request{Prompt: []int32{1}, Params: SamplingParams{MaxNewTokens: 90, Temperature: 1}})
	if err != nil {
		t.Fatal(err)
	}
	<-events
	e.Close()
	var last Event
	for ev := range events {
		last = ev
	}
	if last.Err != nil && !errors.Is(last.Err, ErrClosed) {
		t.Fatalf("stream ended with %v", last.Err)
	}
	if _, err := e.Generate(context.Background(), []Request{{Prompt: []int32{1}}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Generate after Close: %v", err)
	}
	e.Close() // idempotent
}

// TestEngine_Concurrent has many goroutines call Generate at once: each
// gets what it gets alone (run with -race to check the locking).
func TestEngine_Concurrent(t *testing.T) {
	m := tinyLlama(t, 13)
	var reqs []Request
	for i := 0; i < 8; i++ {
		reqs = append(reqs, Request{Prompt: randomPrompt(uint64(i), 3+i, 64), Params: SamplingParams{N: 2, Temperature: 1, Seed: uint64(i), MaxNewTokens: 12}})
	}
	want := naiveResults(t, m, nil, nil, reqs)
	e := newEngine(t, m, nil, Config{})
	var wg sync.WaitGroup
	got := make([][]Result, len(reqs))
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Generate(context.Background(), reqs[i:i+1])
			if err != nil {
				t.Error(err)
			}
			got[i] = res
		}()
	}
	wg.Wait()
	for i := range reqs {
		sameResults(t, "concurrent", got[i], want[i:i+1], 1e-5)
	}
}
