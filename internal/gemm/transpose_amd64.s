#include "textflag.h"

// func transpose8Strip(src *float32, lds int, dst *float32, ldd int, n int)
//
// Transposes n consecutive 8×8 blocks: for q in [0, n) and i, j in [0, 8),
// dst[(8q+i)*ldd + j] = src[j*lds + 8q + i]. Strides are in floats. AVX
// only (unpack, shuffle, 128-bit lane permute), so it runs wherever the
// AVX2 and AVX-512 kernels do.
TEXT ·transpose8Strip(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), SI
	MOVQ lds+8(FP), R8
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), R11
	MOVQ n+32(FP), CX
	SHLQ $2, R8              // source row stride in bytes
	LEAQ (R8)(R8*2), R9      // 3 source rows
	LEAQ (SI)(R8*4), R10     // source row 4
	SHLQ $2, R11             // destination row stride in bytes
	LEAQ (R11)(R11*2), R12   // 3 destination rows
	MOVQ R11, BX
	SHLQ $3, BX             // 8 destination rows
	TESTQ CX, CX
	JZ done

loop:
	LEAQ (DI)(R11*4), R13    // destination row 4
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(R8*1), Y5
	VMOVUPS (R10)(R8*2), Y6
	VMOVUPS (R10)(R9*1), Y7

	VUNPCKLPS Y1, Y0, Y8     // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y9     // a2 b2 a3 b3 | a6 b6 a7 b7
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0   // a0 b0 c0 d0 | a4 b4 c4 d4
	VSHUFPS $0xEE, Y10, Y8, Y1   // a1 b1 c1 d1 | a5 b5 c5 d5
	VSHUFPS $0x44, Y11, Y9, Y2   // a2 .. | a6 ..
	VSHUFPS $0xEE, Y11, Y9, Y3   // a3 .. | a7 ..
	VSHUFPS $0x44, Y14, Y12, Y4  // e0 f0 g0 h0 | e4 ..
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8  // column 0
	VPERM2F128 $0x20, Y5, Y1, Y9  // column 1
	VPERM2F128 $0x20, Y6, Y2, Y10 // column 2
	VPERM2F128 $0x20, Y7, Y3, Y11 // column 3
	VPERM2F128 $0x31, Y4, Y0, Y12 // column 4
	VPERM2F128 $0x31, Y5, Y1, Y13 // column 5
	VPERM2F128 $0x31, Y6, Y2, Y14 // column 6
	VPERM2F128 $0x31, Y7, Y3, Y15 // column 7

	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R11*1)
	VMOVUPS Y10, (DI)(R11*2)
	VMOVUPS Y11, (DI)(R12*1)
	VMOVUPS Y12, (R13)
	VMOVUPS Y13, (R13)(R11*1)
	VMOVUPS Y14, (R13)(R11*2)
	VMOVUPS Y15, (R13)(R12*1)

	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ BX, DI
	DECQ CX
	JNZ loop

done:
	VZEROUPPER
	RET
