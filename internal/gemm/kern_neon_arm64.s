#include "textflag.h"

// The NEON (ASIMD) micro-kernel: an 8×12 tile of C in 24 V registers
// (row i, columns 4j..4j+3 in V(3i+j)), 8 values of packed A per k step in
// V24-V25 and one 12-float row of B in V26-V28; V29 and V30 hold alpha and
// beta. Each k step is 2 loads and 24 FMLAs (by element: row i's A value
// is lane i%4 of V24 or V25), 96 multiply-adds.
//
// Go's arm64 assembler has no by-element FMLA or FMUL (it knows only the
// vector-by-vector VFMLA), so those two are spelled as WORDs by the macros
// below, from the Arm ARM's encodings for single precision (sz = 0, Q = 1):
//
//	FMLA Vd.4S, Vn.4S, Vm.S[i]  0x4F801000 | L<<21 | M:Rm<<16 | H<<11 | Rn<<5 | Rd
//	FMUL Vd.4S, Vn.4S, Vm.S[i]  0x4F809000 | (same fields)
//
// with i = H:L and M:Rm the 5-bit register number m.

// FMLAE: V(d) += V(n) * V(m).S[i]
#define FMLAE(d, n, m, i) WORD $(0x4F801000 | (((i)&1)<<21) | (((i)>>1)<<11) | ((m)<<16) | ((n)<<5) | (d))

// FMULE: V(d) = V(n) * V(m).S[i]
#define FMULE(d, n, m, i) WORD $(0x4F809000 | (((i)&1)<<21) | (((i)>>1)<<11) | ((m)<<16) | ((n)<<5) | (d))

// func kernNEON(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)
//
// C[8×12] = alpha·Ap·B + beta·C; beta == 0 (either sign) does not read C.
// kc >= 1; a holds kc groups of 8 floats; b has kc rows of 12 floats, ldb
// floats apart; c has 8 rows of 12 floats, ldc floats apart.
TEXT ·kernNEON(SB), NOSPLIT, $0-56
	MOVD kc+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD c+24(FP), R3
	MOVD ldb+32(FP), R4
	LSL $2, R4, R4
	MOVD ldc+40(FP), R5
	LSL $2, R5, R5

	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

