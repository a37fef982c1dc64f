//go:build amd64 && !purego

#include "textflag.h"

// AVX2 inverse DCT of libjpeg's JDCT_ISLOW method, bit for bit the Go
// idctIslow: the same 32-bit integer steps, eight columns (then, after a
// transpose, eight rows) at a time. Operand order is Go's: the
// destination last.

// the factorization's constants (see jpeg_idct.go) and the rounding
// terms of the two passes, eight lanes each
DATA k0541<>+0(SB)/4, $0x1151
DATA k0541<>+4(SB)/4, $0x1151
DATA k0541<>+8(SB)/4, $0x1151
DATA k0541<>+12(SB)/4, $0x1151
DATA k0541<>+16(SB)/4, $0x1151
DATA k0541<>+20(SB)/4, $0x1151
DATA k0541<>+24(SB)/4, $0x1151
DATA k0541<>+28(SB)/4, $0x1151
GLOBL k0541<>(SB), RODATA|NOPTR, $32
DATA kn1847<>+0(SB)/4, $0xffffc4df
DATA kn1847<>+4(SB)/4, $0xffffc4df
DATA kn1847<>+8(SB)/4, $0xffffc4df
DATA kn1847<>+12(SB)/4, $0xffffc4df
DATA kn1847<>+16(SB)/4, $0xffffc4df
DATA kn1847<>+20(SB)/4, $0xffffc4df
DATA kn1847<>+24(SB)/4, $0xffffc4df
DATA kn1847<>+28(SB)/4, $0xffffc4df
GLOBL kn1847<>(SB), RODATA|NOPTR, $32
DATA k0765<>+0(SB)/4, $0x187e
DATA k0765<>+4(SB)/4, $0x187e
DATA k0765<>+8(SB)/4, $0x187e
DATA k0765<>+12(SB)/4, $0x187e
DATA k0765<>+16(SB)/4, $0x187e
DATA k0765<>+20(SB)/4, $0x187e
DATA k0765<>+24(SB)/4, $0x187e
DATA k0765<>+28(SB)/4, $0x187e
GLOBL k0765<>(SB), RODATA|NOPTR, $32
DATA k1175<>+0(SB)/4, $0x25a1
DATA k1175<>+4(SB)/4, $0x25a1
DATA k1175<>+8(SB)/4, $0x25a1
DATA k1175<>+12(SB)/4, $0x25a1
DATA k1175<>+16(SB)/4, $0x25a1
DATA k1175<>+20(SB)/4, $0x25a1
DATA k1175<>+24(SB)/4, $0x25a1
DATA k1175<>+28(SB)/4, $0x25a1
GLOBL k1175<>(SB), RODATA|NOPTR, $32
DATA k0298<>+0(SB)/4, $0x98e
DATA k0298<>+4(SB)/4, $0x98e
DATA k0298<>+8(SB)/4, $0x98e
DATA k0298<>+12(SB)/4, $0x98e
DATA k0298<>+16(SB)/4, $0x98e
DATA k0298<>+20(SB)/4, $0x98e
DATA k0298<>+24(SB)/4, $0x98e
DATA k0298<>+28(SB)/4, $0x98e
GLOBL k0298<>(SB), RODATA|NOPTR, $32
DATA k2053<>+0(SB)/4, $0x41b3
DATA k2053<>+4(SB)/4, $0x41b3
DATA k2053<>+8(SB)/4, $0x41b3
DATA k2053<>+12(SB)/4, $0x41b3
DATA k2053<>+16(SB)/4, $0x41b3
DATA k2053<>+20(SB)/4, $0x41b3
DATA k2053<>+24(SB)/4, $0x41b3
DATA k2053<>+28(SB)/4, $0x41b3
GLOBL k2053<>(SB), RODATA|NOPTR, $32
DATA k3072<>+0(SB)/4, $0x6254
DATA k3072<>+4(SB)/4, $0x6254
DATA k3072<>+8(SB)/4, $0x6254
DATA k3072<>+12(SB)/4, $0x6254
DATA k3072<>+16(SB)/4, $0x6254
DATA k3072<>+20(SB)/4, $0x6254
DATA k3072<>+24(SB)/4, $0x6254
DATA k3072<>+28(SB)/4, $0x6254
GLOBL k3072<>(SB), RODATA|NOPTR, $32
DATA k1501<>+0(SB)/4, $0x300b
DATA k1501<>+4(SB)/4, $0x300b
DATA k1501<>+8(SB)/4, $0x300b
DATA k1501<>+12(SB)/4, $0x300b
DATA k1501<>+16(SB)/4, $0x300b
DATA k1501<>+20(SB)/4, $0x300b
DATA k1501<>+24(SB)/4, $0x300b
DATA k1501<>+28(SB)/4, $0x300b
GLOBL k1501<>(SB), RODATA|NOPTR, $32
DATA kn0899<>+0(SB)/4, $0xffffe333
DATA kn0899<>+4(SB)/4, $0xffffe333
DATA kn0899<>+8(SB)/4, $0xffffe333
DATA kn0899<>+12(SB)/4, $0xffffe333
DATA kn0899<>+16(SB)/4, $0xffffe333
DATA kn0899<>+20(SB)/4, $0xffffe333
DATA kn0899<>+24(SB)/4, $0xffffe333
DATA kn0899<>+28(SB)/4, $0xffffe333
GLOBL kn0899<>(SB), RODATA|NOPTR, $32
DATA kn2562<>+0(SB)/4, $0xffffadfd
DATA kn2562<>+4(SB)/4, $0xffffadfd
DATA kn2562<>+8(SB)/4, $0xffffadfd
DATA kn2562<>+12(SB)/4, $0xffffadfd
DATA kn2562<>+16(SB)/4, $0xffffadfd
DATA kn2562<>+20(SB)/4, $0xffffadfd
DATA kn2562<>+24(SB)/4, $0xffffadfd
DATA kn2562<>+28(SB)/4, $0xffffadfd
GLOBL kn2562<>(SB), RODATA|NOPTR, $32
DATA kn1961<>+0(SB)/4, $0xffffc13b
DATA kn1961<>+4(SB)/4, $0xffffc13b
DATA kn1961<>+8(SB)/4, $0xffffc13b
DATA kn1961<>+12(SB)/4, $0xffffc13b
DATA kn1961<>+16(SB)/4, $0xffffc13b
DATA kn1961<>+20(SB)/4, $0xffffc13b
DATA kn1961<>+24(SB)/4, $0xffffc13b
DATA kn1961<>+28(SB)/4, $0xffffc13b
GLOBL kn1961<>(SB), RODATA|NOPTR, $32
DATA kn0390<>+0(SB)/4, $0xfffff384
DATA kn0390<>+4(SB)/4, $0xfffff384
DATA kn0390<>+8(SB)/4, $0xfffff384
DATA kn0390<>+12(SB)/4, $0xfffff384
DATA kn0390<>+16(SB)/4, $0xfffff384
DATA kn0390<>+20(SB)/4, $0xfffff384
DATA kn0390<>+24(SB)/4, $0xfffff384
DATA kn0390<>+28(SB)/4, $0xfffff384
GLOBL kn0390<>(SB), RODATA|NOPTR, $32
DATA round1<>+0(SB)/4, $0x400
DATA round1<>+4(SB)/4, $0x400
DATA round1<>+8(SB)/4, $0x400
DATA round1<>+12(SB)/4, $0x400
DATA round1<>+16(SB)/4, $0x400
DATA round1<>+20(SB)/4, $0x400
DATA round1<>+24(SB)/4, $0x400
DATA round1<>+28(SB)/4, $0x400
GLOBL round1<>(SB), RODATA|NOPTR, $32
DATA round2<>+0(SB)/4, $0x2020000
DATA round2<>+4(SB)/4, $0x2020000
DATA round2<>+8(SB)/4, $0x2020000
DATA round2<>+12(SB)/4, $0x2020000
DATA round2<>+16(SB)/4, $0x2020000
DATA round2<>+20(SB)/4, $0x2020000
DATA round2<>+24(SB)/4, $0x2020000
DATA round2<>+28(SB)/4, $0x2020000
GLOBL round2<>(SB), RODATA|NOPTR, $32

