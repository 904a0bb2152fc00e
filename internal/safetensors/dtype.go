package safetensors

import (
	"fmt"
	"math"
)

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types gorlhf knows the size of. Float32 converts F32, BF16,
// F16 and F64; every known type can be read raw with Bytes.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	I64    DType = "I64"
	U64    DType = "U64"
	F64    DType = "F64"
)

// Size returns the number of bytes of one element, or 0 for an unknown type.
// Sub-byte types (F4, F6_*) are deliberately unknown: their packing rules
// are not needed by any model gorlhf loads.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E4M3, F8E5M2:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case I64, U64, F64:
		return 8
	}
	return 0
}

// isFloat reports whether Float32 can convert this type.
func (d DType) isFloat() bool {
	return d == F32 || d == BF16 || d == F16 || d == F64
}

// BF16ToFloat32 widens a bfloat16 bit pattern. bfloat16 is the top half of
// a float32, so the widening is exact, NaN payloads included.
func BF16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// Float32ToBF16 narrows to bfloat16 with round-to-nearest-even, the rounding
// PyTorch uses, so a file written here matches torch's .to(torch.bfloat16).
// NaN stays a quiet NaN with its sign; values past the bfloat16 range round
// to infinity as IEEE rounding requires.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: truncate and force the quiet bit
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 widens an IEEE 754 binary16 bit pattern exactly, including
// subnormals, signed zeros, infinities and NaN payloads.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN, payload kept in the top mantissa bits
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value = mant × 2^-24, normal in float32. Shift the mantissa
	// up until its leading one reaches the implicit-bit position.
	e := uint32(113)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// checkDType rejects types whose element size is unknown.
func checkDType(d DType) error {
	if d.Size() == 0 {
		return fmt.Errorf("unknown dtype %q", string(d))
	}
	return nil
}
