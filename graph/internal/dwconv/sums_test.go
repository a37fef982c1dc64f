package dwconv

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sumInOrder is PlaneSums' order written out for one plane.
func sumInOrder(x []float32) float64 {
	var s [4]float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		for j := range 4 {
			s[j] += float64(x[i+j])
		}
	}
	for ; i < len(x); i++ {
		s[0] += float64(x[i])
	}
	return (s[0] + s[1]) + (s[2] + s[3])
}

// TestPlaneSums checks every path against the order written out, bit
// for bit, on plane sizes ragged against 4 and plane counts ragged
// against the four planes the vector code takes at once, with values of
// very different magnitudes (so that a different order would show).
func TestPlaneSums(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range paths() {
		withPath(p, func() {
			for range 500 {
				size, n := 1+r.IntN(60), r.IntN(11)
				y := make([]float32, n*size+3)
				for i := range y {
					y[i] = float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20)))
				}
				sums := make([]float64, n)
				PlaneSums(y[:n*size], size, sums)
				for q := range n {
					want := sumInOrder(y[q*size:][:size])
					if math.Float64bits(sums[q]) != math.Float64bits(want) {
						t.Fatalf("%s: size %d, plane %d of %d: %v, want %v", p, size, q, n, sums[q], want)
					}
				}
			}
		})
	}
}
