package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Write writes a GGUF file of meta and tensors to w: the header, the
// metadata in the order given, the tensor descriptions with their data
// offsets, then each tensor's data padded to the alignment (the uint32
// general.alignment in meta, else DefaultAlignment).
func Write(w io.Writer, meta []KV, tensors []Tensor) error {
	align, err := alignment(meta)
	if err != nil {
		return err
	}
	if err := checkTensors(tensors); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(meta)))
	for _, kv := range meta {
		e.str(kv.Key)
		if err := e.value(kv.Value); err != nil {
			return fmt.Errorf("gguf: metadata %s: %w", kv.Key, err)
		}
	}
	var off uint64
	for _, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(off)
		off = padTo(off+uint64(len(t.Data)), align)
	}
	e.pad(align)
	for _, t := range tensors {
		e.raw(t.Data)
		e.pad(align)
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: write: %w", err)
	}
	return nil
}

// alignment returns the data alignment meta asks for.
func alignment(meta []KV) (uint64, error) {
	for _, kv := range meta {
		if kv.Key != AlignmentKey {
			continue
		}
		a, ok := kv.Value.(uint32)
		if !ok || a == 0 || a%8 != 0 {
			return 0, fmt.Errorf("gguf: %s must be a uint32 multiple of 8, got %T %v", AlignmentKey, kv.Value, kv.Value)
		}
		return uint64(a), nil
	}
	return DefaultAlignment, nil
}

// checkTensors rejects tensors whose data does not match their dims and
// type, and repeated names.
func checkTensors(tensors []Tensor) error {
	seen := make(map[string]bool, len(tensors))
	var errs []error
	for _, t := range tensors {
		size := t.Type.elemSize()
		switch {
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("gguf: tensor %s appears twice", t.Name))
		case size == 0:
			errs = append(errs, fmt.Errorf("gguf: tensor %s: unsupported type %v", t.Name, t.Type))
		case len(t.Dims) == 0 || len(t.Dims) > 4:
			errs = append(errs, fmt.Errorf("gguf: tensor %s: %d dimensions, want 1 to 4", t.Name, len(t.Dims)))
		case t.Elems()*uint64(size) != uint64(len(t.Data)):
			errs = append(errs, fmt.Errorf("gguf: tensor %s: %d bytes of data for dims %v of %v", t.Name, len(t.Data), t.Dims, t.Type))
		}
		seen[t.Name] = true
	}
	return errors.Join(errs...)
}

func padTo(n, align uint64) uint64 { return (n + align - 1) / align * align }

// encoder writes little-endian values, keeping the first error and the
// number of bytes written (for padding).
type encoder struct {
	w   io.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	var n int
	n, e.err = e.w.Write(b)
	e.n += uint64(n)
}

func (e *encoder) u8(v uint8)   { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.buf[:], v); e.raw(e.buf[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.buf[:], v); e.raw(e.buf[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.buf[:], v); e.raw(e.buf[:8]) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

func (e *encoder) pad(align uint64) {
	if n := padTo(e.n, align) - e.n; n > 0 {
		e.raw(make([]byte, n))
	}
}

// value writes v's type tag and v.
func (e *encoder) value(v any) error {
	t, ok := typeOf(v)
	if !ok {
		return fmt.Errorf("unsupported value type %T", v)
	}
	e.u32(uint32(t))
	if t != TypeArray {
		e.scalar(v)
		return nil
	}
	return e.array(v)
}

// typeOf maps a Go value to its GGUF type.
func typeOf(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		return TypeArray, true
	}
	return 0, false
}

// scalar writes a non-array value (typeOf accepted it).
func (e *encoder) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		var b uint8
		if x {
			b = 1
		}
		e.u8(b)
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	}
}

// array writes the element type, the length and the elements of a slice.
func (e *encoder) array(v any) error {
	switch x := v.(type) {
	case []uint8:
		writeArray(e, TypeUint8, x)
	case []int8:
		writeArray(e, TypeInt8, x)
	case []uint16:
		writeArray(e, TypeUint16, x)
	case []int16:
		writeArray(e, TypeInt16, x)
	case []uint32:
		writeArray(e, TypeUint32, x)
	case []int32:
		writeArray(e, TypeInt32, x)
	case []float32:
		writeArray(e, TypeFloat32, x)
	case []bool:
		writeArray(e, TypeBool, x)
	case []string:
		writeArray(e, TypeString, x)
	case []uint64:
		writeArray(e, TypeUint64, x)
	case []int64:
		writeArray(e, TypeInt64, x)
	case []float64:
		writeArray(e, TypeFloat64, x)
	default:
		return fmt.Errorf("unsupported array type %T", v)
	}
	return nil
}

func writeArray[T any](e *encoder, t ValueType, xs []T) {
	e.u32(uint32(t))
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		e.scalar(x)
	}
}
