package graph

import (
	"math"
	"math/rand"
	"testing"

	"github.com/graftml/graft/graph/internal/cores"
	"github.com/graftml/graft/onnx"
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

// TestDwForward runs depthwise convolutions (vector kernels and the Go
// fallback, channel multipliers 1 to 3, with a bias, a SiLU epilogue and
// fused plane means) and checks each output against the definition, and
// that each image's outputs and means have the same bits at batch 1 and
// batch 3, on one goroutine and on several: a task computes a run of
// planes of one image and then the epilogue over the run, whose vector
// code ends where the run ends, so the runs must not depend on either.
func TestDwForward(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, tc := range []struct {
		name                    string
		h, w, k, kw, s, dil     int
		pt, pl, pb, pr, c, mult int
	}{
		{"14x14 3x3 (narrow)", 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 40, 1},
		{"30x20 5x5 s2 x2", 30, 20, 5, 5, 2, 1, 2, 1, 2, 2, 24, 2},
		{"9x9 3x3 s2 x3", 9, 9, 3, 3, 2, 1, 0, 1, 1, 0, 5, 3},
		{"40x33 3x3", 40, 33, 3, 3, 1, 1, 1, 1, 1, 1, 12, 1},
		{"12x12 3x3 dilated (Go)", 12, 12, 3, 3, 1, 2, 2, 2, 2, 2, 16, 1},
		{"8x10 3x5 (Go)", 8, 10, 3, 5, 1, 1, 1, 2, 1, 2, 9, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := window{h: tc.h, w: tc.w, kh: tc.k, kw: tc.kw, sh: tc.s, sw: tc.s, dh: tc.dil, dw: tc.dil,
				pt: tc.pt, pl: tc.pl, pb: tc.pb, pr: tc.pr}
			g.oh = (tc.h+tc.pt+tc.pb-(tc.k-1)*tc.dil-1)/tc.s + 1
			g.ow = (tc.w+tc.pl+tc.pr-(tc.kw-1)*tc.dil-1)/tc.s + 1
			c, m := tc.c, tc.c*tc.mult
			hw, ohw, khw := g.h*g.w, g.oh*g.ow, g.kh*g.kw
			const n = 3
			x, w, b := make([]float32, n*c*hw), make([]float32, m*khw), make([]float32, m)
			for _, s := range [][]float32{x, w, b} {
				for i := range s {
					s[i] = float32(r.NormFloat64())
				}
			}
			run := func(batch, threads int, x []float32) (y, means []float32) {
				defer cores.Set(cores.Set(threads))
				k := newConvKernel(g, 4, batch, c, m, c, true)
				in := []*onnx.Tensor{onnx.NewFloat([]int{batch, c, g.h, g.w}, x), onnx.NewFloat([]int{m, 1, g.kh, g.kw}, w), onnx.NewFloat([]int{m}, b)}
				epi := &epilogue{stages: []epStage{{f: sigmoid, self: true, silu: true}}, means: make([]float32, batch*m)}
				out := onnx.NewFloat(k.outShape, nil)
				if err := k.forwardEpi(in, out, epi); err != nil {
					t.Fatal(err)
				}
				return out.F, epi.means
			}
			y, means := run(n, 4, x)
			for u := range n * m {
				ni, oc := u/m, u%m
				xp := x[(ni*c+oc/tc.mult)*hw:][:hw]
				yp := y[u*ohw:][:ohw]
				for oh := range g.oh {
					for ow := range g.ow {
						v := dwPixel(&g, xp, w[oc*khw:][:khw], b[oc], oh, ow)
						want := v * sigmoid(v)
						if got := yp[oh*g.ow+ow]; math.Abs(float64(got-want)) > 1e-4*(1+math.Abs(float64(want))) {
							t.Fatalf("image %d channel %d output (%d, %d) = %v, want %v", ni, oc, oh, ow, got, want)
						}
					}
				}
				if want := float32(planeSum(yp) / float64(ohw)); math.Float32bits(means[u]) != math.Float32bits(want) {
					t.Fatalf("image %d channel %d: mean %v, want %v", ni, oc, means[u], want)
				}
			}
			for ni := range n {
				for _, threads := range []int{1, 3} {
					y1, m1 := run(1, threads, x[ni*c*hw:][:c*hw])
					for i, v := range y1 {
						if math.Float32bits(v) != math.Float32bits(y[ni*m*ohw+i]) {
							t.Fatalf("image %d alone on %d goroutines: output %d is %v, in the batch %v", ni, threads, i, v, y[ni*m*ohw+i])
						}
					}
					for i, v := range m1 {
						if math.Float32bits(v) != math.Float32bits(means[ni*m+i]) {
							t.Fatalf("image %d alone on %d goroutines: mean %d is %v, in the batch %v", ni, threads, i, v, means[ni*m+i])
						}
					}
				}
			}
		})
	}
}
