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
// lexer that the engine lacks: every newline sequence (\r\n, \r) becomes
// "\n", and one trailing newline is dropped (keep_trailing_newline=False,
// the default transformers keeps).
func normalizeSource(src string) string {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	return strings.TrimSuffix(src, "\n")
}

// rewriteTojson renames every "| tojson" filter application inside {{ }}
// and {% %} tags to tojsonName. Text outside tags, comments, string literals
// and {% raw %} blocks are left untouched. The scan mirrors the engine's own
// tag scanner (quotes are honoured inside tags, with backslash escapes) so
// both agree on where tags end.
func rewriteTojson(src string) string {
	var b strings.Builder
	b.Grow(len(src) + 64)
	inRaw := false
	i := 0
	for i < len(src) {
		open := strings.Index(src[i:], "{")
		if open < 0 || i+open+1 >= len(src) {
			b.WriteString(src[i:])
			break
		}
		open += i
		kind := src[open+1]
		if kind != '{' && kind != '%' && kind != '#' {
			b.WriteString(src[i : open+1])
			i = open + 1
			continue
		}
		b.WriteString(src[i:open])
		end := tagEnd(src, open, kind)
		tag := src[open:end]
		switch {
		case kind == '#':
			b.WriteString(tag)
		case kind == '%' && isRawTag(tag, "endraw"):
			inRaw = false
			b.WriteString(tag)
		case inRaw:
			b.WriteString(tag)
		case kind == '%' && isRawTag(tag, "raw"):
			inRaw = true
			b.WriteString(tag)
		default:
			b.WriteString(renameTojson(tag))
		}
		i = end
	}
	return b.String()
}

// tagEnd returns the index just past the closer of the tag opened at open,
// or len(src) for an unclosed tag (the engine then reports the error).
func tagEnd(src string, open int, kind byte) int {
	closer := map[byte]string{'{': "}}", '%': "%}", '#': "#}"}[kind]
	for j := open + 2; j < len(src); j++ {
		c := src[j]
		if kind != '#' && (c == '\'' || c == '"') {
			j = skipQuoted(src, j)
			continue
		}
		if strings.HasPrefix(src[j:], closer) {
			return j + 2
		}
	}
	return len(src)
}

// skipQuoted returns the index of the closing quote of the literal that
// starts at j (or the last index if it never closes).
func skipQuoted(s string, j int) int {
	q := s[j]
	for k := j + 1; k < len(s); k++ {
		switch s[k] {
		case '\\':
			k++
		case q:
			return k
		}
	}
	return len(s) - 1
}

// isRawTag reports whether a {% %} tag's first word is kw.
func isRawTag(tag, kw string) bool {
	body := strings.TrimSuffix(strings.TrimPrefix(tag, "{%"), "%}")
	body = strings.Trim(body, "-+ \t\n")
	word, _, _ := strings.Cut(body, " ")
	return word == kw
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
