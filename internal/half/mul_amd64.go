package half

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The kernels of mul_amd64.s (tools/gen_half_asm.py writes them): an R×C
// tile of y = x·W from zero, one FMA chain per output.

//go:noescape
func bf16AVX512R1C128(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX512R4C64(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX512R1C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX512R4C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX2R1C64(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX2R4C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX2R1C8(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func bf16AVX2R4C8(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX512R1C128(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX512R4C64(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX512R1C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX512R4C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX2R1C64(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX2R4C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX2R1C8(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f16AVX2R4C8(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX512R1C128(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX512R4C64(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX512R1C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX512R4C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX2R1C64(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX2R4C16(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX2R1C8(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

//go:noescape
func f32AVX2R4C8(y *float32, ldy int, x *float32, ldx int, w unsafe.Pointer, ldw, k int)

var (
	haveAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
	haveAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
	// fusedTail makes the portable tail columns use explicit FMAs, so
	// they round like the SIMD tiles beside them.
	fusedTail = haveAVX512 || haveAVX2
)

// ISA names the kernels Mul uses here: avx512, avx2 or go.
func ISA() string {
	switch {
	case !useSIMD:
		return "go"
	case haveAVX512:
		return "avx512"
	case haveAVX2:
		return "avx2"
	}
	return "go"
}

// useSIMD can be turned off by tests to run the portable path.
var useSIMD = true

var sets = func() (s [3][2]kernelSet) {
	s[BF16][0] = kernelSet{ok: true, panel: 128, c1: 128, c4: 64, ct: 16, r1: bf16AVX512R1C128, r4: bf16AVX512R4C64, r1t: bf16AVX512R1C16, r4t: bf16AVX512R4C16}
	s[F16][0] = kernelSet{ok: true, panel: 128, c1: 128, c4: 64, ct: 16, r1: f16AVX512R1C128, r4: f16AVX512R4C64, r1t: f16AVX512R1C16, r4t: f16AVX512R4C16}
	s[F32][0] = kernelSet{ok: true, panel: 128, c1: 128, c4: 64, ct: 16, r1: f32AVX512R1C128, r4: f32AVX512R4C64, r1t: f32AVX512R1C16, r4t: f32AVX512R4C16}
	s[BF16][1] = kernelSet{ok: true, panel: 64, c1: 64, c4: 16, ct: 8, r1: bf16AVX2R1C64, r4: bf16AVX2R4C16, r1t: bf16AVX2R1C8, r4t: bf16AVX2R4C8}
	s[F16][1] = kernelSet{ok: true, panel: 64, c1: 64, c4: 16, ct: 8, r1: f16AVX2R1C64, r4: f16AVX2R4C16, r1t: f16AVX2R1C8, r4t: f16AVX2R4C8}
	s[F32][1] = kernelSet{ok: true, panel: 64, c1: 64, c4: 16, ct: 8, r1: f32AVX2R1C64, r4: f32AVX2R4C16, r1t: f32AVX2R1C8, r4t: f32AVX2R4C8}
	return s
}()

// kernelsFor returns the kernels for dt on this CPU.
func kernelsFor(dt DType) *kernelSet {
	switch {
	case !useSIMD:
	case haveAVX512:
		return &sets[dt][0]
	case haveAVX2:
		return &sets[dt][1]
	}
	return &portable
}
