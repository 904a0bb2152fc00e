#include "textflag.h"

// func expShift8(dst, src *float32, n int, m float32, c *float32) int
// dst[j] = e^(src[j] − m) for j < n (a multiple of 8), with the exact
// arithmetic of tensor.Expf (separate multiplies and adds, no FMA), for
// x = src[j] − m ≥ expLo. It returns a nonzero lane mask if some x was
// below expLo or NaN; those lanes hold garbage and the caller fixes them.
// c: log2e, roundMagic, ln2Hi, ln2Lo, expLo, P0…P5, 1, then 8 × int32 127.
TEXT ·expShift8(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), DX
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y15
	MOVQ c+32(FP), SI
	VBROADCASTSS 0(SI), Y14
	VBROADCASTSS 4(SI), Y13
	VBROADCASTSS 8(SI), Y12
	VBROADCASTSS 12(SI), Y11
	VBROADCASTSS 16(SI), Y10
	VBROADCASTSS 20(SI), Y9
	VBROADCASTSS 24(SI), Y8
	VBROADCASTSS 28(SI), Y7
	VBROADCASTSS 32(SI), Y6
	VBROADCASTSS 36(SI), Y5
	VBROADCASTSS 40(SI), Y4
	VBROADCASTSS 44(SI), Y3
	XORQ BX, BX

loop:
	CMPQ CX, $0
	JEQ  done
	VMOVUPS (DX), Y0
	VSUBPS  Y15, Y0, Y0       // x = v − m
	VCMPPS  $0x19, Y10, Y0, Y1 // !(x ≥ expLo), NaN included
	VMOVMSKPS Y1, AX
	ORQ     AX, BX
	VMULPS  Y14, Y0, Y1       // x·log2e
	VADDPS  Y13, Y1, Y1       // + 1.5·2²³
	VSUBPS  Y13, Y1, Y1       // n = round(x·log2e)
	VMULPS  Y12, Y1, Y2
	VSUBPS  Y2, Y0, Y0        // r = x − n·ln2Hi
	VMULPS  Y11, Y1, Y2
	VSUBPS  Y2, Y0, Y0        // r −= n·ln2Lo
	VMULPS  Y0, Y9, Y2        // P0·r
	VADDPS  Y8, Y2, Y2
	VMULPS  Y0, Y2, Y2
	VADDPS  Y7, Y2, Y2
	VMULPS  Y0, Y2, Y2
	VADDPS  Y6, Y2, Y2
	VMULPS  Y0, Y2, Y2
	VADDPS  Y5, Y2, Y2
	VMULPS  Y0, Y2, Y2
	VADDPS  Y4, Y2, Y2        // p
	VMULPS  Y0, Y2, Y2        // p·r
	VMULPS  Y0, Y2, Y2        // ·r
	VADDPS  Y0, Y2, Y2        // + r
	VADDPS  Y3, Y2, Y2        // + 1
	VCVTTPS2DQ Y1, Y1
	VPADDD  48(SI), Y1, Y1
	VPSLLD  $23, Y1, Y1       // 2^n
	VMULPS  Y1, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, DI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JMP     loop

done:
	MOVQ BX, ret+40(FP)
	VZEROUPPER
	RET
