// Package gguf reads and writes GGUF files, the single-file model format of
// llama.cpp and ollama (version 3, little-endian): a header, typed metadata
// key/value pairs, tensor descriptions, then the aligned tensor data. It
// knows the container only; which tensors and keys a model needs is its
// caller's business.
package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the format version this package writes and reads.
const Version = 3

// DefaultAlignment is the alignment of tensor data when the metadata has no
// general.alignment key.
const DefaultAlignment = 32

// AlignmentKey names the metadata key that sets the data alignment.
const AlignmentKey = "general.alignment"

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The metadata value types, numbered as the GGUF specification numbers them.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

// TensorType is the ggml element type of a tensor.
type TensorType uint32

// The tensor types this package reads and writes (ggml's numbering).
const (
	F32 TensorType = 0
	F16 TensorType = 1
)

// String names the type as ggml does.
func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	}
	return fmt.Sprintf("ggml type %d", uint32(t))
}

// elemSize is the number of bytes per element, or 0 for an unsupported type.
func (t TensorType) elemSize() int {
	switch t {
	case F32:
		return 4
	case F16:
		return 2
	}
	return 0
}

// KV is one metadata entry. Value holds a Go value of one of the types
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64, or a slice of one of them (a GGUF array); the reader
// returns values of exactly these types.
type KV struct {
	Key   string
	Value any
}

// Tensor is one tensor: its name, its dimensions in GGUF order (the
// innermost, fastest-varying dimension first, so a row-major [rows, cols]
// matrix has Dims {cols, rows}), its element type and its little-endian
// data.
type Tensor struct {
	Name string
	Dims []uint64
	Type TensorType
	Data []byte
}

// Elems is the number of elements the dimensions describe.
func (t Tensor) Elems() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Float32s decodes the tensor's data to float32 values.
func (t Tensor) Float32s() ([]float32, error) {
	size := t.Type.elemSize()
	if size == 0 {
		return nil, fmt.Errorf("gguf: tensor %s: unsupported type %v", t.Name, t.Type)
	}
	n := t.Elems()
	if uint64(len(t.Data)) != n*uint64(size) {
		return nil, fmt.Errorf("gguf: tensor %s: %d bytes of data for %d %v elements", t.Name, len(t.Data), n, t.Type)
	}
	out := make([]float32, n)
	for i := range out {
		switch t.Type {
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		case F16:
			out[i] = HalfToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	}
	return out, nil
}

// NewF32 makes an F32 tensor of values with dims in GGUF order.
func NewF32(name string, dims []uint64, values []float32) Tensor {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, Dims: dims, Type: F32, Data: b}
}

// NewF16 makes an F16 tensor of values (rounded to nearest even) with dims
// in GGUF order.
func NewF16(name string, dims []uint64, values []float32) Tensor {
	b := make([]byte, 2*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint16(b[2*i:], Float32ToHalf(v))
	}
	return Tensor{Name: name, Dims: dims, Type: F16, Data: b}
}
