package graph

import (
	"math"

	"github.com/graftml/graft/onnx"
)

// InstanceNormalization: each (sample, channel) plane normalized by its own
// mean and variance, then scaled and shifted per channel (style transfer
// and segmentation models from other exporters use it).

var instNormOps = map[string]opDef{
	"InstanceNormalization": {build: buildInstanceNorm, grad: true, weights: []int{1, 2}, family: "norm"},
}

type instNormKernel struct {
	shape []int
	n, c  int
	plane int
	eps   float64
}

// stats returns per-plane mean and 1/sqrt(var+eps).
func (k *instNormKernel) stats(x []float32) (mean, inv []float64) {
	mean = make([]float64, k.n*k.c)
	inv = make([]float64, k.n*k.c)
	for p := range mean {
		xs := x[p*k.plane : (p+1)*k.plane]
		s := 0.0
		for _, v := range xs {
			s += float64(v)
		}
		m := s / float64(k.plane)
		q := 0.0
		for _, v := range xs {
			d := float64(v) - m
			q += d * d
		}
		mean[p], inv[p] = m, 1/math.Sqrt(q/float64(k.plane)+k.eps)
	}
	return mean, inv
}

func (k *instNormKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x, sc, b := in[0].F, in[1].F, in[2].F
	mean, inv := k.stats(x)
	out := onnx.NewFloat(k.shape, nil)
	for p := range mean {
		ch := p % k.c
		for i := p * k.plane; i < (p+1)*k.plane; i++ {
			out.F[i] = float32((float64(x[i])-mean[p])*inv[p]*float64(sc[ch]) + float64(b[ch]))
		}
	}
	return out, nil
}

func (k *instNormKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x, sc := in[0].F, in[1].F
	mean, inv := k.stats(x)
	switch i {
	case 1, 2:
		g := onnx.NewFloat([]int{k.c}, nil)
		acc := make([]float64, k.c)
		for p := range mean {
			ch := p % k.c
			for e := p * k.plane; e < (p+1)*k.plane; e++ {
				if i == 1 {
					acc[ch] += float64(dy.F[e]) * (float64(x[e]) - mean[p]) * inv[p]
				} else {
					acc[ch] += float64(dy.F[e])
				}
			}
		}
		for ch, v := range acc {
			g.F[ch] = float32(v)
		}
		return g, nil
	}
	g := onnx.NewFloat(k.shape, nil)
	for p := range mean {
		ch := p % k.c
		var sd, sdx float64
		for e := p * k.plane; e < (p+1)*k.plane; e++ {
			xh := (float64(x[e]) - mean[p]) * inv[p]
			sd += float64(dy.F[e])
			sdx += float64(dy.F[e]) * xh
		}
		n := float64(k.plane)
		for e := p * k.plane; e < (p+1)*k.plane; e++ {
			xh := (float64(x[e]) - mean[p]) * inv[p]
			g.F[e] = float32(float64(sc[ch]) * inv[p] * (float64(dy.F[e]) - sd/n - xh*sdx/n))
		}
	}
	return g, nil
}

func buildInstanceNorm(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		if _, err := c.input(i); err != nil {
			return err
		}
	}
	if len(x.shape) < 3 {
		return c.errorf("input has shape %v; InstanceNormalization takes [N, C, D1, ...]", x.shape)
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	k := &instNormKernel{shape: x.shape, n: x.shape[0], c: x.shape[1], plane: onnx.NumElems(x.shape[2:]), eps: float64(eps)}
	for i := 1; i <= 2; i++ {
		if s := c.in[i].shape; len(s) != 1 || s[0] != k.c {
			return c.errorf("input %d has shape %v; want [%d]", i, s, k.c)
		}
	}
	return c.apply(0, k, x.shape, onnx.Float32, 0, 1, 2)
}
