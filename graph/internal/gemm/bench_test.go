package gemm

import (
	"fmt"
	"math/rand"
	"testing"
)

// benchShapes are ResNet-18's convolutions at batch 1, 224×224, as GEMM
// M×N×K (output channels × output pixels × C·kh·kw), then 1×1 shapes: a
// MobileNetV2 pointwise convolution and the final fully connected layer.
var benchShapes = [][3]int{
	{64, 12544, 147}, {64, 3136, 576}, {128, 784, 1152}, {256, 196, 2304}, {512, 49, 4608},
	{96, 3136, 24}, {96, 12544, 16}, {144, 3136, 24}, {24, 3136, 144}, {1000, 1, 512},
}

// BenchmarkSgemm times Sgemm (op(A) packed on every call) and
// PackedA.Mul (packed once) on benchShapes, for every kernel this CPU
// runs, on 1 and 2 goroutines.
func BenchmarkSgemm(b *testing.B) {
	saved := active
	defer func() { active = saved }()
	for _, kn := range kernels {
		active = kn
		for _, s := range benchShapes {
			m, n, k := s[0], s[1], s[2]
			r := rand.New(rand.NewSource(1))
			a, bm, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
			pa := PackA(false, m, k, a, k)
			for _, w := range []int{1, 2} {
				flops := 2 * float64(m*n*k)
				b.Run(fmt.Sprintf("%s/%dx%dx%d/w%d/packA", kn.name, m, n, k, w), func(b *testing.B) {
					cpu0 := cpuTime()
					for b.Loop() {
						Sgemm(w, false, false, m, n, k, 1, a, k, bm, n, 0, c, n)
					}
					report(b, flops, cpu0)
				})
				b.Run(fmt.Sprintf("%s/%dx%dx%d/w%d/packed", kn.name, m, n, k, w), func(b *testing.B) {
					cpu0 := cpuTime()
					for b.Loop() {
						pa.Mul(w, false, n, 1, bm, n, 0, c, n)
					}
					report(b, flops, cpu0)
				})
			}
		}
	}
}

// BenchmarkMicro times the micro-kernels alone on panels in L1 (kc 256):
// the ceiling of the whole product.
func BenchmarkMicro(b *testing.B) {
	for _, kn := range kernels {
		b.Run(kn.name, func(b *testing.B) {
			const kc = 256
			r := rand.New(rand.NewSource(1))
			a, bp, c := randSlice(r, kc*kn.mr), randSlice(r, kc*kn.nr), make([]float32, kn.mr*kn.nr)
			cpu0 := cpuTime()
			for b.Loop() {
				kn.micro(kc, &a[0], &bp[0], &c[0], kn.nr, 1, 1)
			}
			report(b, 2*float64(kc*kn.mr*kn.nr), cpu0)
		})
	}
}

// report adds GFLOP/s (per wall-clock second) and GFLOP/cpu-s (per
// CPU-second of the process: what a core does while it runs the product,
// less sensitive to other load on the machine) for flops per iteration,
// CPU time counted from cpu0.
func report(b *testing.B, flops float64, cpu0 int64) {
	total := flops * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(total/float64(cpu), "GFLOP/cpu-s")
	}
}
