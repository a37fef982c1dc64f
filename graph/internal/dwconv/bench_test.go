package dwconv

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkForward times one plane of MobileNetV2's and EfficientNet's
// depthwise shapes at 224×224 per path, in GFLOP/s (2 per tap).
func BenchmarkForward(b *testing.B) {
	shapes := []Geom{
		{H: 112, W: 112, K: 3, S: 1, PT: 1, PL: 1, OH: 112, OW: 112},
		{H: 112, W: 112, K: 3, S: 2, PT: 0, PL: 0, OH: 56, OW: 56},
		{H: 56, W: 56, K: 3, S: 1, PT: 1, PL: 1, OH: 56, OW: 56},
		{H: 14, W: 14, K: 3, S: 1, PT: 1, PL: 1, OH: 14, OW: 14},
		{H: 7, W: 7, K: 3, S: 1, PT: 1, PL: 1, OH: 7, OW: 7},
		{H: 28, W: 28, K: 5, S: 1, PT: 2, PL: 2, OH: 28, OW: 28},
		{H: 56, W: 56, K: 5, S: 2, PT: 1, PL: 1, OH: 28, OW: 28},
	}
	for _, p := range paths()[1:] {
		for _, g := range shapes {
			r := rand.New(rand.NewPCG(1, 2))
			x, w, y := randSlice(r, g.H*g.W), randSlice(r, g.K*g.K), make([]float32, g.OH*g.OW)
			b.Run(fmt.Sprintf("%s/%dx%d/k%d/s%d", p, g.H, g.W, g.K, g.S), func(b *testing.B) {
				withPath(p, func() {
					for b.Loop() {
						Forward(g, x, w, 0.5, y)
					}
				})
				b.ReportMetric(float64(2*g.K*g.K*g.OH*g.OW)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