// IDCT8 is the 8-point inverse DCT of Y0..Y7 (x0..x7) into Y8..Y15
// (o0..o7) before descaling, as idct8; it overwrites Y0..Y7.
#define IDCT8 \
	VPADDD    Y6, Y2, Y8 \
	VPMULLD   k0541<>(SB), Y8, Y8 \
	VPMULLD   kn1847<>(SB), Y6, Y9 \
	VPADDD    Y9, Y8, Y9 \
	VPMULLD   k0765<>(SB), Y2, Y10 \
	VPADDD    Y10, Y8, Y10 \
	VPADDD    Y4, Y0, Y11 \
	VPSLLD    $13, Y11, Y11 \
	VPSUBD    Y4, Y0, Y12 \
	VPSLLD    $13, Y12, Y12 \
	VPADDD    Y10, Y11, Y0 \
	VPSUBD    Y10, Y11, Y6 \
	VPADDD    Y9, Y12, Y2 \
	VPSUBD    Y9, Y12, Y4 \
	VPADDD    Y1, Y7, Y8 \
	VPADDD    Y3, Y5, Y9 \
	VPADDD    Y3, Y7, Y10 \
	VPADDD    Y1, Y5, Y11 \
	VPADDD    Y11, Y10, Y12 \
	VPMULLD   k1175<>(SB), Y12, Y12 \
	VPMULLD   k0298<>(SB), Y7, Y7 \
	VPMULLD   k2053<>(SB), Y5, Y5 \
	VPMULLD   k3072<>(SB), Y3, Y3 \
	VPMULLD   k1501<>(SB), Y1, Y1 \
	VPMULLD   kn0899<>(SB), Y8, Y8 \
	VPMULLD   kn2562<>(SB), Y9, Y9 \
	VPMULLD   kn1961<>(SB), Y10, Y10 \
	VPADDD    Y12, Y10, Y10 \
	VPMULLD   kn0390<>(SB), Y11, Y11 \
	VPADDD    Y12, Y11, Y11 \
	VPADDD    Y8, Y7, Y7 \
	VPADDD    Y10, Y7, Y7 \
	VPADDD    Y9, Y5, Y5 \
	VPADDD    Y11, Y5, Y5 \
	VPADDD    Y9, Y3, Y3 \
	VPADDD    Y10, Y3, Y3 \
	VPADDD    Y8, Y1, Y1 \
	VPADDD    Y11, Y1, Y1 \
	VPADDD    Y1, Y0, Y8 \
	VPSUBD    Y1, Y0, Y15 \
	VPADDD    Y3, Y2, Y9 \
	VPSUBD    Y3, Y2, Y14 \
	VPADDD    Y5, Y4, Y10 \
	VPSUBD    Y5, Y4, Y13 \
	VPADDD    Y7, Y6, Y11 \
	VPSUBD    Y7, Y6, Y12

