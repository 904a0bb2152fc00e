#include "textflag.h"

// Every kernel keeps one FMA chain per output element and sums rows in
// increasing order, as one element of package gemm's blocked AVX
// micro-kernels does, so paged attention rounds like a GEMM-based
// attention. Independent columns run side by side to hide FMA latency.

// func vecMat64(y, a, x *float32, rows, ldx int)
// y[0:64] = fma-chain over i of a[i]·x[i·ldx : i·ldx+64], starting from y.
TEXT ·vecMat64(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), CX
	MOVQ ldx+32(FP), R8
	SHLQ $2, R8
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7

loop64:
	CMPQ CX, $0
	JEQ  done64
	VBROADCASTSS 0(SI), Y8
	VFMADD231PS 0(DX), Y8, Y0
	VFMADD231PS 32(DX), Y8, Y1
	VFMADD231PS 64(DX), Y8, Y2
	VFMADD231PS 96(DX), Y8, Y3
	VFMADD231PS 128(DX), Y8, Y4
	VFMADD231PS 160(DX), Y8, Y5
	VFMADD231PS 192(DX), Y8, Y6
	VFMADD231PS 224(DX), Y8, Y7
	ADDQ $4, SI
	ADDQ R8, DX
	DECQ CX
	JMP  loop64

done64:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	VZEROUPPER
	RET

// func vecMat32(y, a, x *float32, rows, ldx int)
// y[0:32] = fma-chain over i of a[i]·x[i·ldx : i·ldx+32], starting from y.
TEXT ·vecMat32(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), CX
	MOVQ ldx+32(FP), R8
	SHLQ $2, R8
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3

loop32:
	CMPQ CX, $0
	JEQ  done32
	VBROADCASTSS 0(SI), Y8
	VFMADD231PS 0(DX), Y8, Y0
	VFMADD231PS 32(DX), Y8, Y1
	VFMADD231PS 64(DX), Y8, Y2
	VFMADD231PS 96(DX), Y8, Y3
	ADDQ $4, SI
	ADDQ R8, DX
	DECQ CX
	JMP  loop32

done32:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VZEROUPPER
	RET

// func vecMat8(y, a, x *float32, rows, ldx int)
// y[0:8] = fma-chain over i of a[i]·x[i·ldx : i·ldx+8], starting from y.
TEXT ·vecMat8(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), CX
	MOVQ ldx+32(FP), R8
	SHLQ $2, R8
	VMOVUPS 0(DI), Y0

loop8:
	CMPQ CX, $0
	JEQ  done8
	VBROADCASTSS 0(SI), Y8
	VFMADD231PS (DX), Y8, Y0
	ADDQ $4, SI
	ADDQ R8, DX
	DECQ CX
	JMP  loop8

done8:
	VMOVUPS Y0, 0(DI)
	VZEROUPPER
	RET

// func vecMat4x16(y, a, x0, x1, x2, x3 *float32, rows, ldx int)
// y[16s : 16s+16] = Σ_i a[i]·xs[i·ldx : i·ldx+16] for s = 0…3, from zero:
// four 16-column strips with their own base pointers (four KV blocks, or
// the halves of two), eight chains in flight.
TEXT ·vecMat4x16(SB), NOSPLIT, $0-64
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ x0+16(FP), R9
	MOVQ x1+24(FP), R10
	MOVQ x2+32(FP), R11
	MOVQ x3+40(FP), R12
	MOVQ rows+48(FP), CX
	MOVQ ldx+56(FP), R8
	SHLQ $2, R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

loop4x16:
	CMPQ CX, $0
	JEQ  done4x16
	VBROADCASTSS 0(SI), Y8
	VFMADD231PS 0(R9), Y8, Y0
	VFMADD231PS 32(R9), Y8, Y1
	VFMADD231PS 0(R10), Y8, Y2
	VFMADD231PS 32(R10), Y8, Y3
	VFMADD231PS 0(R11), Y8, Y4
	VFMADD231PS 32(R11), Y8, Y5
	VFMADD231PS 0(R12), Y8, Y6
	VFMADD231PS 32(R12), Y8, Y7
	ADDQ $4, SI
	ADDQ R8, R9
	ADDQ R8, R10
	ADDQ R8, R11
	ADDQ R8, R12
	DECQ CX
	JMP  loop4x16

done4x16:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	VZEROUPPER
	RET
