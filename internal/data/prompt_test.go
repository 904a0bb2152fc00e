package data

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

func TestPromptEncoder_ReadPrompts(t *testing.T) {
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{
		`{"input": "Once upon a time", "label": 42}`,
		`{"input": "A cat", "label": "#### 7"}`,
		`{"question": "no input key", "label": 1}`,
		`{"input": 12, "label": 1}`,
		`{"input": "` + strings.Repeat("very long ", 60) + `", "label": 1}`,
		`{"input": [{"role": "user", "content": "hi"}], "label": 1}`,
		`{"input": "no label"}`,
	}
	path := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	enc := &PromptEncoder{Tok: tok, InputTemplate: "Story: {}", BOS: int32(tok.Specials().BOS), MaxTokens: 64}
	if err := enc.Validate(); err != nil {
		t.Fatal(err)
	}
	ps, rep, err := enc.ReadPrompts(path, 0, PromptKeys{InputKey: "input", LabelKey: "label"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || rep.Used != 2 || rep.SkippedTotal() != 5 {
		t.Fatalf("%d prompts; report: %s", len(ps), rep)
	}
	if ps[0].Text != "Story: Once upon a time" || ps[0].Label != "42" || ps[1].Label != "#### 7" {
		t.Fatalf("prompts %+v", ps)
	}
	if ps[0].IDs[0] != int32(tok.Specials().BOS) {
		t.Fatal("no BOS")
	}
	for _, reason := range []string{`missing key "input"`, "neither a string nor a chat", "longer than 64 tokens", "set --data.apply_chat_template", `missing label key "label"`} {
		found := false
		for r := range rep.SkipCount {
			found = found || strings.Contains(r, reason)
		}
		if !found {
			t.Errorf("no skip reason %q in %s", reason, rep)
		}
	}

	t.Run("ChatTemplate", func(t *testing.T) {
		tmpl, err := chattmpl.Parse("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}", chattmpl.Specials{})
		if err != nil {
			t.Fatal(err)
		}
		enc := &PromptEncoder{Tok: tok, Template: tmpl, ChatText: true, BOS: int32(tok.Specials().BOS), MaxTokens: 256}
		keys := PromptKeys{InputKey: "input"}
		p, reason := enc.Record(mustRecord(t, `{"input": "A cat"}`), keys)
		if reason != nil || p.Text != "<user>A cat<assistant>" {
			t.Fatalf("plain prompt under a chat template: %q (%v)", p.Text, reason)
		}
		p, reason = enc.Record(mustRecord(t, `{"input": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]}`), keys)
		if reason != nil || p.Text != "<system>Be kind.<user>Hi<assistant>" {
			t.Fatalf("chat prompt: %q (%v)", p.Text, reason)
		}
	})
}

// mustRecord parses one JSON object as a dataset record.
func mustRecord(t testing.TB, line string) Record {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		t.Fatal(err)
	}
	return Record{Fields: fields}
}

// TestPromptEncoder_Encode covers the one encoding rule generate, serve
// and the RL trainer share: BOS first unless already there, the input
// template, chats with a system message, unconditional generation from
// an empty prompt, and the errors.
func TestPromptEncoder_Encode(t *testing.T) {
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	bos := int32(tok.Specials().BOS)
	tmpl, err := chattmpl.Parse("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}", chattmpl.Specials{})
	if err != nil {
		t.Fatal(err)
	}
	plain := func(s string) []int32 {
		var out []int32
		for _, id := range tok.Encode(s) {
			out = append(out, int32(id))
		}
		return out
	}
	cases := []struct {
		name    string
		enc     PromptEncoder
		value   string
		text    string
		ids     []int32
		wantErr string
	}{
		{"text with BOS", PromptEncoder{Tok: tok, BOS: bos}, `"A cat"`, "A cat", append([]int32{bos}, plain("A cat")...), ""},
		{"text without BOS", PromptEncoder{Tok: tok, BOS: -1}, `"A cat"`, "A cat", plain("A cat"), ""},
		{"input template", PromptEncoder{Tok: tok, BOS: bos, InputTemplate: "Q: {} A:"}, `"2+2"`, "Q: 2+2 A:", append([]int32{bos}, plain("Q: 2+2 A:")...), ""},
		{"empty is BOS", PromptEncoder{Tok: tok, BOS: bos}, `""`, "", []int32{bos}, ""},
		{"empty is BOS even when off", PromptEncoder{Tok: tok, BOS: -1}, `""`, "", []int32{bos}, ""},
		{"chat text with system", PromptEncoder{Tok: tok, BOS: bos, Template: tmpl, ChatText: true, System: "Be kind."}, `"Hi"`,
			"<system>Be kind.<user>Hi<assistant>", append([]int32{bos}, plain("<system>Be kind.<user>Hi<assistant>")...), ""},
		{"chat list", PromptEncoder{Tok: tok, BOS: -1, Template: tmpl}, `[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]`,
			"<user>Hi<assistant>", plain("<user>Hi<assistant>"), ""},
		{"chat without template", PromptEncoder{Tok: tok, BOS: bos}, `[{"role": "user", "content": "Hi"}]`, "", nil, ErrNoTemplate.Error()},
		{"too long", PromptEncoder{Tok: tok, BOS: bos, MaxTokens: 2}, `"Once upon a time"`, "", nil, "longer than 2 tokens"},
		{"not a prompt", PromptEncoder{Tok: tok, BOS: bos}, `12`, "", nil, "must be a string or a list"},
		{"empty chat", PromptEncoder{Tok: tok, BOS: bos, Template: tmpl}, `[]`, "", nil, "not a list of {role, content} messages"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.enc.Value(json.RawMessage(c.value))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Text != c.text || !slices.Equal(p.IDs, c.ids) {
				t.Errorf("got %q %v, want %q %v", p.Text, p.IDs, c.text, c.ids)
			}
		})
	}
	t.Run("no BOS without one", func(t *testing.T) {
		hf := &tokenizerWithoutBOS{tok}
		if _, err := (&PromptEncoder{Tok: hf, BOS: -1}).Text(""); err == nil || !strings.Contains(err.Error(), "empty prompt") {
			t.Errorf("empty prompt without BOS: %v", err)
		}
	})
	if err := (&PromptEncoder{Tok: tok, ChatText: true}).Validate(); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("ChatText without a template: %v", err)
	}
	if err := (&PromptEncoder{Tok: tok, InputTemplate: "no slot"}).Validate(); err == nil {
		t.Error("an input template without {} validated")
	}
}

// tokenizerWithoutBOS is tok512 with its BOS undefined.
type tokenizerWithoutBOS struct{ tokenizer.Tokenizer }

func (t *tokenizerWithoutBOS) Specials() tokenizer.Specials {
	sp := t.Tokenizer.Specials()
	sp.BOS = -1
	return sp
}
