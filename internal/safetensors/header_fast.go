package safetensors

import (
	"fmt"
	"unicode/utf8"
)

// The general header parser (splitObject, decodeInfo) goes through
// encoding/json several times per tensor, about 8 µs per entry: a third of
// the time to receive a 1 MB model over loopback. scanHeader reads the form
// every writer produces (strings without escapes, plain non-negative
// integers, each entry's three fields once) in one pass. Anything else
// (an escape, a sign, an exponent, a duplicate or unknown key, a null) makes
// it give up, and the general parser decides with its full error messages.
// So the fast path accepts only what the general parser accepts, with the
// same result (FuzzScanHeader checks this).

// fastEntry is one header entry as scanHeader read it.
type fastEntry struct {
	key        string
	meta       map[string]string // for metadataKey
	dtype      string
	shape, off []int64
}

// scanner walks the header bytes.
type scanner struct {
	b []byte
	i int
}

// scanHeader parses b in the common form, or reports ok=false.
func scanHeader(b []byte) ([]fastEntry, bool) {
	if !utf8.Valid(b) || len(b) == 0 || b[0] != '{' { // no white space before the object
		return nil, false
	}
	s := &scanner{b: b, i: 1}
	var out []fastEntry
	seen := map[string]bool{}
	for first := true; ; first = false {
		if s.byte('}') {
			break
		}
		if !first && !s.byte(',') {
			return nil, false
		}
		key, ok := s.str()
		if !ok || seen[key] || !s.byte(':') {
			return nil, false
		}
		seen[key] = true
		e := fastEntry{key: key}
		if key == metadataKey {
			e.meta, ok = s.strMap()
		} else {
			ok = s.entry(&e)
		}
		if !ok {
			return nil, false
		}
		out = append(out, e)
	}
	for ; s.i < len(s.b); s.i++ { // only padding may follow
		if !isSpace(s.b[s.i]) {
			return nil, false
		}
	}
	return out, true
}

// entry reads {"dtype": ..., "shape": [...], "data_offsets": [...]} in any
// order, each field exactly once.
func (s *scanner) entry(e *fastEntry) bool {
	if !s.byte('{') {
		return false
	}
	var haveD, haveS, haveO bool
	for first := true; ; first = false {
		if s.byte('}') {
			return haveD && haveS && haveO
		}
		if !first && !s.byte(',') {
			return false
		}
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		switch {
		case key == "dtype" && !haveD:
			e.dtype, ok = s.str()
			haveD = true
		case key == "shape" && !haveS:
			e.shape, ok = s.ints()
			haveS = true
		case key == "data_offsets" && !haveO:
			e.off, ok = s.ints()
			haveO = true
		default:
			return false
		}
		if !ok {
			return false
		}
	}
}

// strMap reads an object of strings.
func (s *scanner) strMap() (map[string]string, bool) {
	if !s.byte('{') {
		return nil, false
	}
	m := map[string]string{}
	for first := true; ; first = false {
		if s.byte('}') {
			return m, true
		}
		if !first && !s.byte(',') {
			return nil, false
		}
		k, ok := s.str()
		if !ok || !s.byte(':') {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		if m[k], ok = s.str(); !ok {
			return nil, false
		}
	}
}

// ints reads an array of non-negative integers without sign, fraction,
// exponent or leading zero.
func (s *scanner) ints() ([]int64, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []int64{}
	for first := true; ; first = false {
		if s.byte(']') {
			return out, true
		}
		if !first && !s.byte(',') {
			return nil, false
		}
		s.space()
		start := s.i
		var v int64
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			if v > (1<<63-1-9)/10 {
				return nil, false
			}
			v = v*10 + int64(s.b[s.i]-'0')
			s.i++
		}
		n := s.i - start
		if n == 0 || (n > 1 && s.b[start] == '0') {
			return nil, false
		}
		out = append(out, v)
	}
}

// str reads a string with no escape and no control character, whose
// JSON value is its bytes.
func (s *scanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// byte skips white space and consumes c if it comes next.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// decodeFast fills h from scanned entries with the checks decode applies.
func (h *header) decodeFast(entries []fastEntry, dataLen int64) error {
	h.tensors = make(map[string]TensorInfo, len(entries))
	for _, e := range entries {
		if e.key == metadataKey {
			h.metadata = e.meta
			continue
		}
		info, err := checkInfo(DType(e.dtype), e.shape, e.off, dataLen)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", e.key, err)
		}
		h.tensors[e.key] = info
	}
	return checkTiling(h.tensors, dataLen)
}
