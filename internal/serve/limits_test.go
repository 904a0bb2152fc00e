package serve

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// lengthErr checks a 400 context_length_exceeded naming param and returns
// its message.
func lengthErr(t *testing.T, status int, out map[string]any, param string) string {
	t.Helper()
	e, _ := out["error"].(map[string]any)
	if status != 400 || e == nil || e["type"] != "invalid_request_error" || e["param"] != param || e["code"] != "context_length_exceeded" {
		t.Fatalf("status %d, %v: want 400 context_length_exceeded with param %q", status, out, param)
	}
	msg, _ := e["message"].(string)
	if !strings.Contains(msg, "maximum context length is 512 tokens") {
		t.Fatalf("message %q does not name the limit", msg)
	}
	return msg
}

// usageOf returns an answer's completion tokens and first finish reason.
func usageOf(t *testing.T, status int, out map[string]any) (int, string) {
	t.Helper()
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	u := out["usage"].(map[string]any)
	reason, _ := choices(t, out)[0]["finish_reason"].(string)
	return int(u["completion_tokens"].(float64)), reason
}

// TestServer_ContextLimit: stories260K has 512 positions. A length the
// client sets must fit after its prompt (400 context_length_exceeded with
// vLLM's message), a prompt that fills the context is refused whatever
// the length (also a long text, in a stream, in a chat), and a default
// length is lowered to what fits.
func TestServer_ContextLimit(t *testing.T) {
	f := newFixture(t, Options{})
	ids := func(n int) []int {
		p := make([]int, n)
		for i := range p {
			p[i] = 3 + i%500
		}
		return p
	}
	status, out := f.post(t, "/v1/completions", map[string]any{"prompt": []int{1, 403}, "max_tokens": 1000, "ignore_eos": true})
	if msg := lengthErr(t, status, out, "max_tokens"); !strings.Contains(msg, "you requested 1002 tokens (2 in the prompt, 1000 in the completion)") {
		t.Errorf("message %q", msg)
	}
	status, out = f.post(t, "/v1/completions", map[string]any{"prompt": []int{1, 403}, "max_tokens": 510, "ignore_eos": true})
	if n, reason := usageOf(t, status, out); n != 510 || reason != "length" {
		t.Errorf("2 + 510 tokens: %d completion tokens, finish %q", n, reason)
	}
	for name, body := range map[string]map[string]any{
		"ids":       {"prompt": ids(512), "max_tokens": 1},
		"default":   {"prompt": ids(600)},
		"text":      {"prompt": strings.Repeat("Once upon a time there was a cat. ", 300)},
		"stream":    {"prompt": ids(512), "stream": true},
		"2nd_of_2":  {"prompt": [][]int{{1, 403}, ids(700)}},
		"max_limit": {"prompt": ids(1000), "max_tokens": 838000},
	} {
		status, out := f.post(t, "/v1/completions", body)
		if msg := lengthErr(t, status, out, "prompt"); !strings.Contains(msg, "no room for a completion") {
			t.Errorf("%s: message %q", name, msg)
		}
	}
	// the default length (16) is lowered to the 12 positions left
	status, out = f.post(t, "/v1/completions", map[string]any{"prompt": ids(500), "ignore_eos": true})
	if n, reason := usageOf(t, status, out); n != 12 || reason != "length" {
		t.Errorf("default length after 500 prompt tokens: %d tokens, finish %q; want 12, length", n, reason)
	}

	msgs := []map[string]any{{"role": "user", "content": "Once upon a time"}}
	status, out = f.post(t, "/v1/chat/completions", map[string]any{"messages": msgs, "max_completion_tokens": 1000})
	lengthErr(t, status, out, "max_completion_tokens")
	long := []map[string]any{{"role": "user", "content": strings.Repeat("Lily saw a big dog. ", 150)}}
	status, out = f.post(t, "/v1/chat/completions", map[string]any{"messages": long})
	lengthErr(t, status, out, "messages")
}

