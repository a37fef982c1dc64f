//go:build !purego

package gemm

// fmaLoop runs n iterations of 12 independent 8-lane fused multiply-adds
// (192 floating-point operations each) and nothing else: timing it gives
// the FMA peak of one core with AVX2 (BenchmarkFMAPeak).
//
//go:noescape
func fmaLoop(n int)

const fmaLoopFlops = 12 * 8 * 2
