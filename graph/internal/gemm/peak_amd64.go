//go:build !purego

package gemm

// fmaLoop runs n iterations of 12 independent 8-lane fused multiply-adds
// (192 floating-point operations each) and nothing else: timing it gives
// the FMA peak of one core with AVX2 (BenchmarkFMAPeak).
//
//go:noescape
func fmaLoop(n int)

const fmaLoopFlops = 12 * 8 * 2

// fmaLoop512 is fmaLoop with 16-lane FMAs (AVX-512), in
// kernel_avx512_amd64.s.
//
//go:noescape
func fmaLoop512(n int)

const fmaLoop512Flops = 12 * 16 * 2
