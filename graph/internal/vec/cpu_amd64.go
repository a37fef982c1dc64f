//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// hasAVX2FMA and hasAVX512 report the instruction sets of the two
// assembly implementations, with their register state enabled by the OS
// (x/sys/cpu checks XCR0 for the YMM, and for AVX-512 the ZMM and mask,
// state). The AVX-512 kernels need AVX-512F only; the kernels that have no
// AVX-512 version (StridedMax's stride 2) run their AVX2 one.
var (
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512  = hasAVX2FMA && cpu.X86.HasAVX512F
)
