package chattmpl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// strName is the filter every {{ expression }} is passed through, so that
// printing follows Python's str() as in Jinja2: the engine prints None as ""
// (Jinja2: "None"), floats with %g ("1" for 1.0) and strings inside lists
// without Python's quoting rules.
const strName = "__chattmpl_str"

func pyStrFilter(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.NewString(""), nil
	}
	if args[0].IsString() {
		return args[0], nil
	}
	return jinja.NewString(pyStr(args[0])), nil
}

// pyStr is Python's str() of a template value (Undefined prints as "").
func pyStr(v jinja.Value) string {
	switch {
	case v.IsUndefined():
		return ""
	case v.IsString():
		return v.AsString()
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(). Lists stand in for tuples too (the engine has
// no tuples), so dict.items() prints [['k', v]] where Python prints [('k', v)].
func pyRepr(v jinja.Value) string {
	switch {
	case v.IsUndefined():
		return ""
	case v.IsNone():
		return "None"
	case v.IsBool():
		return map[bool]string{true: "True", false: "False"}[v.AsBool()]
	case v.IsInt():
		return strconv.FormatInt(v.AsInt(), 10)
	case v.IsFloat():
		return pyFloatStr(v.AsFloat())
	case v.IsString():
		return pyReprString(v.AsString())
	case v.IsList():
		parts := make([]string, 0, v.AsList().Len())
		for _, it := range v.AsList().Items {
			parts = append(parts, pyRepr(it))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case v.IsDict():
		d := v.AsDict()
		parts := make([]string, 0, d.Len())
		for _, k := range d.OrderedKeys() {
			val, _ := d.Get(k)
			parts = append(parts, pyReprString(k)+": "+pyRepr(val))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return v.String()
}

// pyFloatStr is repr(float) with Python's spelling of the non-finite values.
func pyFloatStr(f float64) string {
	switch s := pyFloatJSON(f); s {
	case "NaN":
		return "nan"
	case "Infinity":
		return "inf"
	case "-Infinity":
		return "-inf"
	default:
		return s
	}
}

// pyReprString quotes s as Python's repr(str): single quotes unless s holds
// a single quote and no double quote; \\ \t \n \r and the quote escaped;
// other non-printable characters as \xNN, \uNNNN or \UNNNNNNNN.
func pyReprString(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, `\x%02x`, s[i]) // not valid UTF-8; cannot occur in a Python str
			i++
			continue
		}
		i += size
		switch {
		case r == '\\' || r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsPrint(r): // Python's isprintable: not C*, not Z* other than ' '
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// engineLiteral re-spells the body of a Jinja2 string literal for the
// engine. Jinja2 decodes literals with Python's "unicode-escape" codec (\n \t
// \r \\ \' \" \a \b \f \v, \<newline>, octal \ooo, \xhh, \uhhhh,
// \Uhhhhhhhh; unknown or malformed escapes, \N{...} included, stay verbatim);
// the engine knows only \n \t \\ \' and \". The result is a double-quoted
// literal using only \\, \" and \n escapes, with the source's raw newlines
// kept raw so line numbers do not move.
func engineLiteral(body string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' && i+1 < len(body) {
			var dec strings.Builder
			if n := decodeEscape(&dec, body[i+1:]); n > 0 {
				writeEngineEscaped(&b, dec.String())
				i += n
				continue
			}
		}
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeEngineEscaped writes decoded text inside an engine literal.
func writeEngineEscaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(s[i])
		}
	}
}

// decodeEscape writes the character for the escape whose body (after the
// backslash) starts rest, returning how many bytes of rest it used, or 0
// when the escape is unknown.
func decodeEscape(b *strings.Builder, rest string) int {
	simple := map[byte]string{'\n': "", '\\': `\`, '\'': "'", '"': `"`, 'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
	if out, ok := simple[rest[0]]; ok {
		b.WriteString(out)
		return 1
	}
	if rest[0] >= '0' && rest[0] <= '7' {
		n := 1
		for n < 3 && n < len(rest) && rest[n] >= '0' && rest[n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(rest[:n], 8, 32)
		b.WriteRune(rune(v))
		return n
	}
	width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[rest[0]]
	if width == 0 || len(rest) < 1+width {
		return 0
	}
	v, err := strconv.ParseUint(rest[1:1+width], 16, 32)
	if err != nil || v > unicode.MaxRune {
		return 0
	}
	b.WriteRune(rune(v)) // a lone surrogate becomes U+FFFD: Go strings are UTF-8
	return 1 + width
}
