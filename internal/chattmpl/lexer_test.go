package chattmpl

import (
	"strings"
	"testing"
)

func TestRewriteTag(t *testing.T) {
	tests := []struct{ in, want string }{
		{"x | tojson", "x | " + tojsonName},
		{"x|tojson(indent=2)", "x|" + tojsonName + "(indent=2)"},
		{"x |\n tojson", "x |\n " + tojsonName},
		{"x | tojsonish", "x | tojsonish"},
		{"'a | tojson' ~ x", `"a | tojson" ~ x`},
		{`"q\" | tojson" ~ (y|tojson)`, `"q\" | tojson" ~ (y|` + tojsonName + ")"},
		{`'it\'s \x41\u00e9\r\n\q \101' ~ "\N{DASH}"`, `"it's Aé` + "\r" + `\n\\q A" ~ "\\N{DASH}"`},
		{"'raw\nnewline'", "\"raw\nnewline\""},
		{"'unterminated", "'unterminated"},
		{"tojson(x)", "tojson(x)"},
	}
	for _, tc := range tests {
		if got := rewriteTag(tc.in); got != tc.want {
			t.Errorf("rewriteTag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLexTemplate(t *testing.T) {
	toks, err := lexTemplate("a\n  {%- if x -%}\n b {{- y }} {# c #}\n{% raw %}{{ z }}{% endraw %}")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, []string{"T", "V", "B", "C"}[tk.kind]+":"+tk.body+":"+string(rune('0'+tk.line)))
	}
	want := "T:a:1|B: if x :2|T:b:3|V: y :3|T: :3|C: c :3|T:{{ z }}:4" // the space before the comment is mid-line, so it stays
	if strings.Join(got, "|") != want {
		t.Fatalf("tokens %s\nwant   %s", strings.Join(got, "|"), want)
	}
}

func TestEngineSource(t *testing.T) {
	toks, err := lexTemplate("x\"\\y\n{# two\nlines #}\n\n{%- if a | tojson %}{{ b }}{% endif %}")
	if err != nil {
		t.Fatal(err)
	}
	got := engineSource(toks, true)
	want := `{{ "x\"\\y` + "\n" + `" }}{#` + "\n\n\n" + `#}{%  if a | ` + tojsonName + `  %}{{ ( b ) | ` + strName + ` }}{%  endif  %}`
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// FuzzLexTemplate checks that lexing arbitrary input never panics and that
// lexing is deterministic; Parse must turn anything into a template or an
// error. The engine itself is not fuzzed here (a recursive macro, for one,
// can exhaust its stack).
func FuzzLexTemplate(f *testing.F) {
	for _, s := range []string{
		"", "{", "{{", "{%", "{#", "{{-}}", "{%-%}", "{%+ raw +%}x{%- endraw -%}", "a {{ 'x }}' }} b",
		"{% raw %}{% endraw", "{#- c", "{{ x -}}\n  {% if y +%}\n{% endif %}", "\u00a0{%- if 1 %}\u2028{% endif %}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		norm := normalizeSource(src)
		a, errA := lexTemplate(norm)
		b, errB := lexTemplate(norm)
		if (errA == nil) != (errB == nil) || len(a) != len(b) {
			t.Fatalf("lexing is not deterministic for %q", src)
		}
		if errA == nil {
			_ = engineSource(a, true)
			_ = checkBlocks(a)
		}
		if _, err := Parse(src, Specials{}); err != nil && !strings.HasPrefix(err.Error(), "chattmpl: parse: ") {
			t.Fatalf("unwrapped error %v", err)
		}
	})
}

func TestEngineNumber(t *testing.T) {
	tests := []struct {
		in, want string
		n        int
	}{
		{"12 ", "12", 2}, {"1_000]", "1000", 5}, {"1e3", "1.0e3", 3}, {"2.5E-3)", "2.5e-3", 6},
		{"0x1F", "31", 4}, {"0o17", "15", 4}, {"0b1_01", "5", 6}, {"3.x", "3", 1}, {"1e", "1", 1},
		{"0.5", "0.5", 3}, {"7.0e+2", "7.0e+2", 6},
	}
	for _, tc := range tests {
		if got, n := engineNumber(tc.in); got != tc.want || n != tc.n {
			t.Errorf("engineNumber(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.n)
		}
	}
}
