package chattmpl

import (
	"fmt"
	"strings"
	"unicode"
)

// tokKind classifies a piece of template source.
type tokKind int

const (
	tokText    tokKind = iota // literal output, whitespace rules already applied
	tokVar                    // {{ ... }}
	tokBlock                  // {% ... %}
	tokComment                // {# ... #}
	tokHook                   // a call instrument inserts: {{ body }}, printing nothing
)

// token is one lexed piece. For tags, body is the text between the
// delimiters without the whitespace-control signs; line is where it starts.
type token struct {
	kind tokKind
	body string
	line int
}

// lexTemplate splits normalized source into text and tags and applies Jinja2's
// whitespace control the way transformers configures it (trim_blocks=True,
// lstrip_blocks=True), following the rules of Jinja2's lexer:
//
//   - "-" after an opening delimiter strips all whitespace before the tag;
//     "-" before a closing one strips all whitespace after it;
//   - lstrip_blocks: before a block or comment tag without "-" or "+", the
//     run of whitespace between the start of the line and the tag goes;
//   - trim_blocks: one "\n" after a block or comment tag without "-" or "+"
//     goes ({% raw %} is the exception: only its end tag trims);
//   - "{% raw %}...{% endraw %}" becomes plain text.
//
// "Whitespace" is Python's (str.isspace), not just ASCII. The engine also
// applies trim/lstrip rules, but it skips over {{ }} tags when looking for
// the text to trim, so a "\n" after "{{ x }}" following a block tag is lost;
// lexing here and giving the engine no raw text avoids that.
func lexTemplate(src string) ([]token, error) {
	lx := lexer{src: src, line: 1, lineStarting: true}
	for lx.pos < len(src) {
		if err := lx.step(); err != nil {
			return nil, err
		}
	}
	return lx.toks, nil
}

type lexer struct {
	src          string
	pos, line    int
	lineStarting bool // the previous match ended with "\n" (or nothing was matched yet)
	toks         []token
}

// step consumes the text up to the next tag and that tag.
func (lx *lexer) step() error {
	open, kind := nextOpener(lx.src, lx.pos)
	if open < 0 {
		lx.emitText(lx.src[lx.pos:])
		lx.pos = len(lx.src)
		return nil
	}
	text := lx.src[lx.pos:open]
	sign := byte(0)
	if p := open + 2; p < len(lx.src) && (lx.src[p] == '-' || lx.src[p] == '+') {
		sign = lx.src[p]
	}
	rawEnd, isRaw := matchRawBegin(lx.src, open)
	lx.emitText(lx.stripBefore(text, sign, kind != '{'))
	lx.line += strings.Count(text, "\n")
	lx.pos = open
	if isRaw {
		return lx.raw(rawEnd)
	}
	return lx.tag(kind, sign)
}

// stripBefore applies the left-side rules to the text before a tag.
func (lx *lexer) stripBefore(text string, sign byte, lstripable bool) string {
	if sign == '-' {
		return strings.TrimRightFunc(text, pyIsSpace)
	}
	if sign == '+' || !lstripable {
		return text
	}
	lPos := strings.LastIndexByte(text, '\n') + 1
	if (lPos > 0 || lx.lineStarting) && lPos < len(text) && strings.TrimLeftFunc(text[lPos:], pyIsSpace) == "" {
		return text[:lPos]
	}
	return text
}

// tag consumes one {{ }}, {% %} or {# #} tag starting at lx.pos.
func (lx *lexer) tag(kind, sign byte) error {
	start, line := lx.pos, lx.line
	bodyStart := start + 2
	if sign != 0 {
		bodyStart++
	}
	closer := map[byte]string{'{': "}}", '%': "%}", '#': "#}"}[kind]
	end := tagEnd(lx.src, start, kind)
	if end > len(lx.src) || !strings.HasSuffix(lx.src[:end], closer) || end-2 < bodyStart {
		what := map[byte]string{'{': "variable", '%': "block", '#': "comment"}[kind]
		return fmt.Errorf("line %d: missing end of %s tag (%s)", line, what, closer)
	}
	bodyEnd := end - 2
	right := byte(0)
	if c := lx.src[bodyEnd-1]; bodyEnd > bodyStart && (c == '-' || (c == '+' && kind != '{')) {
		right = c
		bodyEnd--
	}
	k := map[byte]tokKind{'{': tokVar, '%': tokBlock, '#': tokComment}[kind]
	lx.toks = append(lx.toks, token{kind: k, body: lx.src[bodyStart:bodyEnd], line: line})
	lx.line += strings.Count(lx.src[start:end], "\n")
	lx.pos = end
	lx.afterTag(right, kind != '{')
	return nil
}

