package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestDwMeans: the plane means a depthwise convolution takes for a fused
// GlobalAveragePool (several planes at once, in dwconv's vector code)
// have the bits of the pool's own planeSum, on plane sizes ragged against
// the four partial sums and plane counts ragged against the four planes
// the vector code takes at once and the 64 of a batch.
func TestDwMeans(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for range 300 {
		size, n := 1+r.Intn(200), r.Intn(140)
		y := make([]float32, n*size)
		for i := range y {
			y[i] = float32(r.NormFloat64() * math.Exp2(float64(r.Intn(30)-15)))
		}
		means := make([]float32, n)
		dwMeans(y, size, means)
		for p := range n {
			want := float32(planeSum(y[p*size:][:size]) / float64(size))
			if math.Float32bits(means[p]) != math.Float32bits(want) {
				t.Fatalf("size %d, plane %d of %d: %v, the pool's %v", size, p, n, means[p], want)
			}
		}
	}
}
