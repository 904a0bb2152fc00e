package chattmpl

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goldenSpec is testdata/cases.json, shared with tools/chattmpl_golden.py.
type goldenSpec struct {
	Templates map[string]struct {
		Config string `json:"config"`
		File   string `json:"file"`
		BOS    string `json:"bos_token"`
		EOS    string `json:"eos_token"`
	} `json:"templates"`
	Cases []goldenCase `json:"cases"`
}

type goldenCase struct {
	Name                string                     `json:"name"`
	Template            string                     `json:"template"`
	Source              *string                    `json:"source"`
	AddGenerationPrompt bool                       `json:"add_generation_prompt"`
	Messages            []Message                  `json:"messages"`
	Tools               json.RawMessage            `json:"tools"`
	Extra               map[string]json.RawMessage `json:"extra"`
	Now                 string                     `json:"now"`
}

func readGoldenSpec(t testing.TB) goldenSpec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s goldenSpec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	return s
}

func loadGoldenTemplates(t *testing.T, s goldenSpec) map[string]*Template {
	t.Helper()
	out := map[string]*Template{}
	for name, spec := range s.Templates {
		var tm *Template
		var err error
		if spec.Config != "" {
			tm, err = Load(filepath.Join("testdata", spec.Config))
		} else {
			var src []byte
			if src, err = os.ReadFile(filepath.Join("testdata", spec.File)); err == nil {
				tm, err = Parse(string(src), Specials{BOS: spec.BOS, EOS: spec.EOS})
			}
		}
		if err != nil {
			t.Fatalf("template %s: %v", name, err)
		}
		out[name] = tm
	}
	return out
}

func (c goldenCase) options(t *testing.T) RenderOptions {
	t.Helper()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if c.Now != "" {
		var err error
		if now, err = time.Parse("2006-01-02T15:04:05", c.Now); err != nil {
			t.Fatalf("now: %v", err)
		}
	}
	o := RenderOptions{
		AddGenerationPrompt: c.AddGenerationPrompt,
		ToolsJSON:           c.Tools,
		Now:                 func() time.Time { return now },
	}
	if len(c.Extra) > 0 {
		o.Extra = map[string]any{}
		for k, v := range c.Extra {
			o.Extra[k] = v
		}
	}
	return o
}

// TestTemplate_Render_golden asserts byte-identical output with Python
// Jinja2 configured as transformers' apply_chat_template (see
// tools/chattmpl_golden.py) for every case in testdata/cases.json.
func TestTemplate_Render_golden(t *testing.T) {
	spec := readGoldenSpec(t)
	templates := loadGoldenTemplates(t, spec)
	if len(spec.Cases) < 15 {
		t.Fatalf("only %d golden cases", len(spec.Cases))
	}
	for _, c := range spec.Cases {
		t.Run(c.Name, func(t *testing.T) {
			tm := templates[c.Template]
			if c.Source != nil {
				var err error
				if tm, err = Parse(*c.Source, Specials{}); err != nil {
					t.Fatalf("Parse: %v", err)
				}
			}
			if tm == nil {
				t.Fatalf("unknown template %q", c.Template)
			}
			got, err := tm.Render(c.Messages, c.options(t))
			base := filepath.Join("testdata", "golden", c.Name)
			if want, rerr := os.ReadFile(base + ".err"); rerr == nil {
				var re *RaiseError
				if !errors.As(err, &re) {
					t.Fatalf("want raise_exception %q, got output %q, err %v", want, got, err)
				}
				if re.Message != string(want) {
					t.Fatalf("raise_exception message\n got %q\nwant %q", re.Message, want)
				}
				return
			}
			want, rerr := os.ReadFile(base + ".txt")
			if rerr != nil {
				t.Fatalf("no golden output: %v (run /usr/bin/python3 tools/chattmpl_golden.py)", rerr)
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != string(want) {
				t.Fatalf("output differs from Jinja2 at byte %d\n got %q\nwant %q", firstDiff(got, string(want)), got, want)
			}
		})
	}
}

// TestGolden_filesMatchCases catches goldens left over from removed cases.
func TestGolden_filesMatchCases(t *testing.T) {
	spec := readGoldenSpec(t)
	names := map[string]bool{}
	for _, c := range spec.Cases {
		names[c.Name] = true
	}
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if !names[base] {
			t.Errorf("golden file %s has no case in cases.json", f)
		}
	}
}

func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