// afterTag applies the right-side rules at lx.pos and records whether the
// consumed match ended a line (Jinja2's line_starting).
func (lx *lexer) afterTag(right byte, trims bool) {
	from := lx.pos
	switch {
	case right == '-':
		rest := strings.TrimLeftFunc(lx.src[lx.pos:], pyIsSpace)
		lx.pos = len(lx.src) - len(rest)
	case right != '+' && trims && strings.HasPrefix(lx.src[lx.pos:], "\n"):
		lx.pos++
	}
	skipped := lx.src[from:lx.pos]
	lx.line += strings.Count(skipped, "\n")
	lx.lineStarting = strings.HasSuffix(skipped, "\n")
}

// raw consumes {% raw %}...{% endraw %}; the body is text, with the same
// left-side rules before the end tag as before any block tag.
func (lx *lexer) raw(beginEnd int) error {
	line := lx.line
	right := byte(0)
	if lx.src[beginEnd-3] == '-' {
		right = '-'
	}
	lx.line += strings.Count(lx.src[lx.pos:beginEnd], "\n")
	lx.pos = beginEnd
	lx.afterTag(right, false) // the raw begin tag is exempt from trim_blocks
	for p := lx.pos; ; p++ {
		open, kind := nextOpener(lx.src, p)
		if open < 0 {
			return fmt.Errorf("line %d: missing end of raw directive ({%% endraw %%})", line)
		}
		end, ok := matchRawKeyword(lx.src, open, "endraw")
		if kind != '%' || !ok {
			p = open
			continue
		}
		text := lx.src[lx.pos:open]
		sign := byte(0)
		if c := lx.src[open+2]; c == '-' || c == '+' {
			sign = c
		}
		lx.emitText(lx.stripBefore(text, sign, true))
		lx.line += strings.Count(lx.src[lx.pos:end], "\n")
		lx.pos = end
		right := lx.src[end-3]
		if right != '-' && right != '+' {
			right = 0
		}
		lx.afterTag(right, true)
		return nil
	}
}

func (lx *lexer) emitText(s string) {
	if s != "" {
		lx.toks = append(lx.toks, token{kind: tokText, body: s, line: lx.line})
	}
}

// nextOpener finds the next "{{", "{%" or "{#" at or after from.
func nextOpener(src string, from int) (int, byte) {
	for i := from; i+1 < len(src); i++ {
		if src[i] == '{' && (src[i+1] == '{' || src[i+1] == '%' || src[i+1] == '#') {
			return i, src[i+1]
		}
	}
	return -1, 0
}

// matchRawBegin reports whether a {% raw %} tag starts at open, returning
// the index just past it.
func matchRawBegin(src string, open int) (int, bool) {
	if open+1 >= len(src) || src[open+1] != '%' {
		return 0, false
	}
	return matchRawKeyword(src, open, "raw")
}

// matchRawKeyword matches "{%" [-+] ws* kw ws* ("-%}" | "+%}" | "%}") at open.
// ("+%}" is accepted only for endraw, as in Jinja2.)
func matchRawKeyword(src string, open int, kw string) (int, bool) {
	p := open + 2
	if p < len(src) && (src[p] == '-' || src[p] == '+') {
		p++
	}
	p = len(src) - len(strings.TrimLeftFunc(src[p:], pyIsSpace))
	if !strings.HasPrefix(src[p:], kw) {
		return 0, false
	}
	p += len(kw)
	p = len(src) - len(strings.TrimLeftFunc(src[p:], pyIsSpace))
	for _, closer := range []string{"-%}", "+%}", "%}"} {
		if closer == "+%}" && kw == "raw" {
			continue
		}
		if strings.HasPrefix(src[p:], closer) {
			return p + len(closer), true
		}
	}
	return 0, false
}

// tagEnd returns the index just past the closer of the tag opened at open,
// or len(src)+1 when it is unclosed. Quoted strings (with backslash escapes)
// are skipped inside {{ }} and {% %}, as both Jinja2 and the engine do.
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
	return len(src) + 1
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

// pyIsSpace is Python's str.isspace, which Jinja2's rstrip() and \s use:
// Go's unicode.IsSpace plus the information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