loop:
	VLD1.P 32(R1), [V24.S4, V25.S4]
	VLD1 (R2), [V26.S4, V27.S4, V28.S4]
	ADD R4, R2, R2
	FMLAE(0, 26, 24, 0)
	FMLAE(1, 27, 24, 0)
	FMLAE(2, 28, 24, 0)
	FMLAE(3, 26, 24, 1)
	FMLAE(4, 27, 24, 1)
	FMLAE(5, 28, 24, 1)
	FMLAE(6, 26, 24, 2)
	FMLAE(7, 27, 24, 2)
	FMLAE(8, 28, 24, 2)
	FMLAE(9, 26, 24, 3)
	FMLAE(10, 27, 24, 3)
	FMLAE(11, 28, 24, 3)
	FMLAE(12, 26, 25, 0)
	FMLAE(13, 27, 25, 0)
	FMLAE(14, 28, 25, 0)
	FMLAE(15, 26, 25, 1)
	FMLAE(16, 27, 25, 1)
	FMLAE(17, 28, 25, 1)
	FMLAE(18, 26, 25, 2)
	FMLAE(19, 27, 25, 2)
	FMLAE(20, 28, 25, 2)
	FMLAE(21, 26, 25, 3)
	FMLAE(22, 27, 25, 3)
	FMLAE(23, 28, 25, 3)
	SUBS $1, R0, R0
	BNE loop

	FMOVS alpha+48(FP), F29
	MOVWU beta+52(FP), R6
	ANDW $0x7fffffff, R6, R6
	CBZW R6, nobeta
	FMOVS beta+52(FP), F30

	// row 0: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(0, 0, 29, 0)
	FMULE(1, 1, 29, 0)
	FMULE(2, 2, 29, 0)
	FMLAE(0, 24, 30, 0)
	FMLAE(1, 25, 30, 0)
	FMLAE(2, 26, 30, 0)
	VST1 [V0.S4, V1.S4, V2.S4], (R3)
	ADD R5, R3, R3
	// row 1: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(3, 3, 29, 0)
	FMULE(4, 4, 29, 0)
	FMULE(5, 5, 29, 0)
	FMLAE(3, 24, 30, 0)
	FMLAE(4, 25, 30, 0)
	FMLAE(5, 26, 30, 0)
	VST1 [V3.S4, V4.S4, V5.S4], (R3)
	ADD R5, R3, R3
	// row 2: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(6, 6, 29, 0)
	FMULE(7, 7, 29, 0)
	FMULE(8, 8, 29, 0)
	FMLAE(6, 24, 30, 0)
	FMLAE(7, 25, 30, 0)
	FMLAE(8, 26, 30, 0)
	VST1 [V6.S4, V7.S4, V8.S4], (R3)
	ADD R5, R3, R3
	// row 3: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(9, 9, 29, 0)
	FMULE(10, 10, 29, 0)
	FMULE(11, 11, 29, 0)
	FMLAE(9, 24, 30, 0)
	FMLAE(10, 25, 30, 0)
	FMLAE(11, 26, 30, 0)
	VST1 [V9.S4, V10.S4, V11.S4], (R3)
	ADD R5, R3, R3
	// row 4: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(12, 12, 29, 0)
	FMULE(13, 13, 29, 0)
	FMULE(14, 14, 29, 0)
	FMLAE(12, 24, 30, 0)
	FMLAE(13, 25, 30, 0)
	FMLAE(14, 26, 30, 0)
	VST1 [V12.S4, V13.S4, V14.S4], (R3)
	ADD R5, R3, R3
	// row 5: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(15, 15, 29, 0)
	FMULE(16, 16, 29, 0)
	FMULE(17, 17, 29, 0)
	FMLAE(15, 24, 30, 0)
	FMLAE(16, 25, 30, 0)
	FMLAE(17, 26, 30, 0)
	VST1 [V15.S4, V16.S4, V17.S4], (R3)
	ADD R5, R3, R3
	// row 6: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(18, 18, 29, 0)
	FMULE(19, 19, 29, 0)
	FMULE(20, 20, 29, 0)
	FMLAE(18, 24, 30, 0)
	FMLAE(19, 25, 30, 0)
	FMLAE(20, 26, 30, 0)
	VST1 [V18.S4, V19.S4, V20.S4], (R3)
	ADD R5, R3, R3
	// row 7: C = alpha·acc + beta·C
	VLD1 (R3), [V24.S4, V25.S4, V26.S4]
	FMULE(21, 21, 29, 0)
	FMULE(22, 22, 29, 0)
	FMULE(23, 23, 29, 0)
	FMLAE(21, 24, 30, 0)
	FMLAE(22, 25, 30, 0)
	FMLAE(23, 26, 30, 0)
	VST1 [V21.S4, V22.S4, V23.S4], (R3)
	RET

nobeta:
	FMULE(0, 0, 29, 0)
	FMULE(1, 1, 29, 0)
	FMULE(2, 2, 29, 0)
	VST1 [V0.S4, V1.S4, V2.S4], (R3)
	ADD R5, R3, R3
	FMULE(3, 3, 29, 0)
	FMULE(4, 4, 29, 0)
	FMULE(5, 5, 29, 0)
	VST1 [V3.S4, V4.S4, V5.S4], (R3)
	ADD R5, R3, R3
	FMULE(6, 6, 29, 0)
	FMULE(7, 7, 29, 0)
	FMULE(8, 8, 29, 0)
	VST1 [V6.S4, V7.S4, V8.S4], (R3)
	ADD R5, R3, R3
	FMULE(9, 9, 29, 0)
	FMULE(10, 10, 29, 0)
	FMULE(11, 11, 29, 0)
	VST1 [V9.S4, V10.S4, V11.S4], (R3)
	ADD R5, R3, R3
	FMULE(12, 12, 29, 0)
	FMULE(13, 13, 29, 0)
	FMULE(14, 14, 29, 0)
	VST1 [V12.S4, V13.S4, V14.S4], (R3)
	ADD R5, R3, R3
	FMULE(15, 15, 29, 0)
	FMULE(16, 16, 29, 0)
	FMULE(17, 17, 29, 0)
	VST1 [V15.S4, V16.S4, V17.S4], (R3)
	ADD R5, R3, R3
	FMULE(18, 18, 29, 0)
	FMULE(19, 19, 29, 0)
	FMULE(20, 20, 29, 0)
	VST1 [V18.S4, V19.S4, V20.S4], (R3)
	ADD R5, R3, R3
	FMULE(21, 21, 29, 0)
	FMULE(22, 22, 29, 0)
	FMULE(23, 23, 29, 0)
	VST1 [V21.S4, V22.S4, V23.S4], (R3)
	RET
