package tokenizer

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// altMatcher is a slow reference for the known patterns: the alternatives
// are tried in order, each as its own anchored Go regexp (RE2 gives the
// same match as a backtracking engine for a single alternative without
// lookaround), and `\s+(?!\S)` is done by hand: greedy \s+, then give back
// one rune unless the run ends the text.
type altMatcher struct{ alts []*regexp.Regexp }

const lookaheadAlt = `\s+(?!\S)`

func newAltMatcher(t *testing.T, alts []string) altMatcher {
	var m altMatcher
	for _, a := range alts {
		if a == lookaheadAlt {
			m.alts = append(m.alts, nil)
			continue
		}
		m.alts = append(m.alts, regexp.MustCompile(`^(?:`+widenSpaceClass(a)+`)`))
	}
	return m
}

var spaceRun = regexp.MustCompile(`^[` + whiteSpaceRanges + `]+`)

func (m altMatcher) matchAt(s string, i int) int {
	for _, re := range m.alts {
		if re == nil {
			loc := spaceRun.FindStringIndex(s[i:])
			if loc == nil {
				continue
			}
			end := i + loc[1]
			if end == len(s) {
				return end
			}
			_, n := utf8.DecodeLastRuneInString(s[i:end])
			if end-n > i {
				return end - n
			}
			continue
		}
		if loc := re.FindStringIndex(s[i:]); loc != nil && loc[1] > 0 {
			return i + loc[1]
		}
	}
	return -1
}

func (m altMatcher) split(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		end := m.matchAt(s, i)
		if end < 0 {
			_, n := utf8.DecodeRuneInString(s[i:])
			end = i + n // not matched by any alternative: a gap of one rune
		}
		out = append(out, s[i:end])
		i = end
	}
	return out
}

func scanSplit(m matcher, s string) []string {
	var out []string
	for _, sp := range m.findAll(nil, s) {
		out = append(out, s[sp[0]:sp[1]])
	}
	return out
}

var patternAlphabet = []string{"a", "Z", "é", "ж", "漢", "ſ", "0", "7", "½", "٣", " ", " ", " ", "  ", "\n", "\r\n",
	"\t", "\u00a0", "\u3000", "\u2028", "\v", "'", "'s", "'T", "'re", "'LL", "'ſ", "!", "?", ".", "(", "_", "😀",
	"\u0301", "\u093f", "\u200b", "\x1c", "\xff"}

func randomPatternText(rng *rand.Rand) string {
	var sb strings.Builder
	for k := rng.IntN(24); k > 0; k-- {
		sb.WriteString(patternAlphabet[rng.IntN(len(patternAlphabet))])
	}
	return sb.String()
}

func TestCompilePattern_KnownScanners(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		alts    []string
	}{
		{"gpt2", patternGPT2, []string{`'s|'t|'re|'ve|'m|'ll|'d`, ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, lookaheadAlt, `\s+`}},
		{"qwen2", patternQwen2, []string{`(?i:'s|'t|'re|'ve|'m|'ll|'d|'ſ)`, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}`,
			` ?[^\s\p{L}\p{N}]+[\r\n]*`, `\s*[\r\n]+`, lookaheadAlt, `\s+`}},
		{"llama3", patternLlama3, []string{`(?i:'s|'t|'re|'ve|'m|'ll|'d|'ſ)`, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}{1,3}`,
			` ?[^\s\p{L}\p{N}]+[\r\n]*`, `\s*[\r\n]+`, lookaheadAlt, `\s+`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := compilePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(scanMatcher); !ok {
				t.Fatalf("%T, want the hand-written scanner", m)
			}
			ref := newAltMatcher(t, tt.alts)
			rng := rand.New(rand.NewPCG(7, uint64(len(tt.name))))
			for range 4000 {
				s := randomPatternText(rng)
				if got, want := scanSplit(m, s), ref.split(s); !slices.Equal(got, want) {
					t.Fatalf("%q:\n got %q\nwant %q", s, got, want)
				}
			}
		})
	}
}

func TestCompilePattern_Fallback(t *testing.T) {
	m, err := compilePattern(`\s+|\d+`)
	if err != nil {
		t.Fatal(err)
	}
	if got := scanSplit(m, "a\u00a0 b12"); !slices.Equal(got, []string{"\u00a0 ", "12"}) {
		t.Errorf("got %q: \\s should match U+00A0 as in Oniguruma", got)
	}
	_, err = compilePattern(`foo(?=bar)`)
	if err == nil || !strings.Contains(err.Error(), `foo(?=bar)`) {
		t.Errorf("err = %v, want it to name the pattern", err)
	}
}

func TestWidenSpaceClass(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\s+`, `[` + whiteSpaceRanges + `]+`},
		{`[^\s\p{L}]`, `[^` + whiteSpaceRanges + `\p{L}]`},
		{`\S`, `[^` + whiteSpaceRanges + `]`},
		{`[\S]`, `[\S]`},
		{`[]\s]`, `[]` + whiteSpaceRanges + `]`},
		{`\\s`, `\\s`},
	}
	for _, tt := range tests {
		if got := widenSpaceClass(tt.in); got != tt.want {
			t.Errorf("widenSpaceClass(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
