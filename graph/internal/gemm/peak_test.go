//go:build amd64 && !purego

package gemm

import "testing"

// BenchmarkFMAPeak measures one core's peak with 8-lane FMAs (AVX2), the
// ceiling the AVX2 kernel is measured against.
func BenchmarkFMAPeak(b *testing.B) { benchPeak(b, hasAVX2, fmaLoop, fmaLoopFlops) }

// BenchmarkFMAPeak512 measures one core's peak with 16-lane FMAs
// (AVX-512), the ceiling the AVX-512 kernel is measured against.
func BenchmarkFMAPeak512(b *testing.B) { benchPeak(b, hasAVX512, fmaLoop512, fmaLoop512Flops) }

// benchPeak times loop, which does flops operations an iteration, when
// the CPU has its instructions (ok).
func benchPeak(b *testing.B, ok bool, loop func(n int), flops int) {
	if !ok {
		b.Skip("the CPU lacks the instructions")
	}
	const n = 1 << 20
	cpu0 := cpuTime()
	for b.Loop() {
		loop(n)
	}
	report(b, float64(flops)*n, cpu0)
}
