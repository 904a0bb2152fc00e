package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer patterns of GPT-2, Qwen2/Qwen3 and Llama 3, exactly as
// they appear in tokenizer.json. Their `\s+(?!\S)` needs a lookahead, which
// Go's RE2 lacks, so they are matched by the scanners below, which follow
// the backtracking (Oniguruma/Perl) semantics HF tokenizers uses: the first
// alternative that matches at a position wins, and quantifiers are greedy.
const (
	patternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// matcher finds the successive non-overlapping matches of a split pattern.
type matcher interface {
	// findAll appends the [start, end) byte spans of the matches in s.
	findAll(dst [][2]int, s string) [][2]int
}

// compilePattern returns a matcher for a Split pattern. Known lookahead
// patterns get their scanner; anything else must compile as Go regexp (with
// \s widened to Unicode White_Space, as in Oniguruma), or it is an error
// naming the pattern.
func compilePattern(p string) (matcher, error) {
	switch p {
	case patternGPT2:
		return scanMatcher(scanGPT2), nil
	case patternQwen2:
		return scanMatcher(func(s string, i int) int { return scanQwen(s, i, 1) }), nil
	case patternLlama3:
		return scanMatcher(func(s string, i int) int { return scanQwen(s, i, 3) }), nil
	}
	re, err := regexp.Compile(widenSpaceClass(p))
	if err != nil {
		return nil, fmt.Errorf("unsupported split regex %q (not a known pattern, and Go regexp says: %v)", p, err)
	}
	return regexpMatcher{re}, nil
}

// scanMatcher adapts a scanner that matches at every position.
type scanMatcher func(s string, i int) int

func (f scanMatcher) findAll(dst [][2]int, s string) [][2]int {
	for i := 0; i < len(s); {
		end := f(s, i)
		dst = append(dst, [2]int{i, end})
		i = end
	}
	return dst
}

type regexpMatcher struct{ re *regexp.Regexp }

func (m regexpMatcher) findAll(dst [][2]int, s string) [][2]int {
	for _, loc := range m.re.FindAllStringIndex(s, -1) {
		dst = append(dst, [2]int{loc[0], loc[1]})
	}
	return dst
}

// literalMatcher matches a plain string (the "String" pattern form).
type literalMatcher string

func (m literalMatcher) findAll(dst [][2]int, s string) [][2]int {
	if m == "" {
		return dst
	}
	for off := 0; ; {
		k := strings.Index(s[off:], string(m))
		if k < 0 {
			return dst
		}
		dst = append(dst, [2]int{off + k, off + k + len(m)})
		off += k + len(m)
	}
}

// whiteSpaceRanges is the Unicode White_Space property, the meaning of \s in
// Oniguruma and Rust regex (RE2's \s is ASCII only).
const whiteSpaceRanges = `\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

// widenSpaceClass rewrites \s and \S so RE2 treats them as Unicode
// White_Space. A \S inside a bracket class is left alone (RE2 cannot negate
// a range list there).
func widenSpaceClass(p string) string {
	var sb strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			next := p[i+1]
			i++
			switch {
			case next == 's' && inClass:
				sb.WriteString(whiteSpaceRanges)
			case next == 's':
				sb.WriteString("[" + whiteSpaceRanges + "]")
			case next == 'S' && !inClass:
				sb.WriteString("[^" + whiteSpaceRanges + "]")
			default:
				sb.WriteByte(c)
				sb.WriteByte(next)
			}
		case c == '[' && !inClass:
			inClass = true
			sb.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if strings.HasPrefix(p[i+1:], "^]") {
				sb.WriteString("^]")
				i += 2
			} else if strings.HasPrefix(p[i+1:], "]") {
				sb.WriteByte(']')
				i++
			}
		case c == ']' && inClass:
			inClass = false
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// Character classes the patterns distinguish. \s is space or newline;
// [\r\n] is newline only.
const (
	clsOther uint8 = iota
	clsLetter
	clsNumber
	clsSpace
	clsNewline
)

var asciiClass [utf8.RuneSelf]uint8

func init() {
	for c := 0; c < utf8.RuneSelf; c++ {
		asciiClass[c] = classOfRune(rune(c))
	}
}

func classOfRune(r rune) uint8 {
	switch {
	case r == '\r' || r == '\n':
		return clsNewline
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.Is(unicode.White_Space, r):
		return clsSpace
	}
	return clsOther
}

// classAt returns the class and byte size of the rune at s[i]. An invalid
// byte counts as one "other" rune, so arbitrary bytes still tokenize.
func classAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return clsOther, 1
	}
	return classOfRune(r), n
}

func isSpaceClass(c uint8) bool { return c == clsSpace || c == clsNewline }

// runOf returns the end of the run of runes of class cls starting at i.
func runOf(s string, i int, cls uint8) int {
	for i < len(s) {
		c, n := classAt(s, i)
		if c != cls {
			break
		}
		i += n
	}
	return i
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d after the apostrophe at
// s[i-1] and returns its byte length, or 0. With fold it is
// case-insensitive, including U+017F (long s), which folds to 's'.
func contraction(s string, i int, fold bool) int {
	if i >= len(s) {
		return 0
	}
	at := func(k int) byte {
		if k >= len(s) {
			return 0
		}
		if fold && s[k] >= 'A' && s[k] <= 'Z' {
			return s[k] + 'a' - 'A'
		}
		return s[k]
	}
	if fold && strings.HasPrefix(s[i:], "\u017f") {
		return len("\u017f")
	}
	switch at(i) {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if at(i+1) == 'e' {
			return 2
		}
	case 'l':
		if at(i+1) == 'l' {
			return 2
		}
	}
	return 0
}

// scanGPT2 matches patternGPT2 at s[i] and returns the match end.
func scanGPT2(s string, i int) int {
	if s[i] == '\'' {
		if n := contraction(s, i+1, false); n > 0 {
			return i + 1 + n
		}
	}
	if s[i] == ' ' && i+1 < len(s) {
		// " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the space taken.
		if c, _ := classAt(s, i+1); !isSpaceClass(c) {
			return runOf(s, i+1, c)
		}
		return scanSpaces(s, i)
	}
	if c, _ := classAt(s, i); !isSpaceClass(c) {
		return runOf(s, i, c)
	}
	return scanSpaces(s, i)
}

// scanSpaces matches `\s+(?!\S)|\s+` at s[i], which holds whitespace: the
// whole run if it ends the text, else the run minus its last rune (which
// then prefixes the next word), else a single rune.
func scanSpaces(s string, i int) int {
	end, last := i, i
	for end < len(s) {
		c, n := classAt(s, end)
		if !isSpaceClass(c) {
			break
		}
		last = end
		end += n
	}
	if end == len(s) || last == i {
		return end
	}
	return last
}

// scanQwen matches patternQwen2 (maxDigits 1) or patternLlama3 (maxDigits 3)
// at s[i] and returns the match end.
func scanQwen(s string, i int, maxDigits int) int {
	if s[i] == '\'' {
		if n := contraction(s, i+1, true); n > 0 {
			return i + 1 + n
		}
	}
	cls, n := classAt(s, i)
	switch cls {
	case clsLetter: // [^\r\n\p{L}\p{N}]?\p{L}+ without the prefix
		return runOf(s, i, clsLetter)
	case clsNumber: // \p{N}{1,maxDigits}
		end := i + n
		for k := 1; k < maxDigits && end < len(s); k++ {
			c, m := classAt(s, end)
			if c != clsNumber {
				break
			}
			end += m
		}
		return end
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+ with one prefix rune.
	if cls != clsNewline && i+n < len(s) {
		if c, _ := classAt(s, i+n); c == clsLetter {
			return runOf(s, i+n, clsLetter)
		}
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		j = i + 1
	}
	if c, _ := classAt(s, j); c == clsOther {
		end := runOf(s, j, clsOther)
		for end < len(s) && (s[end] == '\r' || s[end] == '\n') {
			end++
		}
		return end
	}
	return scanSpacesNewline(s, i)
}

// scanSpacesNewline matches `\s*[\r\n]+|\s+(?!\S)|\s+` at s[i], which holds
// whitespace: up to and including the last newline of the run when it has
// one, otherwise as scanSpaces.
func scanSpacesNewline(s string, i int) int {
	end, last, afterNL := i, i, -1
	for end < len(s) {
		c, n := classAt(s, end)
		if !isSpaceClass(c) {
			break
		}
		if c == clsNewline {
			afterNL = end + n
		}
		last = end
		end += n
	}
	switch {
	case afterNL > 0:
		return afterNL
	case end == len(s) || last == i:
		return end
	}
	return last
}
