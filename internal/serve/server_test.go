package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

const testTemplate = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"

// fixture is a real server on loopback serving stories260K.
type fixture struct {
	srv    *httptest.Server
	s      *Server
	eng    *generate.Engine
	tok    tokenizer.Tokenizer
	client *http.Client
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := generate.New(l.Model.(model.Decoder), tok, generate.Config{EOS: []int32{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Template == nil {
		if o.Template, err = chattmpl.Parse(testTemplate, chattmpl.Specials{}); err != nil {
			t.Fatal(err)
		}
	}
	o.BOS = 1
	s := New(eng, tok, o)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
	})
	return &fixture{srv: srv, s: s, eng: eng, tok: tok, client: srv.Client()}
}

// post sends a JSON body and decodes the JSON answer.
func (f *fixture) post(t *testing.T, path string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	resp := f.do(t, http.MethodPost, path, body, headers...)
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: answer is not JSON: %v", path, err)
	}
	return resp.StatusCode, out
}

func (f *fixture) do(t *testing.T, method, path string, body any, headers ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sse reads a stream's data lines; the last must be [DONE].
func (f *fixture) sse(t *testing.T, path string, body any) []map[string]any {
	t.Helper()
	resp := f.do(t, http.MethodPost, path, body)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var chunks []map[string]any
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("stream line without data: %q", line)
		}
		if done {
			t.Fatalf("data after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk is not JSON: %q", data)
		}
		if c["error"] != nil {
			t.Fatalf("error chunk: %v", c["error"])
		}
		chunks = append(chunks, c)
	}
	if !done {
		t.Fatal("stream ended without data: [DONE]")
	}
	return chunks
}

func choices(t *testing.T, out map[string]any) []map[string]any {
	t.Helper()
	cs, ok := out["choices"].([]any)
	if !ok {
		t.Fatalf("no choices in %v", out)
	}
	var res []map[string]any
	for _, c := range cs {
		res = append(res, c.(map[string]any))
	}
	return res
}

