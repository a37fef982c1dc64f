//go:build amd64 && !purego

#include "textflag.h"

// func planeLanes4(x *float32, size int, lanes *[16]float64)
//
// Y0-Y3 hold the four partial sums of planes 0-3 (lane j: values j,
// j+4, ...); each step converts four values of each plane to float64
// and adds them, so the four planes' chains of additions overlap.
TEXT ·planeLanes4(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ size+8(FP), CX
	MOVQ lanes+16(FP), DI
	LEAQ (SI)(CX*4), R8
	LEAQ (R8)(CX*4), R9
	LEAQ (R9)(CX*4), R10
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $2, CX
	JZ done
	XORQ AX, AX
loop:
	VCVTPS2PD (SI)(AX*1), Y4
	VADDPD Y4, Y0, Y0
	VCVTPS2PD (R8)(AX*1), Y5
	VADDPD Y5, Y1, Y1
	VCVTPS2PD (R9)(AX*1), Y6
	VADDPD Y6, Y2, Y2
	VCVTPS2PD (R10)(AX*1), Y7
	VADDPD Y7, Y3, Y3
	ADDQ $16, AX
	DECQ CX
	JNZ loop
done:
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VZEROUPPER
	RET
