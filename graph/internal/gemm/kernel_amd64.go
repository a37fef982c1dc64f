//go:build !purego

package gemm

import "golang.org/x/sys/cpu"

// hasAVX2 reports AVX2 and FMA (and their YMM state enabled by the OS).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// avx2Kernel is the AVX2+FMA micro-kernel in kernel_amd64.s: 6 rows × 16
// columns, twelve 8-lane accumulators.
var avx2Kernel = &kernel{name: "avx2", mr: 6, nr: 16, micro: microAVX2, half: microAVX2x8, gemv: gemvAVX2, packB: packB16AVX}

// archKernels returns the amd64 kernels this CPU runs, best first. An
// AVX-512 kernel (say 6×32 or 14×32 in ZMM registers) would go first
// here, behind cpu.X86.HasAVX512F; it is not written yet, because the
// machines it was developed on do not expose AVX-512 to test it.
func archKernels() []*kernel {
	if hasAVX2 {
		return []*kernel{avx2Kernel}
	}
	return nil
}

// microAVX2x8 is kernel.half for avx2Kernel: microAVX2 on the first 8
// columns.
//
//go:noescape
func microAVX2x8(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// microAVX2 is kernel.micro for avx2Kernel (mr 6, nr 16).
//
//go:noescape
func microAVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// packB16AVX is kernel.packB for panels of 16 columns, with AVX loads and
// stores.
//
//go:noescape
func packB16AVX(dst, src *float32, kc, panels, ldb int)

// gemvAVX2 is kernel.gemv for avx2Kernel (mr 6, 8 steps a group).
//
//go:noescape
func gemvAVX2(n8 int, a, x, out *float32)
