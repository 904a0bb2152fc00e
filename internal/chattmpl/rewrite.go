package chattmpl

import (
	"strings"
)

// tojsonName is the variable the rewritten templates call as their tojson
// filter. The engine resolves filters among its built-ins first and only
// then among the render variables, so HF's tojson can only take effect under
// a name the engine does not already define.
const tojsonName = "__chattmpl_tojson"

// normalizeSource applies the two source-level rules of Python Jinja2's
// lexer: every newline sequence (\r\n, \r) becomes "\n", and one trailing
// newline is dropped (keep_trailing_newline=False, the default transformers
// keeps).
func normalizeSource(src string) string {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	return strings.TrimSuffix(src, "\n")
}

// engineSource writes lexed tokens back as a template for the engine in
// which every piece of literal text is a string-literal output tag, so the
// engine's own whitespace trimming (which acts on raw text next to block
// tags) has nothing left to change. Tags lose their "-"/"+" signs (already
// applied), comments become line padding, and tojson is renamed. Newlines
// are kept where they were, so the engine's line numbers in error messages
// still point at the original source.
func engineSource(toks []token) string {
	var b strings.Builder
	line := 1
	for _, t := range toks {
		if t.line > line {
			b.WriteString("{#" + strings.Repeat("\n", t.line-line) + "#}")
			line = t.line
		}
		var out string
		switch t.kind {
		case tokText:
			out = `{{ "` + quoteLiteral(t.body) + `" }}`
		case tokVar:
			out = "{{ " + renameTojson(t.body) + " }}"
		case tokBlock:
			out = "{% " + renameTojson(t.body) + " %}"
		case tokComment:
			continue
		}
		b.WriteString(out)
		line += strings.Count(out, "\n")
	}
	return b.String()
}

// quoteLiteral escapes text for a double-quoted engine string literal. Only
// backslash and quote need escaping; newlines may stay raw.
func quoteLiteral(s string) string {
	if !strings.ContainsAny(s, `\"`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// renameTojson rewrites "|tojson" (any spacing) outside string literals.
func renameTojson(tag string) string {
	var b strings.Builder
	for j := 0; j < len(tag); j++ {
		c := tag[j]
		if c == '\'' || c == '"' {
			k := skipQuoted(tag, j)
			b.WriteString(tag[j : k+1])
			j = k
			continue
		}
		b.WriteByte(c)
		if c != '|' {
			continue
		}
		k := j + 1
		for k < len(tag) && strings.IndexByte(" \t\n", tag[k]) >= 0 {
			k++
		}
		if strings.HasPrefix(tag[k:], "tojson") && (k+6 == len(tag) || !isIdentByte(tag[k+6])) {
			b.WriteString(tag[j+1 : k])
			b.WriteString(tojsonName)
			j = k + 5
		}
	}
	return b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
