package chattmpl

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// jsonOptions mirrors the keyword arguments of the tojson filter that
// transformers installs: tojson(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False), which forwards them to Python's
// json.dumps. Prompts must match HF byte for byte, so every option that
// changes the output is honoured.
type jsonOptions struct {
	ensureASCII bool
	indent      *string // nil: no newlines; non-nil: the per-level indent string
	itemSep     string
	keySep      string
	sortKeys    bool
}

// parseJSONOptions maps the filter's positional and keyword arguments onto
// jsonOptions using the same parameter order as the HF filter signature.
func parseJSONOptions(pos []jinja.Value, kw map[string]jinja.Value) (jsonOptions, error) {
	names := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	if len(pos) > len(names) {
		return jsonOptions{}, fmt.Errorf("tojson: takes at most %d arguments after the value, got %d", len(names), len(pos))
	}
	args := make(map[string]jinja.Value, len(names))
	for i, v := range pos {
		args[names[i]] = v
	}
	for k, v := range kw {
		known := false
		for _, n := range names {
			known = known || n == k
		}
		if !known {
			return jsonOptions{}, fmt.Errorf("tojson: unexpected keyword argument %q", k)
		}
		if _, dup := args[k]; dup {
			return jsonOptions{}, fmt.Errorf("tojson: got multiple values for argument %q", k)
		}
		args[k] = v
	}

	var o jsonOptions
	if v, ok := args["ensure_ascii"]; ok {
		o.ensureASCII = v.IsTruthy()
	}
	if v, ok := args["sort_keys"]; ok {
		o.sortKeys = v.IsTruthy()
	}
	if v, ok := args["indent"]; ok && !v.IsNone() && !v.IsUndefined() {
		ind, err := indentString(v)
		if err != nil {
			return jsonOptions{}, err
		}
		o.indent = &ind
	}
	// Python's defaults: ", " without indent, "," with indent (to avoid
	// trailing spaces at line ends); ": " for keys either way.
	o.itemSep, o.keySep = ", ", ": "
	if o.indent != nil {
		o.itemSep = ","
	}
	if v, ok := args["separators"]; ok && !v.IsNone() && !v.IsUndefined() {
		if !v.IsList() || v.AsList().Len() != 2 || !v.AsList().Get(0).IsString() || !v.AsList().Get(1).IsString() {
			return jsonOptions{}, fmt.Errorf("tojson: separators must be a pair of strings, got %s", v.String())
		}
		o.itemSep = v.AsList().Get(0).AsString()
		o.keySep = v.AsList().Get(1).AsString()
	}
	return o, nil
}

// indentString converts json.dumps' indent argument: an int n means n
// spaces (n <= 0 still inserts newlines), a string is used verbatim.
func indentString(v jinja.Value) (string, error) {
	switch {
	case v.IsInt():
		n := v.AsInt()
		if n < 0 {
			n = 0
		}
		if n > 64 {
			return "", fmt.Errorf("tojson: indent %d is too large", n)
		}
		return strings.Repeat(" ", int(n)), nil
	case v.IsString():
		return v.AsString(), nil
	case v.IsBool():
		// bool is an int subclass in Python: True means one space.
		if v.AsBool() {
			return " ", nil
		}
		return "", nil
	}
	return "", fmt.Errorf("tojson: indent must be an int or a string, got %s", v.String())
}

// pyJSONFilter is the tojson filter as transformers defines it. The engine's
// built-in tojson differs from Python's json.dumps (floats use Go's %g,
// U+2028/U+2029 are escaped, indent reorders keys and escapes HTML), and
// built-in filters cannot be replaced, so templates are rewritten to call
// this one instead (see rewriteTojson).
func pyJSONFilter(args []jinja.Value, kwargs map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.Undefined(), fmt.Errorf("tojson: missing value")
	}
	o, err := parseJSONOptions(args[1:], kwargs)
	if err != nil {
		return jinja.Undefined(), err
	}
	var b strings.Builder
	if err := encodePyJSON(&b, args[0], o, 0); err != nil {
		return jinja.Undefined(), err
	}
	return jinja.NewString(b.String()), nil
}

