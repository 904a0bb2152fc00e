package serve

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorlhf/gorlhf/internal/generate"
)

// legacyLP is the completions API's logprobs object as a client reads it.
type legacyLP struct {
	tokens  []string
	lps     []float64
	offsets []int
	top     []map[string]any
}

func readLegacy(t *testing.T, c map[string]any) legacyLP {
	t.Helper()
	m, ok := c["logprobs"].(map[string]any)
	if !ok {
		t.Fatalf("no logprobs in %v", c)
	}
	var l legacyLP
	for _, v := range m["tokens"].([]any) {
		l.tokens = append(l.tokens, v.(string))
	}
	for _, v := range m["token_logprobs"].([]any) {
		l.lps = append(l.lps, v.(float64))
	}
	for _, v := range m["text_offset"].([]any) {
		l.offsets = append(l.offsets, int(v.(float64)))
	}
	if tops, ok := m["top_logprobs"].([]any); ok {
		for _, v := range tops {
			l.top = append(l.top, v.(map[string]any))
		}
	}
	return l
}

// TestServer_CompletionText: with tok512 (SentencePiece-style) the
// completion of "Once" is " upon a time…" with its leading space, so that
// prompt + text reads right; the logprobs' tokens add up to the text,
// text_offset indexes it (in characters), every top_logprobs entry keeps
// its own key and the chosen (greedy) token is among them under its text;
// streaming gives the same text, tokens and offsets.
func TestServer_CompletionText(t *testing.T) {
	f := newFixture(t, Options{})
	body := map[string]any{"prompt": "Once", "max_tokens": 10, "temperature": 0, "logprobs": 5}
	status, out := f.post(t, "/v1/completions", body)
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	c := choices(t, out)[0]
	text := c["text"].(string)
	if !strings.HasPrefix(text, " upon") {
		t.Fatalf("completion of %q is %q: prompt + text reads %q", "Once", text, "Once"+text)
	}
	l := readLegacy(t, c)
	if len(l.tokens) != 10 || strings.Join(l.tokens, "") != text {
		t.Fatalf("tokens %q do not add up to the text %q", l.tokens, text)
	}
	runes := []rune(text)
	for i, tok := range l.tokens {
		if want := utf8.RuneCountInString(strings.Join(l.tokens[:i], "")); l.offsets[i] != want || !strings.HasPrefix(string(runes[l.offsets[i]:]), tok) {
			t.Fatalf("token %d %q: text_offset %d, want %d in %q", i, tok, l.offsets[i], want, text)
		}
		if len(l.top[i]) != 5 {
			t.Fatalf("token %d: %d top_logprobs entries, want 5: %v", i, len(l.top[i]), l.top[i])
		}
		if lp, ok := l.top[i][tok].(float64); !ok || float32(lp) != float32(l.lps[i]) {
			t.Fatalf("token %d %q (log-prob %v) is not in its top_logprobs %v", i, tok, l.lps[i], l.top[i])
		}
	}

	body["stream"] = true
	var streamed string
	var sl legacyLP
	for _, ch := range f.sse(t, "/v1/completions", body) {
		cs := choices(t, ch)
		streamed += cs[0]["text"].(string)
		if cs[0]["logprobs"] != nil {
			one := readLegacy(t, cs[0])
			sl.tokens = append(sl.tokens, one.tokens...)
			sl.offsets = append(sl.offsets, one.offsets...)
		}
	}
	if streamed != text || strings.Join(sl.tokens, "") != text {
		t.Fatalf("streamed text %q, tokens %q; plain %q", streamed, sl.tokens, text)
	}
	for i := range l.offsets {
		if sl.offsets[i] != l.offsets[i] {
			t.Fatalf("streamed text_offset %v, plain %v", sl.offsets, l.offsets)
		}
	}

	// Chat: the message is decoded after the rendered prompt, and the
	// logprobs' tokens add up to it.
	status, out = f.post(t, "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "Once"}},
		"max_tokens": 8, "temperature": 0, "logprobs": true, "top_logprobs": 3})
	if status != 200 {
		t.Fatalf("chat: status %d: %v", status, out)
	}
	cc := choices(t, out)[0]
	var joined string
	for _, e := range cc["logprobs"].(map[string]any)["content"].([]any) {
		joined += e.(map[string]any)["token"].(string)
	}
	if content := cc["message"].(map[string]any)["content"].(string); joined != content {
		t.Fatalf("chat logprob tokens %q, content %q", joined, content)
	}
}

// TestTokenTexts_Unicode checks the logprobs' token texts where tok512
// spells characters with byte tokens: a token inside a character gets ""
// and the one completing it the character; offsets count characters; two
// byte tokens that both leave a character unfinished (both read U+FFFD)
// keep separate top_logprobs keys, the less likely under "token_id:ID".
func TestTokenTexts_Unicode(t *testing.T) {
	f := newFixture(t, Options{})
	s := New(f.eng, f.tok, Options{BOS: 1})
	prompt := toIDs(append([]int{1}, f.tok.Encode("Tom said")...))
	const text = " café 日本 ok"
	ids := toIDs(f.tok.Encode("Tom said" + text)[len(f.tok.Encode("Tom said")):])
	tt := s.tokenTexts(prompt)
	var got strings.Builder
	for _, id := range ids {
		piece, off := tt.next(id)
		if off != utf8.RuneCountInString(got.String()) || strings.Contains(piece, "\uFFFD") {
			t.Fatalf("token %d: piece %q at offset %d after %q", id, piece, off, got.String())
		}
		got.WriteString(piece)
	}
	if got.String() != text {
		t.Fatalf("pieces add up to %q, want %q", got.String(), text)
	}
	e6, ok1 := f.tok.TokenID("<0xE6>")
	e5, ok2 := f.tok.TokenID("<0xE5>")
	if !ok1 || !ok2 {
		t.Fatal("tok512 has no byte tokens <0xE6>, <0xE5>")
	}
	m := s.tokenTexts(prompt).topMap([]generate.TokenLogProb{{Token: int32(e6), LogProb: -1}, {Token: int32(e5), LogProb: -2}})
	if len(m) != 2 || m["\uFFFD"] != -1 || m["token_id:"+strconv.Itoa(e5)] != -2 {
		t.Fatalf("colliding alternatives: %v", m)
	}
}
