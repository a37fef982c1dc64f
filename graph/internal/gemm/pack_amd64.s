//go:build !purego

#include "textflag.h"

// FILLBITS_ARGS loads the arguments the fillBits kernels share: DI dst,
// SI src, R8 offs, R9 tabs, R10 kc, R11 npan, R12 the byte of the table
// panel 0 starts in, CX the shift within it.
#define FILLBITS_ARGS \
	MOVQ dst+0(FP), DI \
	MOVQ src+8(FP), SI \
	MOVQ offs+16(FP), R8 \
	MOVQ tabs+24(FP), R9 \
	MOVQ kc+32(FP), R10 \
	MOVQ npan+40(FP), R11 \
	MOVQ q0+48(FP), R12 \
	MOVQ R12, CX \
	ANDQ $7, CX \
	SHRQ $3, R12

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

// func fillBits32AVX512(dst, src *float32, offs *int, tabs *[]uint32, kc, npan, q0 int, tail uint32)
//
// For p < npan and l < kc: dst[p*kc*32 + l*32 + b] = src[offs[l] + p*32 + b]
// where bit q0 + p*32 + b of the table tabs[l] is set (and, in the last
// panel, bit b of tail), 0 where it is clear. A panel's 32 bits are read
// as 8 bytes from byte (q0 + p*32)/8 of the table, shifted by q0%8.
// Masked-off lanes read nothing (zeroing masked loads), so they may lie
// outside src. Panel by panel, row by row: dst is written in order.
TEXT ·fillBits32AVX512(SB), NOSPLIT, $0-60
	FILLBITS_ARGS
	MOVL $0xffffffff, R15
	TESTQ R10, R10
	JZ   fb32_done
	TESTQ R11, R11
	JZ   fb32_done
fb32_panel:
	CMPQ R11, $1
	JNE  fb32_rows
	MOVL tail+56(FP), R15 // the last panel
fb32_rows:
	MOVQ R8, R13
	MOVQ R9, R14
	MOVQ R10, DX
fb32_row:
	MOVQ (R13), AX
	LEAQ (SI)(AX*4), BX  // the row's run for this panel
	MOVQ (R14), AX       // the row's table
	MOVQ (AX)(R12*1), AX
	SHRQ CX, AX
	ANDQ R15, AX
	KMOVW AX, K1
	SHRQ $16, AX
	KMOVW AX, K2
	VMOVUPS.Z (BX), K1, Z0
	VMOVUPS.Z 64(BX), K2, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, DI
	ADDQ $8, R13
	ADDQ $24, R14        // the next slice header
	DECQ DX
	JNZ  fb32_row
	ADDQ $128, SI        // the next panel's runs start 32 values on
	ADDQ $4, R12
	DECQ R11
	JNZ  fb32_panel
fb32_done:
	VZEROUPPER
	RET

// The bit of each lane of a 16-column panel, for fillBits16AVX2.
DATA fbBits<>+0(SB)/4, $1
DATA fbBits<>+4(SB)/4, $2
DATA fbBits<>+8(SB)/4, $4
DATA fbBits<>+12(SB)/4, $8
DATA fbBits<>+16(SB)/4, $16
DATA fbBits<>+20(SB)/4, $32
DATA fbBits<>+24(SB)/4, $64
DATA fbBits<>+28(SB)/4, $128
DATA fbBits<>+32(SB)/4, $256
DATA fbBits<>+36(SB)/4, $512
DATA fbBits<>+40(SB)/4, $1024
DATA fbBits<>+44(SB)/4, $2048
DATA fbBits<>+48(SB)/4, $4096
DATA fbBits<>+52(SB)/4, $8192
DATA fbBits<>+56(SB)/4, $16384
DATA fbBits<>+60(SB)/4, $32768
GLOBL fbBits<>(SB), RODATA|NOPTR, $64

// func fillBits16AVX2(dst, src *float32, offs *int, tabs *[]uint32, kc, npan, q0 int, tail uint32)
//
// fillBits32AVX512 for panels of 16 columns: a panel's 16 bits become
// lane masks (broadcast, AND with the lane's bit, compare) for two
// VMASKMOVPS loads, which read nothing in masked-off lanes.
TEXT ·fillBits16AVX2(SB), NOSPLIT, $0-60
	FILLBITS_ARGS
	MOVL $0xffff, R15
	TESTQ R10, R10
	JZ   fb16_done
	TESTQ R11, R11
	JZ   fb16_done
	VMOVDQU fbBits<>+0(SB), Y14
	VMOVDQU fbBits<>+32(SB), Y15
fb16_panel:
	CMPQ R11, $1
	JNE  fb16_rows
	MOVL tail+56(FP), R15
fb16_rows:
	MOVQ R8, R13
	MOVQ R9, R14
	MOVQ R10, DX
fb16_row:
	MOVQ (R13), AX
	LEAQ (SI)(AX*4), BX
	MOVQ (R14), AX
	MOVQ (AX)(R12*1), AX
	SHRQ CX, AX
	ANDQ R15, AX
	MOVQ AX, X2
	VPBROADCASTD X2, Y2
	VPAND    Y14, Y2, Y3
	VPCMPEQD Y14, Y3, Y3
	VPAND    Y15, Y2, Y4
	VPCMPEQD Y15, Y4, Y4
	VMASKMOVPS (BX), Y3, Y0
	VMASKMOVPS 32(BX), Y4, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $8, R13
	ADDQ $24, R14
	DECQ DX
	JNZ  fb16_row
	ADDQ $64, SI
	ADDQ $2, R12
	DECQ R11
	JNZ  fb16_panel
fb16_done:
	VZEROUPPER
	RET