// encodePyJSON writes v the way Python's json.dumps would.
func encodePyJSON(b *strings.Builder, v jinja.Value, o jsonOptions, depth int) error {
	if depth > 512 {
		return fmt.Errorf("tojson: value nested too deeply")
	}
	switch {
	case v.IsUndefined():
		return fmt.Errorf("tojson: Object of type Undefined is not JSON serializable")
	case v.IsCallable():
		return fmt.Errorf("tojson: Object of type %s is not JSON serializable", v.String())
	case v.IsNone():
		b.WriteString("null")
	case v.IsBool():
		if v.AsBool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case v.IsInt():
		b.WriteString(strconv.FormatInt(v.AsInt(), 10))
	case v.IsFloat():
		b.WriteString(pyFloatJSON(v.AsFloat()))
	case v.IsString():
		writePyJSONString(b, v.AsString(), o.ensureASCII)
	case v.IsList():
		return encodePyJSONList(b, v.AsList().Items, o, depth)
	case v.IsDict():
		return encodePyJSONDict(b, v.AsDict(), o, depth)
	default:
		return fmt.Errorf("tojson: unsupported value %s", v.String())
	}
	return nil
}

// newline writes the line break and indentation json.dumps puts before an
// element at the given nesting level; nothing when indent is off.
func (o jsonOptions) newline(b *strings.Builder, level int) {
	if o.indent == nil {
		return
	}
	b.WriteByte('\n')
	for range level {
		b.WriteString(*o.indent)
	}
}

func encodePyJSONList(b *strings.Builder, items []jinja.Value, o jsonOptions, depth int) error {
	if len(items) == 0 {
		b.WriteString("[]")
		return nil
	}
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteString(o.itemSep)
		}
		o.newline(b, depth+1)
		if err := encodePyJSON(b, it, o, depth+1); err != nil {
			return err
		}
	}
	o.newline(b, depth)
	b.WriteByte(']')
	return nil
}

func encodePyJSONDict(b *strings.Builder, d *jinja.Dict, o jsonOptions, depth int) error {
	keys := d.OrderedKeys()
	if len(keys) == 0 {
		b.WriteString("{}")
		return nil
	}
	if o.sortKeys {
		sort.Strings(keys) // Python sorts str keys by code point; Go by UTF-8 bytes: same order.
	}
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(o.itemSep)
		}
		o.newline(b, depth+1)
		writePyJSONString(b, k, o.ensureASCII)
		b.WriteString(o.keySep)
		val, _ := d.Get(k)
		if err := encodePyJSON(b, val, o, depth+1); err != nil {
			return err
		}
	}
	o.newline(b, depth)
	b.WriteByte('}')
	return nil
}

// writePyJSONString quotes s like json.dumps: the two-character escapes
// \" \\ \n \r \t \b \f, \u00XX for other C0 controls, everything else raw
// (ensure_ascii=False) or, with ensure_ascii=True, DEL and non-ASCII as
// \uXXXX with surrogate pairs.
// Bytes that are not valid UTF-8 cannot occur in a Python str; they are
// passed through unchanged so that no input is silently altered.
func writePyJSONString(b *strings.Builder, s string, ensureASCII bool) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if c < 0x20 || (c == 0x7f && ensureASCII) {
					b.WriteString(`\u00`)
					b.WriteByte(hex[c>>4])
					b.WriteByte(hex[c&0xf])
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !ensureASCII || (r == utf8.RuneError && size == 1) {
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		writeUEscape(b, r)
		i += size
	}
	b.WriteByte('"')
}

// writeUEscape writes r as \uXXXX, using a UTF-16 surrogate pair above the BMP.
func writeUEscape(b *strings.Builder, r rune) {
	if r > 0xffff {
		r -= 0x10000
		fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		return
	}
	fmt.Fprintf(b, `\u%04x`, r)
}

// pyFloatJSON formats f as Python's float.__repr__ (which json.dumps uses):
// shortest round-trip digits, positional notation with a trailing ".0" when
// the decimal exponent is in [-4, 16), otherwise d.ddde±XX. Non-finite values
// follow json.dumps' default allow_nan=True spelling.
func pyFloatJSON(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloatRepr(f)
}

// pyFloatRepr is Python's repr(float) for finite values.
func pyFloatRepr(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64) // e.g. "-1.2345e+06"
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // position of the decimal point relative to digits

	if decpt > -4 && decpt <= 16 {
		var s string
		switch {
		case decpt <= 0:
			s = "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			s = digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			s = digits[:decpt] + "." + digits[decpt:]
		}
		return sign + s
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	esign := "+"
	if exp < 0 {
		esign, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, m, esign, exp)
}
