package tokenizer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization, as HF normalizers do.
// It runs on each piece of text between added tokens.
type normalizer interface {
	normalize(s string) string
}

type normalizerFunc func(string) string

func (f normalizerFunc) normalize(s string) string { return f(s) }

type normalizerSeq []normalizer

func (q normalizerSeq) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// jsonNormalizer is the union of the normalizer objects we read.
type jsonNormalizer struct {
	Type        string            `json:"type"`
	Normalizers []json.RawMessage `json:"normalizers"`
	Pattern     *jsonPattern      `json:"pattern"`
	Content     *string           `json:"content"`
	Prepend     *string           `json:"prepend"`
	StripLeft   bool              `json:"strip_left"`
	StripRight  bool              `json:"strip_right"`
}

// jsonPattern is HF's {"String": "..."} or {"Regex": "..."}.
type jsonPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// parseNormalizer builds a normalizer from JSON; field names the JSON path
// for error messages. A JSON null gives (nil, nil).
func parseNormalizer(raw json.RawMessage, field string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var j jsonNormalizer
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch j.Type {
	case "NFC":
		return normalizerFunc(norm.NFC.String), nil
	case "NFD":
		return normalizerFunc(norm.NFD.String), nil
	case "NFKC":
		return normalizerFunc(norm.NFKC.String), nil
	case "NFKD":
		return normalizerFunc(norm.NFKD.String), nil
	case "Lowercase":
		return normalizerFunc(strings.ToLower), nil
	case "Strip":
		return stripNormalizer(j.StripLeft, j.StripRight), nil
	case "Prepend":
		if j.Prepend == nil {
			return nil, fmt.Errorf("%s.prepend: missing", field)
		}
		p := *j.Prepend
		return normalizerFunc(func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}), nil
	case "Replace":
		return parseReplace(j.Pattern, j.Content, field)
	case "Sequence":
		if j.Normalizers == nil {
			return nil, fmt.Errorf("%s.normalizers: missing", field)
		}
		var seq normalizerSeq
		for i, r := range j.Normalizers {
			n, err := parseNormalizer(r, fmt.Sprintf("%s.normalizers[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq = append(seq, n)
			}
		}
		return seq, nil
	case "":
		return nil, fmt.Errorf("%s.type: missing", field)
	}
	return nil, fmt.Errorf("%s.type: unsupported normalizer %q", field, j.Type)
}

func stripNormalizer(left, right bool) normalizer {
	return normalizerFunc(func(s string) string {
		if left {
			s = strings.TrimLeftFunc(s, unicode.IsSpace)
		}
		if right {
			s = strings.TrimRightFunc(s, unicode.IsSpace)
		}
		return s
	})
}

// parseReplace builds the Replace normalizer (also used by the Replace
// decoder): every match of pattern becomes content.
func parseReplace(p *jsonPattern, content *string, field string) (normalizerFunc, error) {
	if content == nil {
		return nil, fmt.Errorf("%s.content: missing", field)
	}
	c := *content
	switch {
	case p == nil:
		return nil, fmt.Errorf("%s.pattern: missing", field)
	case p.String != nil:
		old := *p.String
		if old == "" {
			return func(s string) string { return s }, nil
		}
		return func(s string) string { return strings.ReplaceAll(s, old, c) }, nil
	case p.Regex != nil:
		re, err := regexp.Compile(widenSpaceClass(*p.Regex))
		if err != nil {
			return nil, fmt.Errorf("%s.pattern.Regex: unsupported regex %q: %v", field, *p.Regex, err)
		}
		return func(s string) string { return re.ReplaceAllLiteralString(s, c) }, nil
	}
	return nil, fmt.Errorf("%s.pattern: needs String or Regex", field)
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}
