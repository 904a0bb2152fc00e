package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// piece is one pre-token on its way to the model.
type piece struct {
	// text is the pre-token; when byteLevel is set it still holds raw bytes
	// whose GPT-2 byte-level spelling the model works on. Delaying that
	// mapping lets the model start from a 256-entry table and lets the
	// cache key on the raw bytes.
	text      string
	byteLevel bool
	// atStart marks a piece that begins the original input; Metaspace's
	// "first" prepend scheme only prefixes that one.
	atStart bool
}

// materialize applies a pending byte-level mapping so that a later step can
// split the visible text.
func (p piece) materialize() piece {
	if p.byteLevel {
		p.text = byteLevelString(p.text)
		p.byteLevel = false
	}
	return p
}

// sink receives pre-tokens one at a time. Streaming them, rather than
// building slices of pieces, keeps a 1 MB input from turning into megabytes
// of short-lived garbage.
type sink interface {
	add(p piece)
}

// preTokenizer splits a piece into smaller pieces and hands them to out.
type preTokenizer interface {
	preTokenize(p piece, out sink)
}

type preTokenizerSeq []preTokenizer

// seqStage feeds every piece it receives to the next step of a Sequence.
type seqStage struct {
	step preTokenizer
	next sink
}

func (s *seqStage) add(p piece) { s.step.preTokenize(p, s.next) }

func (q preTokenizerSeq) preTokenize(p piece, out sink) {
	if len(q) == 0 {
		out.add(p)
		return
	}
	next := out
	for i := len(q) - 1; i >= 1; i-- {
		next = &seqStage{step: q[i], next: next}
	}
	q[0].preTokenize(p, next)
}

// splitBehavior says what happens to the matched delimiters (HF
// SplitDelimiterBehavior).
type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

var splitBehaviors = map[string]splitBehavior{
	"Removed":            splitRemoved,
	"Isolated":           splitIsolated,
	"MergedWithPrevious": splitMergedWithPrevious,
	"MergedWithNext":     splitMergedWithNext,
	"Contiguous":         splitContiguous,
}

// splitPre is HF's Split pre-tokenizer.
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (sp splitPre) preTokenize(p piece, out sink) {
	p = p.materialize()
	if scan, ok := sp.m.(scanMatcher); ok && sp.behavior == splitIsolated && !sp.invert {
		// The known patterns match at every position: each match is a piece.
		for i := 0; i < len(p.text); {
			end := scan(p.text, i)
			out.add(piece{text: p.text[i:end], atStart: p.atStart && i == 0})
			i = end
		}
		return
	}
	matches := sp.m.findAll(nil, p.text)
	for k, span := range splitSpans(len(p.text), matches, sp.behavior, sp.invert) {
		out.add(piece{text: p.text[span[0]:span[1]], atStart: p.atStart && k == 0 && span[0] == 0})
	}
}

// chunk is a stretch of text that is or is not a pattern match.
type chunk struct {
	start, end int
	match      bool
}

