package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tensor is a named float32 tensor to write.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Write saves tensors to path as one safetensors file with every tensor in
// dtype (F32, or BF16 rounded to nearest even). The header lists
// "__metadata__" first and then the tensors sorted by name, with data in the
// same order, padded with spaces to a multiple of 8 bytes, the layout the
// reference implementation produces. The file appears atomically: it is
// written to a temporary file in the same folder, synced, then renamed, so a
// crash never leaves a half-written checkpoint under the final name.
func Write(path string, tensors []Tensor, dtype DType, metadata map[string]string) error {
	enc, err := newEncoding(tensors, dtype, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return writeAtomic(path, func(w *bufio.Writer) error {
		_, err := enc.writeTo(w)
		return err
	})
}

// Encode writes tensors to w in the layout Write produces (same bytes) and
// returns the number of bytes written. It streams: besides the header it
// holds only a small conversion buffer, so w may be a network connection.
func Encode(w io.Writer, tensors []Tensor, dtype DType, metadata map[string]string) (int64, error) {
	enc, err := newEncoding(tensors, dtype, metadata)
	if err != nil {
		return 0, fmt.Errorf("safetensors: encode: %w", err)
	}
	n, err := enc.writeTo(w)
	if err != nil {
		return n, fmt.Errorf("safetensors: encode: %w", err)
	}
	return n, nil
}

// encoding is a checked set of tensors with its encoded header.
type encoding struct {
	sorted []Tensor
	dtype  DType
	hdr    []byte
}

// newEncoding validates the tensors, dtype and metadata and builds the
// header.
func newEncoding(tensors []Tensor, dtype DType, metadata map[string]string) (*encoding, error) {
	if dtype != F32 && dtype != BF16 {
		return nil, fmt.Errorf("dtype %s not supported (want F32 or BF16)", dtype)
	}
	sorted, err := sortedTensors(tensors)
	if err != nil {
		return nil, err
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q is not valid UTF-8", k)
		}
	}
	return &encoding{sorted: sorted, dtype: dtype, hdr: encodeHeader(sorted, dtype, metadata)}, nil
}

// writeTo writes the header and then every tensor's data.
func (e *encoding) writeTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	if _, err := cw.Write(e.hdr); err != nil {
		return cw.n, err
	}
	for _, t := range e.sorted {
		if err := writeData(cw, t.Data, e.dtype); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sortedTensors checks names and shapes and returns the tensors by name.
func sortedTensors(tensors []Tensor) ([]Tensor, error) {
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range sorted {
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", metadataKey)
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			if d != 0 && n > math.MaxInt/d {
				return nil, fmt.Errorf("tensor %q: shape %v overflows", t.Name, t.Shape)
			}
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q: shape %v holds %d values but Data has %d", t.Name, t.Shape, n, len(t.Data))
		}
	}
	return sorted, nil
}

// encodeHeader returns the 8-byte length followed by the padded JSON header.
func encodeHeader(tensors []Tensor, dtype DType, metadata map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		b.WriteString(`"` + metadataKey + `":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	var off int64
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		size := int64(len(t.Data)) * int64(dtype.Size())
		writeJSONString(&b, t.Name)
		fmt.Fprintf(&b, `:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}`, dtype, joinInts(t.Shape), off, off+size)
		off += size
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(b.Len()))
	return append(out, b.Bytes()...)
}

// writeJSONString writes s as a JSON string without HTML escaping, as
// serde_json (the reference writer) does.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes; bytes.Buffer never fails
	b.Truncate(b.Len() - 1) // drop the newline Encode appends
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

// writeData encodes float32 values little-endian in dtype.
func writeData(w io.Writer, data []float32, dtype DType) error {
	const chunk = 1 << 14
	if dtype == F32 && littleEndian { // the values are the stored bytes
		for b := float32Bytes(data); len(b) > 0; {
			n := min(16*chunk, len(b)) // pieces that stay in cache for a hashing writer
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	buf := make([]byte, 0, chunk*4)
	for len(data) > 0 {
		n := min(chunk, len(data))
		buf = buf[:0]
		for _, v := range data[:n] {
			if dtype == BF16 {
				buf = binary.LittleEndian.AppendUint16(buf, Float32ToBF16(v))
			} else {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// writeAtomic writes through fill into a temporary file next to path, syncs
// it and renames it over path, then syncs the folder so the rename survives
// a crash. On any error the temporary file is removed.
func writeAtomic(path string, fill func(*bufio.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("safetensors: write %s: %w", path, err)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err = fill(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir flushes a folder's entries; some platforms cannot, which is fine.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