// DESCALE adds the rounding term r to Y8..Y15 and shifts them right by s.
#define DESCALE(r, s) \
	VMOVDQU   r, Y0 \
	VPADDD    Y0, Y8, Y8 \
	VPADDD    Y0, Y9, Y9 \
	VPADDD    Y0, Y10, Y10 \
	VPADDD    Y0, Y11, Y11 \
	VPADDD    Y0, Y12, Y12 \
	VPADDD    Y0, Y13, Y13 \
	VPADDD    Y0, Y14, Y14 \
	VPADDD    Y0, Y15, Y15 \
	VPSRAD    s, Y8, Y8 \
	VPSRAD    s, Y9, Y9 \
	VPSRAD    s, Y10, Y10 \
	VPSRAD    s, Y11, Y11 \
	VPSRAD    s, Y12, Y12 \
	VPSRAD    s, Y13, Y13 \
	VPSRAD    s, Y14, Y14 \
	VPSRAD    s, Y15, Y15

// TRANSPOSE transposes the 8x8 dwords of Y8..Y15 (row i in Y8+i) into
// Y0..Y7 (column i in Yi).
#define TRANSPOSE \
	VPUNPCKLDQ  Y9, Y8, Y0 \
	VPUNPCKHDQ  Y9, Y8, Y1 \
	VPUNPCKLDQ  Y11, Y10, Y2 \
	VPUNPCKHDQ  Y11, Y10, Y3 \
	VPUNPCKLDQ  Y13, Y12, Y4 \
	VPUNPCKHDQ  Y13, Y12, Y5 \
	VPUNPCKLDQ  Y15, Y14, Y6 \
	VPUNPCKHDQ  Y15, Y14, Y7 \
	VPUNPCKLQDQ Y2, Y0, Y8 \
	VPUNPCKHQDQ Y2, Y0, Y9 \
	VPUNPCKLQDQ Y3, Y1, Y10 \
	VPUNPCKHQDQ Y3, Y1, Y11 \
	VPUNPCKLQDQ Y6, Y4, Y12 \
	VPUNPCKHQDQ Y6, Y4, Y13 \
	VPUNPCKLQDQ Y7, Y5, Y14 \
	VPUNPCKHQDQ Y7, Y5, Y15 \
	VPERM2I128  $0x20, Y12, Y8, Y0 \
	VPERM2I128  $0x31, Y12, Y8, Y4 \
	VPERM2I128  $0x20, Y13, Y9, Y1 \
	VPERM2I128  $0x31, Y13, Y9, Y5 \
	VPERM2I128  $0x20, Y14, Y10, Y2 \
	VPERM2I128  $0x31, Y14, Y10, Y6 \
	VPERM2I128  $0x20, Y15, Y11, Y3 \
	VPERM2I128  $0x31, Y15, Y11, Y7

