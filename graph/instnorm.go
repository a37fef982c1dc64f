package graph

import (
	"math"

	"github.com/graftml/graft/onnx"
)

// InstanceNormalization: each (sample, channel) plane normalized by its own
// mean and variance, then scaled and shifted per channel (style transfer
// and segmentation models from other exporters use it). GroupNormalization
// (opset 18) normalizes groups of channels together; its scale and bias
// hold one value per group at opset 18 and one per channel from opset 21
// (PyTorch's nn.GroupNorm is the latter).

var instNormOps = map[string]opDef{
	"InstanceNormalization": {build: buildInstanceNorm, grad: true, weights: []int{1, 2}, family: "norm"},
	"GroupNormalization":    {build: buildGroupNorm, grad: true, weights: []int{1, 2}, family: "norm", since: 18},
}

// instNormKernel normalizes each of groups blocks of channels of every
// sample by the block's mean and variance, then scales and shifts per
// channel (or, GroupNormalization-18, per group). InstanceNormalization is
// the case of one channel per group.
type instNormKernel struct {
	shape  []int
	n, c   int
	plane  int // elements per channel
	groups int
	// perGroup: scale and bias hold one value per group, not per channel
	perGroup bool
	eps      float64
}

// block is the number of elements normalized together.
func (k *instNormKernel) block() int { return k.c / k.groups * k.plane }

// param is the index into scale and bias of element e.
func (k *instNormKernel) param(e int) int {
	ch := e / k.plane % k.c
	if k.perGroup {
		return ch / (k.c / k.groups)
	}
	return ch
}

// stats returns per-block mean and 1/sqrt(var+eps).
func (k *instNormKernel) stats(x []float32) (mean, inv []float64) {
	bl := k.block()
	mean = make([]float64, k.n*k.groups)
	inv = make([]float64, k.n*k.groups)
	for p := range mean {
		xs := x[p*bl : (p+1)*bl]
		s := 0.0
		for _, v := range xs {
			s += float64(v)
		}
		m := s / float64(bl)
		q := 0.0
		for _, v := range xs {
			d := float64(v) - m
			q += d * d
		}
		mean[p], inv[p] = m, 1/math.Sqrt(q/float64(bl)+k.eps)
	}
	return mean, inv
}

func (k *instNormKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x, sc, b := in[0].F, in[1].F, in[2].F
	mean, inv := k.stats(x)
	out := onnx.NewFloat(k.shape, nil)
	bl := k.block()
	for p := range mean {
		for i := p * bl; i < (p+1)*bl; i++ {
			j := k.param(i)
			out.F[i] = float32((float64(x[i])-mean[p])*inv[p]*float64(sc[j]) + float64(b[j]))
		}
	}
	return out, nil
}

func (k *instNormKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x, sc := in[0].F, in[1].F
	mean, inv := k.stats(x)
	bl := k.block()
	switch i {
	case 1, 2:
		g := onnx.NewFloat(in[i].Shape, nil)
		acc := make([]float64, len(g.F))
		for p := range mean {
			for e := p * bl; e < (p+1)*bl; e++ {
				if i == 1 {
					acc[k.param(e)] += float64(dy.F[e]) * (float64(x[e]) - mean[p]) * inv[p]
				} else {
					acc[k.param(e)] += float64(dy.F[e])
				}
			}
		}
		for j, v := range acc {
			g.F[j] = float32(v)
		}
		return g, nil
	}
	// with d_e = dy_e·scale_e and xh the normalized input:
	// dx_e = inv·(d_e - mean(d) - xh_e·mean(d·xh)) over the block
	g := onnx.NewFloat(k.shape, nil)
	for p := range mean {
		var sd, sdx float64
		for e := p * bl; e < (p+1)*bl; e++ {
			xh := (float64(x[e]) - mean[p]) * inv[p]
			d := float64(dy.F[e]) * float64(sc[k.param(e)])
			sd += d
			sdx += d * xh
		}
		n := float64(bl)
		for e := p * bl; e < (p+1)*bl; e++ {
			xh := (float64(x[e]) - mean[p]) * inv[p]
			d := float64(dy.F[e]) * float64(sc[k.param(e)])
			g.F[e] = float32(inv[p] * (d - sd/n - xh*sdx/n))
		}
	}
	return g, nil
}

// normInputs returns input X of InstanceNormalization or
// GroupNormalization, after checking that X, scale and bias are there and
// X is [N, C, D1, ...].
func normInputs(c *nodeCtx) (*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	for i := 1; i <= 2; i++ {
		if _, err := c.input(i); err != nil {
			return nil, err
		}
	}
	if len(x.shape) < 3 {
		return nil, c.errorf("input has shape %v; %s takes [N, C, D1, ...]", x.shape, c.n.OpType)
	}
	return x, nil
}

func buildInstanceNorm(c *nodeCtx) error {
	x, err := normInputs(c)
	if err != nil {
		return err
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	k := &instNormKernel{shape: x.shape, n: x.shape[0], c: x.shape[1], plane: onnx.NumElems(x.shape[2:]), groups: x.shape[1], eps: float64(eps)}
	for i := 1; i <= 2; i++ {
		if s := c.in[i].shape; len(s) != 1 || s[0] != k.c {
			return c.errorf("input %d has shape %v; want [%d]", i, s, k.c)
		}
	}
	return c.apply(0, k, x.shape, onnx.Float32, 0, 1, 2)
}

func buildGroupNorm(c *nodeCtx) error {
	x, err := normInputs(c)
	if err != nil {
		return err
	}
	if !c.has("num_groups") {
		return c.errorf("attribute \"num_groups\" is required")
	}
	groups, err := c.attrInt("num_groups", 0)
	if err != nil {
		return err
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	if c.opset >= 21 {
		// graft computes the statistics in float64, at least as precise
		// as any stash_type
		if _, err := c.attrInt("stash_type", 1); err != nil {
			return err
		}
	} else if c.has("stash_type") {
		return c.errorf("attribute \"stash_type\" is part of GroupNormalization from opset 21 (this model imports opset %d)", c.opset)
	}
	ch := x.shape[1]
	if groups < 1 || ch%groups != 0 {
		return c.errorf("num_groups %d does not divide the %d channels of input %q", groups, ch, x.name)
	}
	k := &instNormKernel{shape: x.shape, n: x.shape[0], c: ch, plane: onnx.NumElems(x.shape[2:]), groups: groups,
		perGroup: c.opset < 21, eps: float64(eps)}
	want := ch
	if k.perGroup {
		want = groups
	}
	for i := 1; i <= 2; i++ {
		if s := c.in[i].shape; len(s) != 1 || s[0] != want {
			return c.errorf("input %d has shape %v; want [%d] (one value per %s at opset %d)", i, s, want, map[bool]string{true: "group", false: "channel"}[k.perGroup], c.opset)
		}
	}
	return c.apply(0, k, x.shape, onnx.Float32, 0, 1, 2)
}