// TestServer_MaxTokensLimit: Options.MaxTokensLimit caps what a request
// may ask for (400 naming the limit) and what one that asks nothing gets;
// without it a request for ~838K tokens is still refused by the context.
func TestServer_MaxTokensLimit(t *testing.T) {
	f := newFixture(t, Options{MaxTokensLimit: 8})
	for _, c := range []struct{ path, param string }{{"/v1/completions", "max_tokens"}, {"/v1/chat/completions", "max_tokens"},
		{"/v1/chat/completions", "max_completion_tokens"}} {
		body := map[string]any{"prompt": "Once", "messages": []map[string]any{{"role": "user", "content": "Once"}}, c.param: 9}
		status, out := f.post(t, c.path, body)
		e, _ := out["error"].(map[string]any)
		if status != 400 || e == nil || e["param"] != c.param || !strings.Contains(fmt.Sprint(e["message"]), "≤ 8") {
			t.Errorf("%s %s 9: status %d, %v", c.path, c.param, status, out)
		}
		body[c.param] = 8
		if status, out := f.post(t, c.path, body); status != 200 {
			t.Errorf("%s %s 8: status %d, %v", c.path, c.param, status, out)
		}
	}
	// a chat that sets no length gets the cap, not ChatMaxTokens (256)
	status, out := f.post(t, "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "Once"}}, "ignore_eos": true})
	if n, _ := usageOf(t, status, out); n != 8 {
		t.Errorf("chat without a length: %d tokens, want the cap 8", n)
	}

	g := newFixture(t, Options{})
	status, out = g.post(t, "/v1/completions", map[string]any{"prompt": "Once", "max_tokens": 838000})
	lengthErr(t, status, out, "max_tokens")
}

// TestServer_LongPromptDoesNotStall: one client's long prompt (within the
// context) must not hold back the others. A real server on loopback
// serves stories260K with its context raised to 4096 positions (rotary
// positions allow it) and a 128-token step budget: while a 3000-token
// prompt is prefilled (~24 steps), short requests sent after it finish
// before it does, in about the time of a few of its steps rather than
// its whole prefill, and /health answers at once. Before, admission
// stopped while more than a step's budget of prompt tokens was pending
// and chunks went to the oldest prompt: they waited for all of it.
func TestServer_LongPromptDoesNotStall(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3000-token prefill: seconds")
	}
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := l.Model.(*llama.Model)
	m.Config.MaxPositions = 4096
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := generate.New(m, tok, generate.Config{EOS: []int32{1, 2}, MaxBatchTokens: 128})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{eng: eng, tok: tok}
	f.srv = httptest.NewServer(New(eng, tok, Options{BOS: 1}).Handler())
	f.client = f.srv.Client()
	t.Cleanup(func() { f.srv.Close(); eng.Close() })

	short := map[string]any{"prompt": "Once upon a time", "max_tokens": 4, "ignore_eos": true}
	timed := func(path string, body any) time.Duration {
		start := time.Now()
		if status, out := f.post(t, path, body); status != 200 {
			t.Errorf("%s: status %d, %v", path, status, out)
		}
		return time.Since(start)
	}
	alone := time.Duration(1 << 62)
	for range 3 {
		alone = min(alone, timed("/v1/completions", short))
	}

	prompt := make([]int, 3000)
	for i := range prompt {
		prompt[i] = 3 + (i*7)%500
	}
	before := f.eng.Stats().PromptTokens
	start := time.Now()
	longDone := make(chan time.Duration, 1)
	go func() { longDone <- timed("/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 1}) }()
	for deadline := time.Now().Add(30 * time.Second); f.eng.Stats().PromptTokens <= before; { // its prefill has begun
		if time.Now().After(deadline) {
			t.Fatal("the long prompt never started")
		}
		time.Sleep(time.Millisecond)
	}
	const clients = 3
	var wg sync.WaitGroup
	shortEnd := make([]time.Duration, clients)
	took := make([]time.Duration, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took[i] = timed("/v1/completions", short)
			shortEnd[i] = time.Since(start)
		}()
	}
	hstart := time.Now()
	if resp := f.do(t, http.MethodGet, "/health", nil); resp.StatusCode != 200 {
		t.Errorf("/health: %d", resp.StatusCode)
	}
	health := time.Since(hstart)
	wg.Wait()
	long := <-longDone
	t.Logf("short alone %v; long prompt %v; short beside it %v (ended at %v); /health %v", alone, long, took, shortEnd, health)
	for i := range clients {
		if shortEnd[i] >= long {
			t.Errorf("short request %d ended %v after the long one began, after the long one (%v): it waited for the prefill", i, shortEnd[i], long)
		}
		if bound := alone + long/2; took[i] > bound {
			t.Errorf("short request %d took %v beside the long prompt, more than alone (%v) + half the long one (%v)", i, took[i], alone, long/2)
		}
	}
	if health > time.Second {
		t.Errorf("/health took %v during the long prefill", health)
	}
}
