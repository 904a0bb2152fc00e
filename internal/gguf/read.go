package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
)

// File is a parsed GGUF file.
type File struct {
	Version   uint32
	Alignment uint64
	Metadata  []KV
	// Tensors hold their data as slices of the parsed bytes.
	Tensors []Tensor
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// ReadFile reads and parses the GGUF file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return f, nil
}

// errShort marks data that ends before what it describes.
var errShort = errors.New("unexpected end of data (truncated file?)")

// Parse parses a whole GGUF file held in data. Tensor data is not copied.
// Only version 3 and the F32 and F16 tensor types are accepted.
func Parse(data []byte) (*File, error) {
	d := &decoder{b: data}
	if len(data) < 4 || string(data[:4]) != Magic {
		return nil, fmt.Errorf("gguf: not a GGUF file (magic %q, want %q)", data[:min(4, len(data))], Magic)
	}
	d.off = 4
	f := &File{Version: d.u32()}
	if d.err == nil && f.Version != Version {
		return nil, fmt.Errorf("gguf: version %d, want %d", f.Version, Version)
	}
	nt, nkv := d.u64(), d.u64()
	if d.err != nil {
		return nil, fmt.Errorf("gguf: header: %w", d.err)
	}
	// every entry takes at least 8+4 bytes, which bounds the counts before
	// anything is allocated for them.
	if nkv > uint64(len(data))/12 || nt > uint64(len(data))/12 {
		return nil, fmt.Errorf("gguf: header claims %d tensors and %d metadata entries, more than %d bytes can hold", nt, nkv, len(data))
	}
	for i := range nkv {
		key := d.str()
		v := d.value()
		if d.err != nil {
			return nil, fmt.Errorf("gguf: metadata entry %d (%q): %w", i, key, d.err)
		}
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}
	align, err := alignment(f.Metadata)
	if err != nil {
		return nil, err
	}
	f.Alignment = align
	offsets := make([]uint64, nt)
	for i := range nt {
		t, off, err := d.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor info %d (%q): %w", i, t.Name, err)
		}
		f.Tensors = append(f.Tensors, t)
		offsets[i] = off
	}
	start := padTo(uint64(d.off), align)
	if err := f.attachData(data, start, offsets); err != nil {
		return nil, err
	}
	return f, nil
}

// attachData points each tensor at its bytes, checking alignment and bounds.
func (f *File) attachData(data []byte, start uint64, offsets []uint64) error {
	for i := range f.Tensors {
		t := &f.Tensors[i]
		off := offsets[i]
		n := t.Elems() * uint64(t.Type.elemSize())
		switch {
		case off%f.Alignment != 0:
			return fmt.Errorf("gguf: tensor %s: offset %d is not a multiple of the alignment %d", t.Name, off, f.Alignment)
		case start+off > uint64(len(data)) || n > uint64(len(data))-start-off:
			return fmt.Errorf("gguf: tensor %s: %d bytes at offset %d run past the end of the %d-byte file (truncated?)", t.Name, n, start+off, len(data))
		}
		t.Data = data[start+off : start+off+n : start+off+n]
	}
	return nil
}

// decoder reads little-endian values, keeping the first error.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("%w: %d bytes wanted at offset %d of %d", errShort, n, d.off, len(d.b))
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string { return string(d.take(d.u64())) }

// value reads a type tag and the value it announces.
func (d *decoder) value() any {
	t := ValueType(d.u32())
	if d.err != nil {
		return nil
	}
	if t == TypeArray {
		return d.array()
	}
	return d.scalar(t)
}

// scalar reads one value of a non-array type.
func (d *decoder) scalar(t ValueType) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		switch b := d.u8(); b {
		case 0, 1:
			return b == 1
		default:
			d.fail(fmt.Errorf("bool byte %d, want 0 or 1", b))
		}
		return false
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	}
	d.fail(fmt.Errorf("unknown value type %d", t))
	return nil
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// array reads an array's element type, length and elements into a typed
// slice.
func (d *decoder) array() any {
	t := ValueType(d.u32())
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) { // every element takes at least one byte
		d.fail(fmt.Errorf("%w: array of %d elements at offset %d of %d", errShort, n, d.off, len(d.b)))
		return nil
	}
	switch t {
	case TypeUint8:
		return readArray[uint8](d, t, n)
	case TypeInt8:
		return readArray[int8](d, t, n)
	case TypeUint16:
		return readArray[uint16](d, t, n)
	case TypeInt16:
		return readArray[int16](d, t, n)
	case TypeUint32:
		return readArray[uint32](d, t, n)
	case TypeInt32:
		return readArray[int32](d, t, n)
	case TypeFloat32:
		return readArray[float32](d, t, n)
	case TypeBool:
		return readArray[bool](d, t, n)
	case TypeString:
		return readArray[string](d, t, n)
	case TypeUint64:
		return readArray[uint64](d, t, n)
	case TypeInt64:
		return readArray[int64](d, t, n)
	case TypeFloat64:
		return readArray[float64](d, t, n)
	}
	d.fail(fmt.Errorf("array of unsupported element type %d (nested arrays are not read)", t))
	return nil
}

func readArray[T any](d *decoder, t ValueType, n uint64) []T {
	out := make([]T, 0, n)
	for range n {
		v := d.scalar(t)
		if d.err != nil {
			return nil
		}
		out = append(out, v.(T))
	}
	return out
}

// tensorInfo reads one tensor description and returns its data offset.
func (d *decoder) tensorInfo() (Tensor, uint64, error) {
	t := Tensor{Name: d.str()}
	nd := d.u32()
	if d.err == nil && (nd == 0 || nd > 4) {
		return t, 0, fmt.Errorf("%d dimensions, want 1 to 4", nd)
	}
	elems := uint64(1)
	for range nd {
		dim := d.u64()
		if d.err == nil && (dim == 0 || elems > math.MaxUint64/8/dim) {
			return t, 0, fmt.Errorf("dimension %d is zero or too large", dim)
		}
		elems *= dim
		t.Dims = append(t.Dims, dim)
	}
	t.Type = TensorType(d.u32())
	off := d.u64()
	if d.err != nil {
		return t, 0, d.err
	}
	if t.Type.elemSize() == 0 {
		return t, 0, fmt.Errorf("type %v is not supported (F32 and F16 are)", t.Type)
	}
	return t, off, nil
}
