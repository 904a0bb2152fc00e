package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// tok512 is the embedded stories260K tokenizer (BOS 1, EOS 2, "</s>" is EOS).
func tok512(t testing.TB) tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// zephyr is a small chat template whose turns end with "</s>" (EOS).
func zephyr(t testing.TB) *chattmpl.Template {
	t.Helper()
	tmpl, err := chattmpl.Load(filepath.Join("testdata", "zephyr.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func encoder(t testing.TB, chat bool, inputTemplate string, maxLen int) *Encoder {
	t.Helper()
	var tmpl *chattmpl.Template
	if chat {
		tmpl = zephyr(t)
	}
	e, err := NewEncoder(tok512(t), tmpl, inputTemplate, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writeFile writes content to a file in a fresh temporary folder.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// records parses JSONL text.
func records(t testing.TB, jsonl string) []Record {
	t.Helper()
	recs, _, err := ReadFile(writeFile(t, "d.jsonl", jsonl))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// lossText decodes the loss tokens of s, run by run, joined with "|".
func lossText(tok tokenizer.Tokenizer, s Sample) string {
	var runs []string
	var cur []int
	for i, l := range s.Loss {
		if l {
			cur = append(cur, int(s.IDs[i]))
			continue
		}
		if cur != nil {
			runs = append(runs, tok.Decode(cur))
			cur = nil
		}
	}
	if cur != nil {
		runs = append(runs, tok.Decode(cur))
	}
	return strings.Join(runs, "|")
}
