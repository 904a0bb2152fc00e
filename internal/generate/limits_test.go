package generate

import (
	"errors"
	"strings"
	"testing"
)

// TestEngine_ContextLimit: stories260K (llama2.c, seq_len 512) has a
// position limit of 512 although its positions are rotary. A request
// that asks for more is generated only up to the limit (FinishLength);
// CheckLength refuses it with vLLM's message naming the limit; a prompt
// that fills the context is refused by Generate itself.
func TestEngine_ContextLimit(t *testing.T) {
	m, tok := stories(t)
	e := newEngine(t, m, tok, Config{})
	if e.MaxPositions() != 512 || e.Room(2) != 510 {
		t.Fatalf("MaxPositions %d, Room(2) %d: want 512 and 510", e.MaxPositions(), e.Room(2))
	}
	long := Request{Prompt: []int32{1, 403}, Params: SamplingParams{MaxNewTokens: 1000, IgnoreEOS: true}}
	c := generate(t, e, long)[0].Completions[0]
	if len(c.Tokens) != 510 || c.FinishReason != FinishLength {
		t.Fatalf("%d tokens, finish %q: want the 510 that fit and length", len(c.Tokens), c.FinishReason)
	}

	var le *LengthError
	err := e.CheckLength(long)
	if !errors.As(err, &le) || *le != (LengthError{Limit: 512, Prompt: 2, Completion: 1000}) {
		t.Fatalf("CheckLength: %v", err)
	}
	for _, want := range []string{"maximum context length is 512 tokens", "you requested 1002 tokens", "2 in the prompt, 1000 in the completion"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	long.Params.MaxNewTokens = 510
	if err := e.CheckLength(long); err != nil {
		t.Errorf("2 + 510 tokens in 512 positions: %v", err)
	}
	long.Params.MaxNewTokens = 0 // the default, 256, fits
	if err := e.CheckLength(long); err != nil {
		t.Errorf("default length: %v", err)
	}

	fit := Request{Prompt: make([]int32, 500)}
	if err := e.FitLength(&fit, false); err != nil || fit.Params.MaxNewTokens != 12 {
		t.Errorf("default length after 500 prompt tokens: %d, %v; want the 12 that fit", fit.Params.MaxNewTokens, err)
	}
	fit.Params.MaxNewTokens = 13
	if err := e.FitLength(&fit, true); !errors.As(err, &le) || le.Completion != 13 {
		t.Errorf("13 chosen after 500 prompt tokens: %v", err)
	}

	full := Request{Prompt: make([]int32, 512)}
	for _, err := range []error{e.CheckLength(full), e.Validate(full), e.FitLength(&full, false)} {
		if !errors.As(err, &le) || le.Prompt != 512 || le.Completion != 0 || !strings.Contains(err.Error(), "no room") {
			t.Errorf("a prompt filling the context: %v", err)
		}
	}
}

// TestEngine_LongPrefillShares: a long prompt is fed in chunks that
// leave room in every step for requests behind it, so a short request
// submitted with it is admitted at once and finishes while the long one
// is still in prefill (before, it waited for the long prompt's whole
// prefill: admission stopped while more than a step's budget of prompt
// tokens was pending, and chunks went to the oldest prompt first).
func TestEngine_LongPrefillShares(t *testing.T) {
	m, tok := stories(t)
	long := Request{ID: "long", Prompt: randomPrompt(7, 480, 512), Params: SamplingParams{MaxNewTokens: 1}}
	short := Request{ID: "short", Prompt: []int32{1, 403, 407, 261, 378}, Params: SamplingParams{MaxNewTokens: 4, IgnoreEOS: true}}
	alone := generate(t, newEngine(t, m, tok, Config{}), short)[0]
	e := newEngine(t, m, tok, Config{MaxBatchTokens: 32, MaxPrefillChunk: 8})
	res := generate(t, e, long, short)
	if res[1].TimeToFirstToken >= res[0].TimeToFirstToken {
		t.Fatalf("the short request's first token came after %v, the long prompt's after %v: it waited for the long prefill",
			res[1].TimeToFirstToken, res[0].TimeToFirstToken)
	}
	// ~15 steps of 32 tokens feed the long prompt; the short request needs 5
	if st := e.Stats(); st.Steps > 18 || st.PromptTokens != 485 {
		t.Errorf("%d steps, %d prompt tokens: want ≤ 18 steps and 485 tokens", st.Steps, st.PromptTokens)
	}
	sameResults(t, "beside a long prefill", res[1:], []Result{alone}, 5e-5)
}
