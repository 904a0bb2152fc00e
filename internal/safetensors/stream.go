package safetensors

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Reader decodes one safetensors file from a stream in a single pass, for
// bytes that arrive over a network connection and are never a file. It
// reads and validates the whole header first (the same checks as Open),
// so a consumer can compare names and shapes with what it expects before
// any tensor data is read; then the tensors come in data order.
type Reader struct {
	r     io.Reader
	hdr   *header
	order []string // tensor names by data offset
	next  int      // index in order of the next tensor to read
	buf   []byte   // conversion buffer
}

// streamChunk is the conversion buffer's size: large enough to keep read
// calls few, small enough to stay in cache.
const streamChunk = 1 << 16

// NewReader reads and validates the header of a size-byte safetensors
// stream from r. It reads nothing past the header.
func NewReader(r io.Reader, size int64) (*Reader, error) {
	prefix := make([]byte, 8, 8+4096)
	if _, err := io.ReadFull(r, prefix); err != nil {
		return nil, fmt.Errorf("safetensors: stream header length: %w", streamErr(err))
	}
	n, err := headerLen(prefix, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: stream: %w", err)
	}
	prefix = slices.Grow(prefix, int(n))[:8+n]
	if _, err := io.ReadFull(r, prefix[8:]); err != nil {
		return nil, fmt.Errorf("safetensors: stream header: %w", streamErr(err))
	}
	hdr, err := parseHeader(prefix, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: stream: %w", err)
	}
	order := slices.Collect(maps.Keys(hdr.tensors))
	slices.SortFunc(order, func(a, b string) int {
		ta, tb := hdr.tensors[a], hdr.tensors[b]
		if ta.begin != tb.begin {
			return compare(ta.begin, tb.begin)
		}
		return compare(ta.end, tb.end) // empty tensors first at a shared offset
	})
	return &Reader{r: r, hdr: hdr, order: order}, nil
}

// streamErr turns a clean end of stream inside the file into
// io.ErrUnexpectedEOF: the size said more bytes were coming.
func streamErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Names returns the tensor names in the order their data arrives.
func (r *Reader) Names() []string { return slices.Clone(r.order) }

// Info returns a tensor's dtype and shape.
func (r *Reader) Info(name string) (TensorInfo, bool) {
	info, ok := r.hdr.tensors[name]
	info.Shape = slices.Clone(info.Shape)
	return info, ok
}

// Metadata returns the "__metadata__" strings (a copy).
func (r *Reader) Metadata() map[string]string { return maps.Clone(r.hdr.metadata) }

// HeaderSize is the number of bytes before the data area: the 8-byte
// length and the JSON header.
func (r *Reader) HeaderSize() int64 { return r.hdr.dataOff }

// ReadFloat32 reads the next tensor, which must be name (the tensors come
// in Names order), converting it into dst, which must hold exactly its
// element count. A floating-point dtype (F32, BF16, F16, F64) is required.
func (r *Reader) ReadFloat32(name string, dst []float32) error {
	if r.next >= len(r.order) || r.order[r.next] != name {
		return fmt.Errorf("safetensors: stream: tensor %q read out of order (next is %s)", name, r.nextName())
	}
	info := r.hdr.tensors[name]
	if !info.DType.isFloat() {
		return fmt.Errorf("safetensors: stream: tensor %q has dtype %s, not a float type", name, info.DType)
	}
	if len(dst) != info.NumElements() {
		return fmt.Errorf("safetensors: stream: tensor %q has %d elements, destination holds %d", name, info.NumElements(), len(dst))
	}
	if info.DType == F32 && littleEndian { // the stored bytes are the values
		if _, err := io.ReadFull(r.r, float32Bytes(dst)); err != nil {
			return fmt.Errorf("safetensors: stream: tensor %q: %w", name, streamErr(err))
		}
		r.next++
		return nil
	}
	if r.buf == nil {
		r.buf = make([]byte, streamChunk)
	}
	size := info.DType.Size()
	per := len(r.buf) / size
	for len(dst) > 0 {
		k := min(per, len(dst))
		b := r.buf[:k*size]
		if _, err := io.ReadFull(r.r, b); err != nil {
			return fmt.Errorf("safetensors: stream: tensor %q: %w", name, streamErr(err))
		}
		convertRange(dst[:k], b, info.DType)
		dst = dst[k:]
	}
	r.next++
	return nil
}

// nextName names the tensor expected next, for errors.
func (r *Reader) nextName() string {
	if r.next >= len(r.order) {
		return "none: all tensors were read"
	}
	return fmt.Sprintf("%q", r.order[r.next])
}
