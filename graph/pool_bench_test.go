package graph

import (
	"math/rand"
	"testing"

	"github.com/graftml/graft/onnx"
)

// BenchmarkPool times MaxPool and AveragePool forward on the shapes of
// the models graft is measured on: resnet18's stem MaxPool (3x3, stride
// 2, pad 1, [n,64,112,112]) at batch 1 and 8, squeezenet's ceil-mode
// MaxPool, the same window over small planes (14x14, where the cost per
// plane shows), densenet's 2x2 AveragePool transition and a padded 3x3
// AveragePool of stride 1. It reports ms per pass and GB/s of input read
// plus output written.
//
//	go test ./graph -run '^$' -bench Pool -benchtime 50x
func BenchmarkPool(b *testing.B) {
	cases := []struct {
		name                string
		max, ceil           bool
		n, c, h, w, k, s, p int
	}{
		{"MaxPool/resnet18/batch8", true, false, 8, 64, 112, 112, 3, 2, 1},
		{"MaxPool/resnet18/batch1", true, false, 1, 64, 112, 112, 3, 2, 1},
		{"MaxPool/squeezenet/batch8", true, true, 8, 64, 111, 111, 3, 2, 0},
		{"MaxPool/small/batch8", true, false, 8, 512, 14, 14, 3, 2, 1},
		{"AveragePool/densenet/batch8", false, false, 8, 128, 56, 56, 2, 2, 0},
		{"AveragePool/3x3s1p1/batch8", false, false, 8, 64, 28, 28, 3, 1, 1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			pads := []int{c.p, c.p, c.p, c.p}
			g := testWindow(b, c.h, c.w, c.k, c.k, []int{c.s, c.s}, nil, pads, "NOTSET", c.ceil)
			x := randTensor(rand.New(rand.NewSource(1)), c.n, c.c, c.h, c.w)
			k := &poolKernel{g: g, planes: c.n * c.c, max: c.max, inShape: x.Shape, outShape: g.outShape(4, c.n, c.c)}
			out := onnx.NewFloat(k.outShape, nil)
			in := []*onnx.Tensor{x}
			if err := k.forwardInto(in, out); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := k.forwardInto(in, out); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms")
			b.ReportMetric(float64(4*(len(x.F)+len(out.F)))/sec/1e9, "GB/s")
		})
	}
}
