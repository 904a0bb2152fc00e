package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The vocabulary and merges are most of a tokenizer.json (11 MB for Qwen3).
// Decoding them through reflection made loading take over a second, so
// these two shapes are read by a small scanner instead. Its input is a raw
// value that encoding/json has already checked to be valid JSON, so it only
// has to report values of the wrong type, never malformed syntax; it still
// bounds-checks everything so that it cannot panic.

type jsonScanner struct {
	b []byte
	i int
}

var errJSONShape = errors.New("unexpected JSON")

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.skipSpace()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) expect(c byte) error {
	if s.peek() != c {
		return fmt.Errorf("%w at byte %d: want %q", errJSONShape, s.i, c)
	}
	s.i++
	return nil
}

// str reads a JSON string; escapes take the slow path through encoding/json.
func (s *jsonScanner) str() (string, error) {
	if s.peek() != '"' {
		return "", fmt.Errorf("%w at byte %d: want a string", errJSONShape, s.i)
	}
	start := s.i
	escaped := false
	for j := start + 1; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			s.i = j + 1
			if !escaped {
				return string(s.b[start+1 : j]), nil
			}
			var out string
			if err := json.Unmarshal(s.b[start:j+1], &out); err != nil {
				return "", err
			}
			return out, nil
		}
	}
	return "", fmt.Errorf("%w: unterminated string at byte %d", errJSONShape, start)
}

// nonNegInt reads a JSON number that must be a non-negative integer.
func (s *jsonScanner) nonNegInt() (int, error) {
	s.skipSpace()
	start := s.i
	for s.i < len(s.b) && bytes.IndexByte([]byte("-+.eE0123456789"), s.b[s.i]) >= 0 {
		s.i++
	}
	n, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a non-negative integer id, got %q", s.b[start:s.i])
	}
	return n, nil
}

// scanVocab reads {"token": id, ...}.
func scanVocab(raw []byte) (map[string]int, error) {
	s := &jsonScanner{b: raw}
	if err := s.expect('{'); err != nil {
		return nil, fmt.Errorf("model.vocab: want an object of token: id: %w", err)
	}
	vocab := make(map[string]int, bytes.Count(raw, []byte{':'}))
	for s.peek() != '}' {
		tok, err := s.str()
		if err != nil {
			return nil, fmt.Errorf("model.vocab: entry %d: %w", len(vocab), err)
		}
		if err := s.expect(':'); err != nil {
			return nil, fmt.Errorf("model.vocab[%q]: %w", tok, err)
		}
		id, err := s.nonNegInt()
		if err != nil {
			return nil, fmt.Errorf("model.vocab[%q]: %w", tok, err)
		}
		vocab[tok] = id
		if s.peek() == ',' {
			s.i++
		}
	}
	return vocab, nil
}

// scanMerges reads either ["a b", ...] or [["a", "b"], ...].
func scanMerges(raw []byte) ([][2]string, error) {
	s := &jsonScanner{b: raw}
	if err := s.expect('['); err != nil {
		return nil, fmt.Errorf("model.merges: want a list: %w", err)
	}
	var out [][2]string
	for s.peek() != ']' {
		i := len(out)
		m, err := s.merge()
		if err != nil {
			return nil, fmt.Errorf("model.merges[%d]: %w", i, err)
		}
		out = append(out, m)
		if s.peek() == ',' {
			s.i++
		}
	}
	return out, nil
}

func (s *jsonScanner) merge() ([2]string, error) {
	switch s.peek() {
	case '"':
		line, err := s.str()
		if err != nil {
			return [2]string{}, err
		}
		a, b, ok := strings.Cut(line, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return [2]string{}, fmt.Errorf("want \"left right\", got %q", line)
		}
		return [2]string{a, b}, nil
	case '[':
		s.i++
		var m [2]string
		k := 0
		for ; s.peek() != ']'; k++ {
			if k == 2 {
				return m, errors.New("want 2 tokens, got more")
			}
			tok, err := s.str()
			if err != nil {
				return m, err
			}
			m[k] = tok
			if s.peek() == ',' {
				s.i++
			}
		}
		s.i++
		if k != 2 {
			return m, fmt.Errorf("want 2 tokens, got %d", k)
		}
		return m, nil
	}
	return [2]string{}, fmt.Errorf("%w at byte %d: want \"a b\" or [\"a\", \"b\"]", errJSONShape, s.i)
}
