package half

import (
	"fmt"
	"math"
)

// DType is how a Matrix stores its numbers.
type DType uint8

const (
	F32  DType = iota // no conversion: the caller keeps f32 weights
	BF16              // bfloat16: f32's 8-bit exponent, 7-bit mantissa
	F16               // IEEE binary16: 5-bit exponent, 10-bit mantissa
)

// String returns the flag spelling: f32, bf16 or f16.
func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	case F16:
		return "f16"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// ParseDType reads f32, bf16 or f16 (also float32, bfloat16, float16,
// half, the names vLLM's --dtype accepts; "" and "auto" mean f32).
func ParseDType(s string) (DType, error) {
	switch s {
	case "", "auto", "f32", "fp32", "float32", "float":
		return F32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "f16", "fp16", "float16", "half":
		return F16, nil
	}
	return F32, fmt.Errorf("half: unknown dtype %q (want f32, bf16 or f16)", s)
}

// FromF32 rounds f to the 16-bit format d (round to nearest, ties to
// even); d must be BF16 or F16.
func (d DType) FromF32(f float32) uint16 {
	if d == F16 {
		return F16FromF32(f)
	}
	return BF16FromF32(f)
}

// ToF32 widens h exactly; d must be BF16 or F16.
func (d DType) ToF32(h uint16) float32 {
	if d == F16 {
		return F16ToF32(h)
	}
	return BF16ToF32(h)
}

// BF16FromF32 rounds f to bfloat16, to nearest with ties to even; NaN
// stays a (quiet) NaN of the same sign.
func BF16FromF32(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToF32 widens a bfloat16 exactly (its bits are f32's top half).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16FromF32 rounds f to IEEE binary16, to nearest with ties to even:
// overflow gives ±Inf, tiny values subnormals or ±0, NaN a quiet NaN.
func F16FromF32(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // subnormal (or zero): the value is m·2⁻²⁴
		if e < -10 {
			return sign
		}
		full := man | 0x800000
		return sign | uint16(roundShift(full, uint(14-e)))
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent: up to Inf, as it should
	}
	return sign | uint16(r)
}

// roundShift is v >> s rounded to nearest, ties to even (1 ≤ s < 32).
func roundShift(v uint32, s uint) uint32 {
	r := v >> s
	rem := v & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || (rem == half && r&1 == 1) {
		r++
	}
	return r
}

// F16ToF32 widens an IEEE binary16 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}
