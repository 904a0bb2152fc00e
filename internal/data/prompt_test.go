package data

import (
	"encoding/json"
	"os"
	"path/filepath"
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
