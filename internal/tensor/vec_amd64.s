//go:build amd64

#include "textflag.h"

// func addToAVX2(dst, src *float32, n int)
// dst[i] += src[i] for i < n, n a multiple of 8: 32 floats per iteration,
// then 8 at a time.
TEXT ·addToAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, DX
	SHRQ $5, CX
	JZ   tail
loop32:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VADDPS  (SI), Y0, Y0
	VADDPS  32(SI), Y1, Y1
	VADDPS  64(SI), Y2, Y2
	VADDPS  96(SI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, SI
	DECQ    CX
	JNZ     loop32
tail:
	ANDQ $31, DX
	SHRQ $3, DX
	JZ   done
loop8:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    DX
	JNZ     loop8
done:
	VZEROUPPER
	RET

// func geluBackwardAVX2(x, th, dy, dx *float32, n int, overwrite int, k *[5]float32)
// dx[i] (+)= dy[i]·d(x[i], th[i]) for n a multiple of 8, where
//   d = 0.5·(1+t) + (((0.5·x)·(1−t·t))·c)·(1 + (a3·x)·x)
// in geluBackwardScalar's order and roundings; k = {0.5, 1, c = √(2/π),
// a3 = 3·0.044715, unused}. overwrite != 0 stores instead of adding.
TEXT ·geluBackwardAVX2(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ th+8(FP), BX
	MOVQ dy+16(FP), CX
	MOVQ dx+24(FP), DI
	MOVQ n+32(FP), DX
	MOVQ overwrite+40(FP), R8
	MOVQ k+48(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	SHRQ $3, DX
	JZ   gdone
gloop:
	VMOVUPS (SI), Y0          // x
	VMOVUPS (BX), Y1          // t
	VADDPS  Y9, Y1, Y2        // 1+t
	VMULPS  Y2, Y8, Y2        // a = 0.5·(1+t)
	VMULPS  Y1, Y1, Y3        // t·t
	VSUBPS  Y3, Y9, Y3        // 1−t·t
	VMULPS  Y0, Y8, Y4        // 0.5·x
	VMULPS  Y3, Y4, Y4        // (0.5·x)·(1−t·t)
	VMULPS  Y10, Y4, Y4       // ·c
	VMULPS  Y0, Y11, Y5       // a3·x
	VMULPS  Y0, Y5, Y5        // (a3·x)·x
	VADDPS  Y5, Y9, Y5        // 1 + ...
	VMULPS  Y5, Y4, Y4        // b
	VADDPS  Y4, Y2, Y2        // d = a + b
	VMULPS  (CX), Y2, Y2      // dy·d
	TESTQ   R8, R8
	JNZ     gstore
	VADDPS  (DI), Y2, Y2      // dx + dy·d
gstore:
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, BX
	ADDQ    $32, CX
	ADDQ    $32, DI
	DECQ    DX
	JNZ     gloop
gdone:
	VZEROUPPER
	RET
