package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json "added_tokens". Added tokens are
// never split: they are cut out of the text before normalization and
// pre-tokenization.
type addedToken struct {
	id         int
	content    string
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
	special    bool
}

// addedMatcher finds added tokens in text, leftmost first and longest first
// at a position (the aho-corasick LeftmostLongest rule HF uses).
type addedMatcher struct {
	toks    []addedToken
	byFirst [256][]int // indexes into toks, longest content first
}

func newAddedMatcher(toks []addedToken) *addedMatcher {
	m := &addedMatcher{toks: toks}
	for i, t := range toks {
		if t.content == "" {
			continue
		}
		m.byFirst[t.content[0]] = append(m.byFirst[t.content[0]], i)
	}
	for b := range m.byFirst {
		c := m.byFirst[b]
		sort.SliceStable(c, func(i, j int) bool { return len(toks[c[i]].content) > len(toks[c[j]].content) })
	}
	return m
}

// segment is a stretch of text, or one added token (id >= 0).
type segment struct {
	text  string
	id    int
	start int // byte offset in the string that was split
}

// split cuts s into text segments and added-token segments. Special tokens
// are only matched when parseSpecial is set; a skipped special token still
// consumes its span for matching, as in HF.
func (m *addedMatcher) split(dst []segment, s string, parseSpecial bool) []segment {
	if m == nil || len(m.toks) == 0 {
		return appendText(dst, s, 0, len(s))
	}
	done := 0 // end of the last emitted segment
	for i := 0; i < len(s); {
		k := m.longestAt(s, i)
		if k < 0 {
			i++
			continue
		}
		t := &m.toks[k]
		start, stop := i, i+len(t.content)
		i = stop
		if (t.special && !parseSpecial) || (t.singleWord && !isSingleWord(s, start, stop)) {
			continue
		}
		if t.lstrip {
			start = max(trailingSpaceStart(s[:start]), done)
		}
		if t.rstrip {
			stop += leadingSpaceLen(s[stop:])
			i = stop
		}
		dst = appendText(dst, s, done, start)
		dst = append(dst, segment{text: s[start:stop], id: t.id, start: start})
		done = stop
	}
	return appendText(dst, s, done, len(s))
}

func appendText(dst []segment, s string, from, to int) []segment {
	if to > from {
		dst = append(dst, segment{text: s[from:to], id: -1, start: from})
	}
	return dst
}

// longestAt returns the index of the longest token starting at s[i], or -1.
func (m *addedMatcher) longestAt(s string, i int) int {
	for _, k := range m.byFirst[s[i]] {
		if strings.HasPrefix(s[i:], m.toks[k].content) {
			return k
		}
	}
	return -1
}

// isSingleWord reports whether s[start:stop] is not glued to word
// characters on either side.
func isSingleWord(s string, start, stop int) bool {
	if start > 0 {
		r, _ := utf8.DecodeLastRuneInString(s[:start])
		if isWordChar(r) {
			return false
		}
	}
	if stop < len(s) {
		r, _ := utf8.DecodeRuneInString(s[stop:])
		if isWordChar(r) {
			return false
		}
	}
	return true
}

// isWordChar approximates Rust regex's Unicode \w, which HF uses here:
// letters, marks, decimal and letter numbers, connector punctuation and the
// zero-width joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.In(r, unicode.Nd, unicode.Nl, unicode.Pc) ||
		r == 0x200C || r == 0x200D
}

// trailingSpaceStart returns where the whitespace at the end of s begins.
func trailingSpaceStart(s string) int {
	return len(strings.TrimRightFunc(s, unicode.IsSpace))
}

// leadingSpaceLen returns the byte length of the whitespace s starts with.
func leadingSpaceLen(s string) int {
	return len(s) - len(strings.TrimLeftFunc(s, unicode.IsSpace))
}
