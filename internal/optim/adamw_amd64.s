//go:build amd64

#include "textflag.h"

// func updateAVX2(w, grad, m, v *float32, n int, k *[8]float32)
// AdamW on n elements (a multiple of 8), 8 lanes at a time, with the
// operations, their order and their roundings of updateScalar:
//   m ← b1·m + c1·g,  v ← b2·v + (c2·g)·g
//   w ← w·decay − (step·m) / (√v / bc2 + eps)
// k = {b1, c1 = 1−b1, b2, c2 = 1−b2, bc2, eps, decay, step}; g == nil
// stands for zeros.
TEXT ·updateAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ grad+8(FP), BX
	MOVQ m+16(FP), CX
	MOVQ v+24(FP), DX
	MOVQ n+32(FP), SI
	MOVQ k+40(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	VBROADCASTSS 16(AX), Y12
	VBROADCASTSS 20(AX), Y13
	VBROADCASTSS 24(AX), Y14
	VBROADCASTSS 28(AX), Y15
	SHRQ $3, SI
	JZ   done
	VXORPS Y0, Y0, Y0
loop:
	TESTQ BX, BX
	JZ    nograd
	VMOVUPS (BX), Y0
	ADDQ    $32, BX
nograd:
	VMOVUPS (CX), Y1
	VMOVUPS (DX), Y2
	VMOVUPS (DI), Y3
	VMULPS  Y8, Y1, Y1
	VMULPS  Y9, Y0, Y4
	VADDPS  Y4, Y1, Y1
	VMULPS  Y10, Y2, Y2
	VMULPS  Y11, Y0, Y5
	VMULPS  Y0, Y5, Y5
	VADDPS  Y5, Y2, Y2
	VSQRTPS Y2, Y6
	VDIVPS  Y12, Y6, Y6
	VADDPS  Y13, Y6, Y6
	VMULPS  Y15, Y1, Y7
	VDIVPS  Y6, Y7, Y7
	VMULPS  Y14, Y3, Y3
	VSUBPS  Y7, Y3, Y3
	VMOVUPS Y1, (CX)
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, (DI)
	ADDQ    $32, CX
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    SI
	JNZ     loop
done:
	VZEROUPPER
	RET