// TestServer_Basics covers /health, /v1/models, unknown routes and methods.
func TestServer_Basics(t *testing.T) {
	f := newFixture(t, Options{ModelName: "stories"})
	resp := f.do(t, http.MethodGet, "/health", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/health: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp = f.do(t, http.MethodGet, "/v1/models", nil)
	var models struct {
		Data []struct{ ID string } `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if len(models.Data) != 1 || models.Data[0].ID != "stories" {
		t.Fatalf("/v1/models: %+v", models)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/v1/nope", 404}, {"GET", "/v1/completions", 405}, {"POST", "/v1/models", 405}} {
		resp := f.do(t, c.method, c.path, nil)
		var e map[string]map[string]any
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || e["error"]["message"] == nil {
			t.Errorf("%s %s: status %d, body %v; want %d with an OpenAI error", c.method, c.path, resp.StatusCode, e, c.status)
		}
	}
}

// TestServer_Completions checks a greedy completion against the engine
// called directly, usage counts, and the logprobs layout.
func TestServer_Completions(t *testing.T) {
	f := newFixture(t, Options{})
	status, out := f.post(t, "/v1/completions", map[string]any{"model": "x", "prompt": "Once upon a time", "max_tokens": 20,
		"temperature": 0, "logprobs": 2})
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	prompt := append([]int32{1}, toIDs(f.tok.Encode("Once upon a time"))...)
	want, err := f.eng.Generate(context.Background(), []generate.Request{{Prompt: prompt, Params: generate.SamplingParams{MaxNewTokens: 20, TopLogProbs: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	wc := want[0].Completions[0]
	c := choices(t, out)[0]
	if c["text"] != wc.Text || c["finish_reason"] != string(wc.FinishReason) {
		t.Fatalf("choice %v, want text %q finish %q", c, wc.Text, wc.FinishReason)
	}
	lp := c["logprobs"].(map[string]any)
	tl := lp["token_logprobs"].([]any)
	if len(tl) != len(wc.Tokens) || len(lp["top_logprobs"].([]any)) != len(wc.Tokens) {
		t.Fatalf("logprobs for %d tokens, want %d", len(tl), len(wc.Tokens))
	}
	for i, v := range tl {
		if float32(v.(float64)) != wc.RawLogProbs[i] {
			t.Fatalf("token %d log-prob %v, want %v", i, v, wc.RawLogProbs[i])
		}
	}
	u := out["usage"].(map[string]any)
	if int(u["prompt_tokens"].(float64)) != len(prompt) || int(u["completion_tokens"].(float64)) != len(wc.Tokens) {
		t.Fatalf("usage %v", u)
	}
}

// TestServer_Completions_Sampling checks n, seeds and a list of prompts.
func TestServer_Completions_Sampling(t *testing.T) {
	f := newFixture(t, Options{})
	body := map[string]any{"prompt": []string{"The cat", "A dog"}, "max_tokens": 12, "n": 3, "seed": 7, "temperature": 1, "top_p": 0.9}
	_, a := f.post(t, "/v1/completions", body)
	_, b := f.post(t, "/v1/completions", body)
	ca, cb := choices(t, a), choices(t, b)
	if len(ca) != 6 {
		t.Fatalf("%d choices for 2 prompts × n=3, want 6", len(ca))
	}
	distinct := map[string]bool{}
	for i := range ca {
		if int(ca[i]["index"].(float64)) != i || ca[i]["text"] != cb[i]["text"] {
			t.Fatalf("choice %d: index %v, same seed gave %q and %q", i, ca[i]["index"], ca[i]["text"], cb[i]["text"])
		}
		distinct[ca[i]["text"].(string)] = true
	}
	if len(distinct) < 3 {
		t.Fatalf("6 sampled completions, only %d distinct: seeds per sample are not independent", len(distinct))
	}
}

// TestServer_Stream checks SSE streaming: the deltas add up to the
// non-streamed text (a stop string included), the last chunk of each
// choice has its finish reason, and the stream ends with [DONE].
func TestServer_Stream(t *testing.T) {
	f := newFixture(t, Options{})
	for _, stop := range []any{nil, " the"} {
		body := map[string]any{"prompt": "Once upon a time", "max_tokens": 40, "n": 2, "seed": 3, "stop": stop,
			"stream_options": map[string]any{"include_usage": true}}
		_, plain := f.post(t, "/v1/completions", body)
		body["stream"] = true
		chunks := f.sse(t, "/v1/completions", body)
		texts, reasons := map[int]string{}, map[int]string{}
		for _, c := range chunks {
			cs := choices(t, c)
			if len(cs) == 0 {
				if c["usage"] == nil {
					t.Fatal("a chunk without choices must carry usage")
				}
				continue
			}
			i := int(cs[0]["index"].(float64))
			if reasons[i] != "" {
				t.Fatalf("choice %d: chunk after its finish reason", i)
			}
			texts[i] += cs[0]["text"].(string)
			if r, ok := cs[0]["finish_reason"].(string); ok {
				reasons[i] = r
			}
		}
		for _, c := range choices(t, plain) {
			i := int(c["index"].(float64))
			if texts[i] != c["text"] || reasons[i] != c["finish_reason"] {
				t.Fatalf("stop %v choice %d: streamed %q (%s), plain %q (%s)", stop, i, texts[i], reasons[i], c["text"], c["finish_reason"])
			}
		}
	}
}

// TestServer_Chat checks chat completions with the template, streamed and
// not, and the 400 for a model without a template.
func TestServer_Chat(t *testing.T) {
	f := newFixture(t, Options{})
	body := map[string]any{"messages": []map[string]any{{"role": "user", "content": "Tell me a story"}},
		"max_tokens": 16, "temperature": 0, "logprobs": true, "top_logprobs": 2}
	status, out := f.post(t, "/v1/chat/completions", body)
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	c := choices(t, out)[0]
	msg := c["message"].(map[string]any)
	if msg["role"] != "assistant" || msg["content"] == "" {
		t.Fatalf("message %v", msg)
	}
	if out["weight_version"] != 0.0 {
		t.Fatalf("weight_version %v", out["weight_version"])
	}
	lp := c["logprobs"].(map[string]any)["content"].([]any)
	if len(lp) == 0 || len(lp[0].(map[string]any)["top_logprobs"].([]any)) != 2 {
		t.Fatalf("logprobs %v", lp)
	}
	body["stream"] = true
	var text string
	for i, ch := range f.sse(t, "/v1/chat/completions", body) {
		d := choices(t, ch)[0]["delta"].(map[string]any)
		if i == 0 && d["role"] != "assistant" {
			t.Fatalf("first delta %v has no role", d)
		}
		if s, ok := d["content"].(string); ok {
			text += s
		}
	}
	if text != msg["content"] {
		t.Fatalf("streamed %q, plain %q", text, msg["content"])
	}
	// Content given as text parts works too.
	status, _ = f.post(t, "/v1/chat/completions", map[string]any{"messages": []map[string]any{
		{"role": "user", "content": []map[string]any{{"type": "text", "text": "Hi"}}}}, "max_tokens": 3})
	if status != 200 {
		t.Fatalf("content parts: status %d", status)
	}
}

// TestServer_Errors checks that bad input gets OpenAI-style 4xx errors
// naming the parameter.
func TestServer_Errors(t *testing.T) {
	f := newFixture(t, Options{})
	cases := []struct {
		name, path string
		body       any
		status     int
		param      string
	}{
		{"invalid_json", "/v1/completions", "{", 400, ""},
		{"no_prompt", "/v1/completions", map[string]any{}, 400, "prompt"},
		{"bad_temperature", "/v1/completions", map[string]any{"prompt": "a", "temperature": 5}, 400, "temperature"},
		{"bad_top_p", "/v1/completions", map[string]any{"prompt": "a", "top_p": 0}, 400, "top_p"},
		{"bad_n", "/v1/completions", map[string]any{"prompt": "a", "n": 0}, 400, "n"},
		{"bad_max_tokens", "/v1/completions", map[string]any{"prompt": "a", "max_tokens": 0}, 400, "max_tokens"},
		{"too_many_logprobs", "/v1/completions", map[string]any{"prompt": "a", "logprobs": 21}, 400, "logprobs"},
		{"penalty", "/v1/completions", map[string]any{"prompt": "a", "presence_penalty": 0.5}, 400, "presence_penalty"},
		{"echo", "/v1/completions", map[string]any{"prompt": "a", "echo": true}, 400, "echo"},
		{"bad_stop", "/v1/completions", map[string]any{"prompt": "a", "stop": 3}, 400, "stop"},
		{"token_out_of_vocab", "/v1/completions", map[string]any{"prompt": []int{1, 99999}}, 400, ""},
		{"no_messages", "/v1/chat/completions", map[string]any{"messages": []any{}}, 400, "messages"},
		{"image_part", "/v1/chat/completions", map[string]any{"messages": []map[string]any{
			{"role": "user", "content": []map[string]any{{"type": "image_url"}}}}}, 400, "messages[0].content"},
		{"tools", "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}},
			"tools": []map[string]any{{"type": "function"}}}, 400, "tools"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := f.post(t, c.path, c.body)
			e, _ := out["error"].(map[string]any)
			if status != c.status || e == nil || e["type"] != "invalid_request_error" || e["message"] == "" {
				t.Fatalf("status %d body %v, want %d with an invalid_request_error", status, out, c.status)
			}
			if c.param != "" && e["param"] != c.param {
				t.Fatalf("param %v, want %q", e["param"], c.param)
			}
		})
	}
	t.Run("no_template", func(t *testing.T) {
		g := newFixture(t, Options{})
		g.srv.Config.Handler = New(g.eng, g.tok, Options{BOS: 1}).Handler()
		status, out := g.post(t, "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}}})
		if status != 400 || !strings.Contains(fmt.Sprint(out["error"]), "chat template") {
			t.Fatalf("status %d, %v", status, out)
		}
	})
}

// TestServer_Auth checks the bearer token.
func TestServer_Auth(t *testing.T) {
	f := newFixture(t, Options{APIKey: "sekret"})
	body := map[string]any{"prompt": "a", "max_tokens": 2}
	for _, c := range []struct {
		header []string
		status int
	}{{nil, 401}, {[]string{"Authorization", "Bearer nope"}, 401}, {[]string{"Authorization", "sekret"}, 401},
		{[]string{"Authorization", "Bearer sekret"}, 200},
		{[]string{"Authorization", "bearer sekret"}, 200}, {[]string{"Authorization", "BEARER  sekret"}, 200}} { // RFC 7235: any case
		resp := f.do(t, http.MethodPost, "/v1/completions", body, c.header...)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Fatalf("header %v: status %d, want %d", c.header, resp.StatusCode, c.status)
		}
		if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("header %v: 401 without a Bearer challenge", c.header)
		}
	}
	if resp := f.do(t, http.MethodGet, "/health", nil); resp.StatusCode != 200 {
		t.Fatalf("/health must stay open: %d", resp.StatusCode)
	}
}

// TestServer_Concurrent sends requests from many clients at once: each
// answer equals the one it gets alone, and the engine batched them
// (fewer model steps than the requests' tokens).
func TestServer_Concurrent(t *testing.T) {
	f := newFixture(t, Options{})
	const clients = 8
	bodies := make([]map[string]any, clients)
	want := make([]string, clients)
	for i := range bodies {
		bodies[i] = map[string]any{"prompt": fmt.Sprintf("Once upon a time, %d", i), "max_tokens": 30, "seed": i, "temperature": 0.8}
		_, out := f.post(t, "/v1/completions", bodies[i])
		want[i] = choices(t, out)[0]["text"].(string)
	}
	before := f.eng.Stats()
	var wg sync.WaitGroup
	got := make([]string, clients)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, out := f.post(t, "/v1/completions", bodies[i])
			got[i] = choices(t, out)[0]["text"].(string)
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("client %d: %q concurrently, %q alone", i, got[i], want[i])
		}
	}
	after := f.eng.Stats()
	steps, toks := after.Steps-before.Steps, after.GeneratedTokens-before.GeneratedTokens
	if steps >= toks {
		t.Fatalf("%d steps for %d tokens: concurrent clients were not batched", steps, toks)
	}
	t.Logf("%d tokens in %d steps", toks, steps)
}

func toIDs(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// TestServer_StrictBodies (issue 17): a body with anything after its JSON
// is refused, not half-read; and error messages read as sentences (no
// empty parameter name in front: ": prompt 0: ...").
func TestServer_StrictBodies(t *testing.T) {
	f := newFixture(t, Options{})
	for _, body := range []string{`{"prompt": "Once", "max_tokens": 2} xyz`, `{"prompt": "Once", "max_tokens": 2}{"prompt": "b"}`} {
		status, out := f.post(t, "/v1/completions", body)
		e, _ := out["error"].(map[string]any)
		if status != 400 || !strings.Contains(fmt.Sprint(e["message"]), "trailing data") {
			t.Errorf("%s: status %d, %v", body, status, out)
		}
	}
	status, out := f.post(t, "/v1/completions", map[string]any{"prompt": []int{1, 99999}})
	e, _ := out["error"].(map[string]any)
	msg := fmt.Sprint(e["message"])
	if status != 400 || strings.HasPrefix(msg, ":") || !strings.HasPrefix(msg, "prompt 0: ") || !strings.Contains(msg, "99999") {
		t.Errorf("status %d, message %q", status, msg)
	}
}
