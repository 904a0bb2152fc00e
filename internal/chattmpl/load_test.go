package chattmpl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates files (path -> content) under a new temp folder.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func renderSimple(t *testing.T, tm *Template) string {
	t.Helper()
	out, err := tm.Render([]Message{{Role: "user", Content: "hi"}}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoad_qwen3(t *testing.T) {
	dir := filepath.Join("testdata", "qwen3")
	byDir, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	byFile, err := Load(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if byDir.Source() != byFile.Source() || !strings.HasPrefix(byDir.Source(), "{%- if tools %}") {
		t.Fatalf("sources differ or unexpected: %.40q", byDir.Source())
	}
	want := Specials{EOS: "<|im_end|>", PAD: "<|endoftext|>"} // bos_token and unk_token are null
	if byDir.Specials() != want {
		t.Fatalf("specials %+v, want %+v", byDir.Specials(), want)
	}
}

func TestLoad_sources(t *testing.T) {
	const cfgString = `{"chat_template": "cfg:{{ bos_token }}{{ eos_token }}", "bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"}, "eos_token": "</s>"}`
	const cfgList = `{"chat_template": [{"name": "default", "template": "def"}, {"name": "tool_use", "template": "tools"}], "eos_token": "E"}`
	tests := []struct {
		name  string
		files map[string]string
		path  string // relative to the folder; "" is the folder itself
		tmpl  string // template name
		want  string // rendered output
	}{
		{"string field", map[string]string{ConfigFile: cfgString}, "", "", "cfg:<s></s>"},
		{"config path", map[string]string{ConfigFile: cfgString}, ConfigFile, "", "cfg:<s></s>"},
		{"list default", map[string]string{ConfigFile: cfgList}, "", "", "def"},
		{"list named", map[string]string{ConfigFile: cfgList}, "", "tool_use", "tools"},
		{"list default by name", map[string]string{ConfigFile: cfgList}, "", DefaultName, "def"},
		{"sidecar wins over config", map[string]string{ConfigFile: cfgString, TemplateFile: "side:{{ eos_token }}\n"}, "", "", "side:</s>"},
		{"sidecar next to config path", map[string]string{ConfigFile: cfgString, TemplateFile: "side"}, ConfigFile, "", "side"},
		{"sidecar without config", map[string]string{TemplateFile: "only:{{ eos_token is defined }}"}, "", "", "only:False"},
		{"named sidecar", map[string]string{ConfigFile: cfgList, NamedTemplateDir + "/tool_use.jinja": "file-tools"}, "", "tool_use", "file-tools"},
		{"jinja path with config", map[string]string{ConfigFile: cfgString, "x.jinja": "x{{ bos_token }}"}, "x.jinja", "", "x<s>"},
		{"jinja path alone", map[string]string{"x.jinja": "x{{ bos_token }}"}, "x.jinja", "", "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			tm, err := LoadNamed(filepath.Join(dir, tc.path), tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if got := renderSimple(t, tm); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoad_errors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		path  string
		tmpl  string
		want  []string // substrings of the error
	}{
		{"missing folder", nil, "nope", "", []string{"no such file"}},
		{"empty folder", map[string]string{}, "", "", []string{"neither", ConfigFile, TemplateFile}},
		{"no chat_template", map[string]string{ConfigFile: `{"eos_token": "E"}`}, "", "", []string{`no chat template named "default"`, "no chat_template field"}},
		{"list without default", map[string]string{ConfigFile: `{"chat_template": [{"name": "b", "template": "x"}, {"name": "a", "template": "y"}]}`}, "", "", []string{`no chat template named "default"`, `"a", "b"`}},
		{"unknown name", map[string]string{ConfigFile: `{"chat_template": "x"}`}, "", "rag", []string{`no chat template named "rag"`, `"default"`}},
		{"bad JSON", map[string]string{ConfigFile: `{"chat_template": `}, "", "", []string{ConfigFile, "unexpected end of JSON"}},
		{"bad field type", map[string]string{ConfigFile: `{"chat_template": 42}`}, "", "", []string{"field chat_template", "want a string or a list"}},
		{"entry without template", map[string]string{ConfigFile: `{"chat_template": [{"name": "default"}]}`}, "", "", []string{"field chat_template", "entry 0"}},
		{"bad token", map[string]string{ConfigFile: `{"chat_template": "x", "eos_token": 7}`}, "", "", []string{"field eos_token", "want a string or an object"}},
		{"token object without content", map[string]string{ConfigFile: `{"chat_template": "x", "bos_token": {"lstrip": true}}`}, "", "", []string{"field bos_token"}},
		{"template syntax error", map[string]string{ConfigFile: `{"chat_template": "a\n{% if x %}"}`}, "", "", []string{"field chat_template", "line 2: {% if %} is never closed"}},
		{"sidecar syntax error", map[string]string{TemplateFile: "{{ x"}, "", "", []string{TemplateFile, "missing end of variable tag"}},
		{"config path missing but jinja given", map[string]string{ConfigFile: `{bad`}, "x.jinja", "", []string{"no such file"}},
		{"broken config next to jinja", map[string]string{ConfigFile: `{bad`, "x.jinja": "x"}, "x.jinja", "", []string{ConfigFile, "invalid character"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.files != nil {
				dir = writeFiles(t, tc.files)
			}
			tm, err := LoadNamed(filepath.Join(dir, tc.path), tc.tmpl)
			if err == nil {
				t.Fatalf("LoadNamed = %+v, want error", tm)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLoad_ErrNoTemplate tells files without a chat template from a
// template that does not parse: only the first wrap ErrNoTemplate.
func TestLoad_ErrNoTemplate(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		none  bool
	}{
		{"empty folder", map[string]string{}, true},
		{"config without chat_template", map[string]string{ConfigFile: `{"eos_token": "E"}`}, true},
		{"syntax error", map[string]string{ConfigFile: `{"chat_template": "a\n{% if x %}"}`}, false},
		{"sidecar syntax error", map[string]string{TemplateFile: "{{ x"}, false},
	} {
		_, err := Load(writeFiles(t, c.files))
		if err == nil || errors.Is(err, ErrNoTemplate) != c.none {
			t.Errorf("%s: %v; want ErrNoTemplate %v", c.name, err, c.none)
		}
	}
}
