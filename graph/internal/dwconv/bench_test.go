package dwconv

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchShapes are MobileNetV2's and EfficientNet-B0's depthwise shapes at
// 224×224.
var benchShapes = []Geom{
	{H: 112, W: 112, K: 3, S: 1, PT: 1, PL: 1, OH: 112, OW: 112},
	{H: 112, W: 112, K: 3, S: 2, PT: 1, PL: 1, OH: 56, OW: 56},
	{H: 56, W: 56, K: 3, S: 1, PT: 1, PL: 1, OH: 56, OW: 56},
	{H: 56, W: 56, K: 3, S: 2, PT: 1, PL: 1, OH: 28, OW: 28},
	{H: 28, W: 28, K: 3, S: 1, PT: 1, PL: 1, OH: 28, OW: 28},
	{H: 14, W: 14, K: 3, S: 1, PT: 1, PL: 1, OH: 14, OW: 14},
	{H: 14, W: 14, K: 3, S: 2, PT: 1, PL: 1, OH: 7, OW: 7},
	{H: 7, W: 7, K: 3, S: 1, PT: 1, PL: 1, OH: 7, OW: 7},
	{H: 56, W: 56, K: 5, S: 2, PT: 2, PL: 2, OH: 28, OW: 28},
	{H: 28, W: 28, K: 5, S: 1, PT: 2, PL: 2, OH: 28, OW: 28},
	{H: 14, W: 14, K: 5, S: 1, PT: 2, PL: 2, OH: 14, OW: 14},
	{H: 7, W: 7, K: 5, S: 1, PT: 2, PL: 2, OH: 7, OW: 7},
}

// BenchmarkForwardN times runs of 32 planes of each shape per path (as
// one task of a layer computes them), in ns per plane and GFLOP/s (2
// per tap).
func BenchmarkForwardN(b *testing.B) {
	const n = 32
	for _, p := range paths()[1:] {
		for _, g := range benchShapes {
			r := rand.New(rand.NewPCG(1, 2))
			x, w := randSlice(r, n*g.H*g.W), randSlice(r, n*g.K*g.K)
			bias, y := randSlice(r, n), make([]float32, n*g.OH*g.OW)
			b.Run(fmt.Sprintf("%s/%dx%d/k%d/s%d", p, g.H, g.W, g.K, g.S), func(b *testing.B) {
				withPath(p, func() {
					for b.Loop() {
						ForwardN(g, n, x, g.H*g.W, w, bias, y)
					}
				})
				planes := float64(n) * float64(b.N)
				b.ReportMetric(b.Elapsed().Seconds()*1e9/planes, "ns/plane")
				b.ReportMetric(float64(2*g.K*g.K*g.OH*g.OW)*planes/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
