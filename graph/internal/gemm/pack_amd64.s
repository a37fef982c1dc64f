//go:build !purego

#include "textflag.h"

// func packB16AVX(dst, src *float32, kc, panels, ldb int)
//
// For l < kc and p < panels: dst[p*kc*16 + l*16 : +16] =
// src[l*ldb + p*16 : +16]. Reads each row of B in order (so the hardware
// prefetcher follows), writes one 64-byte line per panel and row.
TEXT ·packB16AVX(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ kc+16(FP), CX
	MOVQ panels+24(FP), BX
	MOVQ ldb+32(FP), R8
	SHLQ $2, R8          // row stride of B in bytes
	MOVQ CX, R9
	SHLQ $6, R9          // panel stride of dst in bytes: kc*64
	TESTQ CX, CX
	JZ   done
	TESTQ BX, BX
	JZ   done

row:
	MOVQ SI, R10 // source: row l, panel 0
	MOVQ DI, R11 // destination: panel 0, step l
	MOVQ BX, DX

panel:
	VMOVUPS (R10), Y0
	VMOVUPS 32(R10), Y1
	VMOVUPS Y0, (R11)
	VMOVUPS Y1, 32(R11)
	ADDQ $64, R10
	ADDQ R9, R11
	DECQ DX
	JNZ  panel

	ADDQ R8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  row

done:
	VZEROUPPER
	RET