// STORE4 packs the dword rows a, b, c, d to bytes, saturated to 0..255
// as clamp8 does, and stores them 8 bytes each at DI, DI+SI, DI+2*SI and
// DI+BX (3*SI), with Y15 holding ·unlace (resample_amd64.s: the dword
// order that undoes the lane interleaving of the two packs).
#define STORE4(a, b, c, d) \
	VPACKSSDW    b, a, Y8 \
	VPACKSSDW    d, c, Y9 \
	VPACKUSWB    Y9, Y8, Y8 \
	VPERMD       Y8, Y15, Y8 \
	VEXTRACTI128 $1, Y8, X9 \
	VMOVQ        X8, (DI) \
	VPEXTRQ      $1, X8, (DI)(SI*1) \
	VMOVQ        X9, (DI)(SI*2) \
	VPEXTRQ      $1, X9, (DI)(BX*1)

// func idctIslowAVX2(blk *[64]int32, dst *uint8, stride int)
TEXT ·idctIslowAVX2(SB), NOSPLIT, $0-24
	MOVQ blk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ stride+16(FP), SI
	VMOVDQU 0(AX), Y0
	VMOVDQU 32(AX), Y1
	VMOVDQU 64(AX), Y2
	VMOVDQU 96(AX), Y3
	VMOVDQU 128(AX), Y4
	VMOVDQU 160(AX), Y5
	VMOVDQU 192(AX), Y6
	VMOVDQU 224(AX), Y7
	// columns: register i holds row i of the block
	IDCT8
	DESCALE(round1<>(SB), $11)
	TRANSPOSE
	// rows: register i holds column i of the workspace
	IDCT8
	DESCALE(round2<>(SB), $18)
	TRANSPOSE
	// Y0..Y7 are the output rows as dwords.
	VMOVDQU    ·unlace(SB), Y15
	LEAQ       (SI)(SI*2), BX
	STORE4(Y0, Y1, Y2, Y3)
	LEAQ       (DI)(SI*4), DI
	STORE4(Y4, Y5, Y6, Y7)
	VZEROUPPER
	RET