// splitSpans turns matches into the non-empty pieces HF's
// NormalizedString::split would produce for the behavior.
func splitSpans(n int, matches [][2]int, b splitBehavior, invert bool) [][2]int {
	var chunks []chunk
	prev := 0
	for _, m := range matches {
		if m[0] > prev {
			chunks = append(chunks, chunk{prev, m[0], invert})
		}
		chunks = append(chunks, chunk{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev < n {
		chunks = append(chunks, chunk{prev, n, invert})
	}
	var out [][2]int
	switch b {
	case splitIsolated:
		for _, c := range chunks {
			out = append(out, [2]int{c.start, c.end})
		}
	case splitRemoved:
		for _, c := range chunks {
			if !c.match {
				out = append(out, [2]int{c.start, c.end})
			}
		}
	case splitMergedWithPrevious:
		prevMatch := false
		for _, c := range chunks {
			if c.match && !prevMatch && len(out) > 0 {
				out[len(out)-1][1] = c.end
			} else {
				out = append(out, [2]int{c.start, c.end})
			}
			prevMatch = c.match
		}
	case splitMergedWithNext:
		prevMatch := false
		for i := len(chunks) - 1; i >= 0; i-- {
			c := chunks[i]
			if c.match && !prevMatch && len(out) > 0 {
				out[len(out)-1][0] = c.start
			} else {
				out = append(out, [2]int{c.start, c.end})
			}
			prevMatch = c.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	case splitContiguous:
		prevMatch := false
		for i, c := range chunks {
			if i > 0 && c.match == prevMatch {
				out[len(out)-1][1] = c.end
			} else {
				out = append(out, [2]int{c.start, c.end})
			}
			prevMatch = c.match
		}
	}
	kept := out[:0]
	for _, s := range out {
		if s[1] > s[0] {
			kept = append(kept, s)
		}
	}
	return kept
}

// byteLevelPre is HF's ByteLevel pre-tokenizer: optional GPT-2 regex split,
// then the byte-to-rune mapping (left pending, see piece).
type byteLevelPre struct {
	addPrefixSpace bool
	split          scanMatcher // GPT-2's pattern; nil when use_regex is false
}

func (b byteLevelPre) preTokenize(p piece, out sink) {
	p = p.materialize()
	if b.addPrefixSpace && !strings.HasPrefix(p.text, " ") {
		p.text = " " + p.text
	}
	if b.split == nil {
		if p.text != "" {
			out.add(piece{text: p.text, byteLevel: true, atStart: p.atStart})
		}
		return
	}
	for i := 0; i < len(p.text); {
		end := b.split(p.text, i)
		out.add(piece{text: p.text[i:end], byteLevel: true, atStart: p.atStart && i == 0})
		i = end
	}
}

// metaspacePre is HF's Metaspace pre-tokenizer (SentencePiece's "▁").
type metaspacePre struct {
	replacement string
	prepend     string // "always", "first" or "never"
	split       bool
}

func (m metaspacePre) preTokenize(p piece, out sink) {
	p = p.materialize()
	s := strings.ReplaceAll(p.text, " ", m.replacement)
	if !strings.HasPrefix(s, m.replacement) && (m.prepend == "always" || (m.prepend == "first" && p.atStart)) {
		s = m.replacement + s
	}
	if !m.split {
		if s != "" {
			out.add(piece{text: s, atStart: p.atStart})
		}
		return
	}
	matches := literalMatcher(m.replacement).findAll(nil, s)
	for k, span := range splitSpans(len(s), matches, splitMergedWithNext, false) {
		out.add(piece{text: s[span[0]:span[1]], atStart: p.atStart && k == 0})
	}
}

// digitsPre is HF's Digits pre-tokenizer: ASCII digits split from the rest,
// one by one or in runs.
type digitsPre struct{ individual bool }

type asciiDigitMatcher struct{}

func (asciiDigitMatcher) findAll(dst [][2]int, s string) [][2]int {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			dst = append(dst, [2]int{i, i + 1})
		}
	}
	return dst
}

func (d digitsPre) preTokenize(p piece, out sink) {
	b := splitContiguous
	if d.individual {
		b = splitIsolated
	}
	splitPre{m: asciiDigitMatcher{}, behavior: b}.preTokenize(p, out)
}

// jsonPreTokenizer is the union of the pre-tokenizer objects we read.
type jsonPreTokenizer struct {
	Type             string            `json:"type"`
	PreTokenizers    []json.RawMessage `json:"pretokenizers"`
	Pattern          *jsonPattern      `json:"pattern"`
	Behavior         string            `json:"behavior"`
	Invert           bool              `json:"invert"`
	AddPrefixSpace   *bool             `json:"add_prefix_space"`
	UseRegex         *bool             `json:"use_regex"`
	Replacement      *string           `json:"replacement"`
	PrependScheme    string            `json:"prepend_scheme"`
	Split            *bool             `json:"split"`
	IndividualDigits bool              `json:"individual_digits"`
}

// parsePreTokenizer builds a pre-tokenizer from JSON; a JSON null gives
// (nil, nil).
func parsePreTokenizer(raw json.RawMessage, field string) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var j jsonPreTokenizer
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch j.Type {
	case "Sequence":
		if j.PreTokenizers == nil {
			return nil, fmt.Errorf("%s.pretokenizers: missing", field)
		}
		var seq preTokenizerSeq
		for i, r := range j.PreTokenizers {
			p, err := parsePreTokenizer(r, fmt.Sprintf("%s.pretokenizers[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "Split":
		return parseSplit(j, field)
	case "ByteLevel":
		b := byteLevelPre{addPrefixSpace: j.AddPrefixSpace != nil && *j.AddPrefixSpace}
		if j.UseRegex == nil || *j.UseRegex {
			b.split = scanMatcher(scanGPT2)
		}
		return b, nil
	case "Metaspace":
		return parseMetaspace(j, field)
	case "Digits":
		return digitsPre{individual: j.IndividualDigits}, nil
	case "":
		return nil, fmt.Errorf("%s.type: missing", field)
	}
	return nil, fmt.Errorf("%s.type: unsupported pre-tokenizer %q", field, j.Type)
}

func parseSplit(j jsonPreTokenizer, field string) (preTokenizer, error) {
	b, ok := splitBehaviors[j.Behavior]
	if !ok {
		return nil, fmt.Errorf("%s.behavior: unsupported %q", field, j.Behavior)
	}
	sp := splitPre{behavior: b, invert: j.Invert}
	switch {
	case j.Pattern == nil:
		return nil, fmt.Errorf("%s.pattern: missing", field)
	case j.Pattern.String != nil:
		sp.m = literalMatcher(*j.Pattern.String)
	case j.Pattern.Regex != nil:
		m, err := compilePattern(*j.Pattern.Regex)
		if err != nil {
			return nil, fmt.Errorf("%s.pattern.Regex: %w", field, err)
		}
		sp.m = m
	default:
		return nil, fmt.Errorf("%s.pattern: needs String or Regex", field)
	}
	return sp, nil
}

// parseMetaspace reads both the current (prepend_scheme) and the legacy
// (add_prefix_space) spelling of the Metaspace options.
func parseMetaspace(j jsonPreTokenizer, field string) (preTokenizer, error) {
	m := metaspacePre{replacement: "\u2581", prepend: "always", split: true}
	if j.Replacement != nil {
		if utf8.RuneCountInString(*j.Replacement) != 1 {
			return nil, fmt.Errorf("%s.replacement: want one character, got %q", field, *j.Replacement)
		}
		m.replacement = *j.Replacement
	}
	if j.Split != nil {
		m.split = *j.Split
	}
	switch {
	case j.PrependScheme != "":
		if j.PrependScheme != "always" && j.PrependScheme != "first" && j.PrependScheme != "never" {
			return nil, fmt.Errorf("%s.prepend_scheme: unsupported %q", field, j.PrependScheme)
		}
		m.prepend = j.PrependScheme
	case j.AddPrefixSpace != nil && !*j.AddPrefixSpace:
		m.prepend = "never"
	}
	return m, nil
}
