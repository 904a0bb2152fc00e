package chattmpl

import (
	"strconv"
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
// applied), comments become line padding, tojson is renamed, string literals
// are re-spelled (engineLiteral) and every {{ expression }} is printed through
// Python's str() (pyStrFilter) when printStr is set. Newlines
// are kept where they were, so the engine's line numbers in error messages
// still point at the original source.
func engineSource(toks []token, printStr bool) string {
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
			out = "{{ " + rewriteTag(t.body) + " }}"
			if printStr && strings.TrimSpace(t.body) != "" {
				out = "{{ (" + rewriteTag(t.body) + ") | " + strName + " }}"
			}
		case tokBlock:
			out = "{% " + rewriteTag(t.body) + " %}"
		case tokHook:
			out = "{{ " + t.body + " }}"
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

// rewriteTag rewrites a tag body for the engine: string literals go through
// engineLiteral, number literals through engineNumber, and "|tojson" (any
// spacing) becomes "|"+tojsonName.
func rewriteTag(tag string) string {
	var b strings.Builder
	for j := 0; j < len(tag); j++ {
		c := tag[j]
		if c == '\'' || c == '"' {
			k := skipQuoted(tag, j)
			if k == len(tag)-1 && (k == j || tag[k] != c) { // unterminated: leave it to the engine
				b.WriteString(tag[j:])
				break
			}
			b.WriteString(engineLiteral(tag[j+1 : k]))
			j = k
			continue
		}
		if c >= '0' && c <= '9' && (j == 0 || (!isIdentByte(tag[j-1]) && tag[j-1] != '.')) {
			lit, n := engineNumber(tag[j:])
			b.WriteString(lit)
			j += n - 1
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

// engineNumber reads the Jinja2 number literal at the start of s (which
// begins with a digit) and returns it spelled for the engine, which accepts
// only plain digits and d.d[e±d]: "_" separators are dropped, 0x/0o/0b
// integers become decimal, and "1e5" becomes "1.0e5". n is the length read.
func engineNumber(s string) (lit string, n int) {
	if len(s) > 2 && s[0] == '0' && strings.IndexByte("xXoObB", s[1]) >= 0 {
		base := map[byte]int{'x': 16, 'o': 8, 'b': 2}[s[1]|0x20]
		n = 2
		for n < len(s) && (s[n] == '_' || isIdentByte(s[n]) && s[n] != '_') {
			n++
		}
		if v, err := strconv.ParseInt(strings.ReplaceAll(s[2:n], "_", ""), base, 64); err == nil {
			return strconv.FormatInt(v, 10), n
		}
		return s[:n], n // malformed: let the engine report it
	}
	digits := func(i int) int {
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
			i++
		}
		return i
	}
	n = digits(0)
	mant := s[:n]
	if n+1 < len(s) && s[n] == '.' && s[n+1] >= '0' && s[n+1] <= '9' {
		n = digits(n + 1)
		mant = s[:n]
	}
	exp := ""
	if e := n; e < len(s) && (s[e] == 'e' || s[e] == 'E') {
		e++
		if e < len(s) && (s[e] == '+' || s[e] == '-') {
			e++
		}
		if e < len(s) && s[e] >= '0' && s[e] <= '9' {
			end := digits(e)
			exp, n = "e"+s[n+1:end], end
			if !strings.Contains(mant, ".") {
				mant += ".0"
			}
		}
	}
	return strings.ReplaceAll(mant+exp, "_", ""), n
}

func isIdentByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
