//go:build amd64 && !purego

#include "textflag.h"

// AVX2 kernels of the two resampling passes and of the YCbCr to RGB
// conversion (see resample_amd64.go for their contracts). Operand order is Go's: the destination last. The sums
// are exact 32-bit integers, as in the Go passes; VPACKSSDW then
// VPACKUSWB clamp them to 0..255 as clip8 does.

// half of the fixed-point unit, 1<<(precision-1)
DATA half<>+0(SB)/4, $0x200000
GLOBL half<>(SB), RODATA|NOPTR, $4

// VPSHUFB masks that spread the RGB bytes of pixels 0 and 1 (shuf01), or
// 2 and 3 (shuf23), of 12 bytes broadcast to both lanes into zero-extended
// dwords: lane 0 gets R, G, B, 0 of the first pixel, lane 1 of the second.
DATA shuf01<>+0(SB)/8, $0x8080800180808000
DATA shuf01<>+8(SB)/8, $0x8080808080808002
DATA shuf01<>+16(SB)/8, $0x8080800480808003
DATA shuf01<>+24(SB)/8, $0x8080808080808005
GLOBL shuf01<>(SB), RODATA|NOPTR, $32
DATA shuf23<>+0(SB)/8, $0x8080800780808006
DATA shuf23<>+8(SB)/8, $0x8080808080808008
DATA shuf23<>+16(SB)/8, $0x8080800a80808009
DATA shuf23<>+24(SB)/8, $0x808080808080800b
GLOBL shuf23<>(SB), RODATA|NOPTR, $32

// the dword order that undoes the lane interleaving of the two packs
// (package-global: jpeg_amd64.s, built with this file, uses it too)
DATA ·unlace+0(SB)/4, $0
DATA ·unlace+4(SB)/4, $4
DATA ·unlace+8(SB)/4, $1
DATA ·unlace+12(SB)/4, $5
DATA ·unlace+16(SB)/4, $2
DATA ·unlace+20(SB)/4, $6
DATA ·unlace+24(SB)/4, $3
DATA ·unlace+28(SB)/4, $7
GLOBL ·unlace(SB), RODATA|NOPTR, $32

// func hpass3AVX2(dst, src *uint8, first *int, wx *int32, k, n int)
TEXT ·hpass3AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ first+16(FP), BX
	MOVQ wx+24(FP), R8
	MOVQ k+32(FP), R9
	MOVQ n+40(FP), CX
	TESTQ CX, CX
	JZ hdone
	VMOVDQU shuf01<>(SB), Y13
	VMOVDQU shuf23<>(SB), Y14
	VPBROADCASTD half<>(SB), X15

hpixel:
	MOVQ (BX), AX
	LEAQ (AX)(AX*2), AX
	LEAQ (SI)(AX*1), R10 // the first tap's pixel
	VPXOR Y0, Y0, Y0
	MOVQ R9, R12

hchunk:
	// four taps: pixels p0..p3 times w0..w3, each weight 4 times in wx
	VBROADCASTI128 (R10), Y1
	VPSHUFB Y13, Y1, Y2
	VPSHUFB Y14, Y1, Y3
	VPMULLD (R8), Y2, Y2
	VPMULLD 32(R8), Y3, Y3
	VPADDD Y2, Y0, Y0
	VPADDD Y3, Y0, Y0
	ADDQ $12, R10
	ADDQ $64, R8
	SUBQ $4, R12
	JNZ hchunk

	// R, G, B sums of the two lanes, rounded and clamped to bytes
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPADDD X15, X0, X0
	VPSRAD $22, X0, X0
	VPACKSSDW X0, X0, X0
	VPACKUSWB X0, X0, X0
	VMOVD X0, (DI) // R, G, B and a 0 the next pixel overwrites
	ADDQ $3, DI
	ADDQ $8, BX
	DECQ CX
	JNZ hpixel

hdone:
	VZEROUPPER
	RET

// func vpassAVX2(out, rows *uint8, stride int, w *int32, k, n int)
TEXT ·vpassAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ rows+8(FP), SI
	MOVQ stride+16(FP), DX
	MOVQ w+24(FP), R8
	MOVQ k+32(FP), R9
	MOVQ n+40(FP), CX
	SHRQ $5, CX
	JZ vdone
	VPBROADCASTD half<>(SB), Y15
	VMOVDQU ·unlace(SB), Y14

vblock:
	// 32 output bytes: four sums of 8
	VMOVDQA Y15, Y0
	VMOVDQA Y15, Y1
	VMOVDQA Y15, Y2
	VMOVDQA Y15, Y3
	MOVQ SI, R10
	MOVQ R8, R11
	MOVQ R9, R12

