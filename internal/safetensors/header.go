package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// maxHeaderSize bounds the JSON header, as the reference implementation
// does, so a corrupt length cannot make us allocate gigabytes.
const maxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	DType DType
	Shape []int
	// begin and end are byte offsets relative to the start of the data area.
	begin, end int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// header is a parsed and validated file header.
type header struct {
	tensors  map[string]TensorInfo
	metadata map[string]string
	dataOff  int64 // where the data area starts in the file: 8 + header length
}

// parseHeader validates the 8-byte length prefix and the JSON header of a
// file of fileSize bytes whose first bytes are in prefix (at least 8, and the
// whole header when the length is valid). It checks everything the format
// pins down: dtypes are known, shapes are non-negative, every tensor's byte
// range matches its shape and lies in the data area, and the ranges tile the
// data area exactly, with no gap and no overlap, as the reference
// implementation requires.
func parseHeader(prefix []byte, fileSize int64) (*header, error) {
	n, err := headerLen(prefix, fileSize)
	if err != nil {
		return nil, err
	}
	if int64(len(prefix)) < 8+n {
		return nil, fmt.Errorf("header truncated: have %d of %d bytes", len(prefix)-8, n)
	}
	h := &header{dataOff: 8 + n}
	if fast, ok := scanHeader(prefix[8 : 8+n]); ok {
		if err := h.decodeFast(fast, fileSize-h.dataOff); err != nil {
			return nil, err
		}
		return h, nil
	}
	entries, err := splitObject(prefix[8 : 8+n])
	if err != nil {
		return nil, err
	}
	if err := h.decode(entries, fileSize-h.dataOff); err != nil {
		return nil, err
	}
	return h, nil
}

// headerLen reads and bounds the little-endian header length.
func headerLen(prefix []byte, fileSize int64) (int64, error) {
	if len(prefix) < 8 || fileSize < 8 {
		return 0, fmt.Errorf("file too short (%d bytes) for the 8-byte header length", fileSize)
	}
	u := binary.LittleEndian.Uint64(prefix)
	switch {
	case u < 2:
		return 0, fmt.Errorf("header length %d is too small for a JSON object", u)
	case u > maxHeaderSize:
		return 0, fmt.Errorf("header length %d exceeds the %d-byte limit", u, maxHeaderSize)
	case u > uint64(fileSize-8):
		return 0, fmt.Errorf("header length %d exceeds the file size %d", u, fileSize)
	}
	return int64(u), nil
}

// entry is one top-level key of the header with its undecoded value.
type entry struct {
	key string
	raw json.RawMessage
}

// splitObject parses the header as one JSON object followed only by space
// padding, rejecting duplicate keys (encoding/json would silently keep the
// last one, hiding a corrupt or malicious file).
func splitObject(b []byte) ([]entry, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("header is not valid UTF-8")
	}
	if b[0] != '{' {
		return nil, errors.New("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	var out []entry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("header JSON: unexpected %v", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("header JSON: duplicate key %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("header JSON: key %q: %w", key, err)
		}
		out = append(out, entry{key, raw})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	if rest := b[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return nil, fmt.Errorf("header JSON: %d unexpected bytes after the object", len(rest))
	}
	return out, nil
}

// decode fills h from the header entries and validates the tensor layout
// against a data area of dataLen bytes.
func (h *header) decode(entries []entry, dataLen int64) error {
	h.tensors = make(map[string]TensorInfo, len(entries))
	for _, e := range entries {
		if e.key == metadataKey {
			if err := json.Unmarshal(e.raw, &h.metadata); err != nil {
				return fmt.Errorf("%s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		info, err := decodeInfo(e.raw, dataLen)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", e.key, err)
		}
		h.tensors[e.key] = info
	}
	return checkTiling(h.tensors, dataLen)
}

// decodeInfo parses and checks one tensor entry. Field names are matched
// exactly: encoding/json alone would also accept "DType" or "Shape", which
// the reference implementation rejects.
func decodeInfo(raw json.RawMessage, dataLen int64) (TensorInfo, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return TensorInfo{}, fmt.Errorf("entry is not a JSON object: %s", clip(raw))
	}
	var dtype string
	var shape, off []int64
	for key, v := range fields {
		var err error
		switch key {
		case "dtype":
			err = json.Unmarshal(v, &dtype)
		case "shape":
			err = json.Unmarshal(v, &shape)
		case "data_offsets":
			err = json.Unmarshal(v, &off)
		default:
			return TensorInfo{}, fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return TensorInfo{}, fmt.Errorf("field %q: %w", key, err)
		}
	}
	if len(fields) != 3 || shape == nil || off == nil {
		return TensorInfo{}, errors.New("entry needs dtype, shape and data_offsets")
	}
	return checkInfo(DType(dtype), shape, off, dataLen)
}

// checkInfo validates a decoded entry against a data area of dataLen bytes.
func checkInfo(dtype DType, shape, off []int64, dataLen int64) (TensorInfo, error) {
	if err := checkDType(dtype); err != nil {
		return TensorInfo{}, err
	}
	nbytes, err := shapeBytes(shape, dtype.Size())
	if err != nil {
		return TensorInfo{}, err
	}
	info := TensorInfo{DType: dtype, Shape: make([]int, len(shape))}
	for i, d := range shape {
		info.Shape[i] = int(d)
	}
	if len(off) != 2 {
		return TensorInfo{}, fmt.Errorf("data_offsets has %d values, want 2", len(off))
	}
	info.begin, info.end = off[0], off[1]
	if info.begin < 0 || info.end < info.begin || info.end > dataLen {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d, %d] outside the %d-byte data area", off[0], off[1], dataLen)
	}
	if info.end-info.begin != nbytes {
		return TensorInfo{}, fmt.Errorf("data_offsets span %d bytes but shape %v of %s needs %d",
			info.end-info.begin, shape, dtype, nbytes)
	}
	return info, nil
}

// clip shortens a JSON value for an error message.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// shapeBytes returns the byte size of a shape, rejecting negative
// dimensions and sizes that overflow.
func shapeBytes(shape []int64, elem int) (int64, error) {
	n := uint64(elem)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n = lo
	}
	if n > math.MaxInt64 || int64(int(n)) != int64(n) {
		return 0, fmt.Errorf("shape %v overflows", shape)
	}
	return int64(n), nil
}

// checkTiling requires the tensors' byte ranges, sorted by offset, to cover
// [0, dataLen) back to back. The reference implementation rejects gaps,
// overlaps and trailing bytes; so do we.
func checkTiling(tensors map[string]TensorInfo, dataLen int64) error {
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(tensors))
	for name, t := range tensors {
		spans = append(spans, span{name, t.begin, t.end})
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return compare(a.begin, b.begin)
		}
		return compare(a.end, b.end)
	})
	var pos int64
	for _, s := range spans {
		if s.begin != pos {
			if s.begin < pos {
				return fmt.Errorf("tensor %q at byte %d overlaps the previous tensor ending at %d", s.name, s.begin, pos)
			}
			return fmt.Errorf("tensor %q starts at byte %d, leaving a gap after byte %d", s.name, s.begin, pos)
		}
		pos = s.end
	}
	if pos != dataLen {
		return fmt.Errorf("tensors cover %d bytes of a %d-byte data area", pos, dataLen)
	}
	return nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
