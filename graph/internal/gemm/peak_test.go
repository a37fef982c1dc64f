//go:build amd64 && !purego

package gemm

import "testing"

// BenchmarkFMAPeak measures one core's peak with 8-lane FMAs (AVX2), the
// ceiling the AVX2 kernel is measured against.
func BenchmarkFMAPeak(b *testing.B) {
	if !hasAVX2 {
		b.Skip("no AVX2+FMA")
	}
	const n = 1 << 20
	cpu0 := cpuTime()
	for b.Loop() {
		fmaLoop(n)
	}
	report(b, float64(fmaLoopFlops)*n, cpu0)
}