vtap:
	VPBROADCASTD (R11), Y4
	VPMOVZXBD (R10), Y5
	VPMOVZXBD 8(R10), Y6
	VPMOVZXBD 16(R10), Y7
	VPMOVZXBD 24(R10), Y8
	VPMULLD Y4, Y5, Y5
	VPMULLD Y4, Y6, Y6
	VPMULLD Y4, Y7, Y7
	VPMULLD Y4, Y8, Y8
	VPADDD Y5, Y0, Y0
	VPADDD Y6, Y1, Y1
	VPADDD Y7, Y2, Y2
	VPADDD Y8, Y3, Y3
	ADDQ DX, R10
	ADDQ $4, R11
	DECQ R12
	JNZ vtap

	VPSRAD $22, Y0, Y0
	VPSRAD $22, Y1, Y1
	VPSRAD $22, Y2, Y2
	VPSRAD $22, Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKUSWB Y2, Y0, Y0
	VPERMD Y0, Y14, Y0
	VMOVDQU Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ vblock

vdone:
	VZEROUPPER
	RET

// The YCbCr to RGB conversion of color.YCbCrToRGB, 8 pixels at a time.
// Its sums fit in int32 and its rounding is the sum shifted right by 16
// and clamped to 0..255, which VPSRAD, VPMAXSD and VPMINSD do.

// lane 0 gets chroma bytes 0, 0, 1, 1 as dwords, lane 1 bytes 2, 2, 3, 3,
// of 4 bytes broadcast to every dword: each sample for two pixels
DATA dup2<>+0(SB)/8, $0x8080800080808000
DATA dup2<>+8(SB)/8, $0x8080800180808001
DATA dup2<>+16(SB)/8, $0x8080800280808002
DATA dup2<>+24(SB)/8, $0x8080800380808003
GLOBL dup2<>(SB), RODATA|NOPTR, $32

// R, G, B of four RGBX dwords to 12 bytes, in each lane
DATA rgbx<>+0(SB)/8, $0x0908060504020100
DATA rgbx<>+8(SB)/8, $0x808080800e0d0c0a
DATA rgbx<>+16(SB)/8, $0x0908060504020100
DATA rgbx<>+24(SB)/8, $0x808080800e0d0c0a
GLOBL rgbx<>(SB), RODATA|NOPTR, $32

// func yccAVX2(out, y, cb, cr *uint8, n int, halved bool)
TEXT ·yccAVX2(SB), NOSPLIT, $0-41
	MOVQ out+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ cb+16(FP), BX
	MOVQ cr+24(FP), DX
	MOVQ n+32(FP), CX
	MOVBQZX halved+40(FP), R8
	SHRQ $3, CX
	JZ cdone

	// constants: 0 in Y7, the multipliers in Y8 and Y10..Y14, 255 in Y15
	VPXOR Y7, Y7, Y7
	MOVL $0x10101, AX
	VMOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $128, AX
	VMOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL $91881, AX
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	MOVL $116130, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $22554, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $46802, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $255, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU rgbx<>(SB), Y9

cloop:
	// Y, Cb and Cr of 8 pixels as dwords in Y0, Y1, Y2
	VPMOVZXBD (SI), Y0
	TESTQ R8, R8
	JNZ chalved
	VPMOVZXBD (BX), Y1
	VPMOVZXBD (DX), Y2
	ADDQ $8, BX
	ADDQ $8, DX
	JMP cconvert

chalved:
	VPBROADCASTD (BX), Y1
	VPBROADCASTD (DX), Y2
	VPSHUFB dup2<>(SB), Y1, Y1
	VPSHUFB dup2<>(SB), Y2, Y2
	ADDQ $4, BX
	ADDQ $4, DX

cconvert:
	// yy = Y*0x10101; R = yy + 91881 cr1, G = yy - 22554 cb1 - 46802 cr1,
	// B = yy + 116130 cb1, with cb1 = Cb-128 and cr1 = Cr-128
	VPMULLD Y8, Y0, Y0
	VPSUBD Y10, Y1, Y1
	VPSUBD Y10, Y2, Y2
	VPMULLD Y11, Y2, Y3
	VPADDD Y3, Y0, Y3
	VPMULLD Y12, Y1, Y4
	VPADDD Y4, Y0, Y4
	VPMULLD Y13, Y1, Y5
	VPMULLD Y14, Y2, Y6
	VPSUBD Y5, Y0, Y5
	VPSUBD Y6, Y5, Y5

	// each >>16, clamped to 0..255, as RGBX dwords, then 12 bytes a lane
	VPSRAD $16, Y3, Y3
	VPSRAD $16, Y5, Y5
	VPSRAD $16, Y4, Y4
	VPMAXSD Y7, Y3, Y3
	VPMAXSD Y7, Y5, Y5
	VPMAXSD Y7, Y4, Y4
	VPMINSD Y15, Y3, Y3
	VPMINSD Y15, Y5, Y5
	VPMINSD Y15, Y4, Y4
	VPSLLD $8, Y5, Y5
	VPSLLD $16, Y4, Y4
	VPOR Y5, Y3, Y3
	VPOR Y4, Y3, Y3
	VPSHUFB Y9, Y3, Y3
	VMOVDQU X3, (DI)
	VEXTRACTI128 $1, Y3, X4
	VMOVDQU X4, 12(DI) // and 4 bytes the next pixels overwrite

	ADDQ $8, SI
	ADDQ $24, DI
	DECQ CX
	JNZ cloop

cdone:
	VZEROUPPER
	RET
