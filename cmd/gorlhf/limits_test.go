package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGenerate_ContextLimit runs `gorlhf generate` on stories260K (512
// positions): a --max-new-tokens that does not fit after the prompt is
// an error naming the limit and what fits (it used to run past the
// positions into garbage), and without the flag the default (256) is
// lowered to what fits after a long prompt.
func TestGenerate_ContextLimit(t *testing.T) {
	args := []string{"generate", "--prompt", "Once", "--max-new-tokens", "1000", "--ignore-eos"}
	err := run(context.Background(), args, io.Discard)
	for _, want := range []string{"maximum context length is 512 tokens", "1000 in the completion", "--max-new-tokens: at most"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %v, want one containing %q", args, err, want)
		}
	}

	out := filepath.Join(t.TempDir(), "out.jsonl")
	long := strings.Repeat("Once upon a time there was a little cat. ", 40)
	args = []string{"generate", "--prompt", long, "--ignore-eos", "--temperature", "0", "--output", out}
	if err := run(context.Background(), args, io.Discard); err != nil {
		t.Fatal(err)
	}
	r := readRecords(t, out)[0]
	c := r.Completions[0]
	if r.PromptTokens < 300 || r.PromptTokens+len(c.Tokens) != 512 || c.FinishReason != "length" {
		t.Fatalf("%d prompt tokens, %d generated, finish %q: want the default lowered to fill the 512 positions",
			r.PromptTokens, len(c.Tokens), c.FinishReason)
	}

	args = []string{"generate", "--prompt", strings.Repeat(long, 2)}
	if err := run(context.Background(), args, io.Discard); err == nil || !strings.Contains(err.Error(), "no room for a completion") {
		t.Fatalf("a prompt past the context: %v", err)
	}
}

// TestServe_MaxTokensLimit runs `gorlhf serve` on a loopback port with
// --max-tokens-limit 8: more is a 400 naming the limit, a length past the
// context a 400 context_length_exceeded; bad flag pairs are refused.
func TestServe_MaxTokensLimit(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"--max-tokens-limit -1", "--max-tokens-limit must be ≥ 0"},
		{"--max-tokens-limit 100 --chat-max-tokens 300", "--chat-max-tokens 300 is over --max-tokens-limit 100"},
	} {
		if err := runServe(context.Background(), strings.Fields(c.args)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %s: %v, want %q", c.args, err, c.want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- runServe(ctx, []string{"--addr", addr, "--max-tokens-limit", "8"}) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	url := "http://" + addr
	for i := 0; ; i++ { // wait for the listener
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-served:
			served <- err
			t.Fatalf("serve ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if i == 500 {
			t.Fatalf("serve never answered: %v", err)
		}
	}
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"prompt": "Once", "max_tokens": 9}`, 400, "≤ 8"},
		{`{"prompt": "Once", "max_tokens": 838000}`, 400, "≤ 8"},
		{`{"prompt": "Once", "max_tokens": 8, "ignore_eos": true}`, 200, `"completion_tokens":8`},
		{fmt.Sprintf(`{"prompt": %q}`, strings.Repeat("Once upon a time. ", 200)), 400, "maximum context length is 512 tokens"},
	} {
		status, out := post(c.body)
		got, _ := json.Marshal(out)
		if status != c.status || !strings.Contains(string(got), c.want) {
			t.Errorf("%.60s: status %d, %s; want %d with %q", c.body, status, got, c.status, c.want)
		}
	}
}
