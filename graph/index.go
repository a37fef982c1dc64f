package graph

import (
	"github.com/graftml/graft/onnx"
)

// Ops that pick input elements by an index map fixed at build time:
// DepthToSpace, SpaceToDepth, Trilu, GatherElements (and the scatter ops
// of scatter.go, which write by such a map). One kernel serves
// them all: out[i] = x[idx[i]] (0 where idx[i] < 0), and its gradient
// adds dy back where each element came from.

var indexOps = map[string]opDef{
	"DepthToSpace":   {build: buildDepthSpace, grad: true},
	"SpaceToDepth":   {build: buildDepthSpace, grad: true},
	"Trilu":          {build: buildTrilu, grad: true, since: 14},
	"GatherElements": {build: buildGatherElements, grad: true, since: 11},
	// scatter.go
	"Scatter":         {build: buildScatterElements, grad: true, since: 9, until: 10},
	"ScatterElements": {build: buildScatterElements, grad: true, since: 11},
	"ScatterND":       {build: buildScatterND, grad: true, since: 11},
}

// indexKernel gathers input elements by a fixed map.
type indexKernel struct {
	in, out []int
	idx     []int32 // per output element, its input element or -1 for 0
}

func (k *indexKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if x.DType == onnx.Int64 {
		out := onnx.NewInt(k.out, nil)
		for i, j := range k.idx {
			if j >= 0 {
				out.I[i] = x.I[j]
			}
		}
		return out, nil
	}
	out := onnx.NewFloat(k.out, nil)
	for i, j := range k.idx {
		if j >= 0 {
			out.F[i] = x.F[j]
		}
	}
	return out, nil
}

func (k *indexKernel) backward(_ int, _ []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(k.in, nil)
	for i, j := range k.idx {
		if j >= 0 {
			g.F[j] += dy.F[i]
		}
	}
	return g, nil
}

// unravelInto writes the coordinates of flat index i in shape into co.
func unravelInto(i int, shape, co []int) {
	for d := len(shape) - 1; d >= 0; d-- {
		co[d] = i % shape[d]
		i /= shape[d]
	}
}

func buildDepthSpace(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if len(x.shape) != 4 {
		return c.errorf("input has shape %v; %s takes [N, C, H, W]", x.shape, c.n.OpType)
	}
	bs, err := c.attrInt("blocksize", 0)
	if err != nil {
		return err
	}
	if bs < 1 {
		return c.errorf("attribute blocksize must be positive, got %d", bs)
	}
	n, ch, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	xs := rowMajorStrides(x.shape)
	var out []int
	var idx []int32
	if c.n.OpType == "DepthToSpace" {
		mode, err := c.attrString("mode", "DCR")
		if err != nil {
			return err
		}
		if mode != "DCR" && mode != "CRD" {
			return c.errorf("mode %q: want DCR or CRD", mode)
		}
		if ch%(bs*bs) != 0 {
			return c.errorf("channels %d are not a multiple of blocksize² %d", ch, bs*bs)
		}
		oc := ch / (bs * bs)
		out = []int{n, oc, h * bs, w * bs}
		idx = make([]int32, 0, onnx.NumElems(out))
		for b := range n {
			for o := range oc {
				for y := range h * bs {
					for xx := range w * bs {
						by, bx := y%bs, xx%bs
						var src int
						if mode == "DCR" {
							src = (by*bs+bx)*oc + o
						} else {
							src = o*bs*bs + by*bs + bx
						}
						idx = append(idx, int32(b*xs[0]+src*xs[1]+(y/bs)*xs[2]+(xx/bs)*xs[3]))
					}
				}
			}
		}
	} else {
		if h%bs != 0 || w%bs != 0 {
			return c.errorf("height %d and width %d must be multiples of blocksize %d", h, w, bs)
		}
		oc := ch * bs * bs
		out = []int{n, oc, h / bs, w / bs}
		idx = make([]int32, 0, onnx.NumElems(out))
		for b := range n {
			for o := range oc {
				ci, blk := o%ch, o/ch
				by, bx := blk/bs, blk%bs
				for y := range h / bs {
					for xx := range w / bs {
						idx = append(idx, int32(b*xs[0]+ci*xs[1]+(y*bs+by)*xs[2]+(xx*bs+bx)*xs[3]))
					}
				}
			}
		}
	}
	return c.applyMove(0, &indexKernel{in: x.shape, out: out, idx: idx}, out, x.dtype, 0)
}

func buildTrilu(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if len(x.shape) < 2 {
		return c.errorf("input has rank %d; Trilu needs at least 2", len(x.shape))
	}
	upper, err := c.attrInt("upper", 1)
	if err != nil {
		return err
	}
	k := 0
	if ks, ok, err := c.constInts(1); err != nil {
		return err
	} else if ok {
		if len(ks) != 1 {
			return c.errorf("k must hold one value, holds %d", len(ks))
		}
		k = ks[0]
	}
	r, cols := x.shape[len(x.shape)-2], x.shape[len(x.shape)-1]
	idx := make([]int32, onnx.NumElems(x.shape))
	for i := range idx {
		row, col := (i/cols)%r, i%cols
		keep := col-row >= k
		if upper == 0 {
			keep = col-row <= k
		}
		idx[i] = -1
		if keep {
			idx[i] = int32(i)
		}
	}
	return c.applyMove(0, &indexKernel{in: x.shape, out: x.shape, idx: idx}, x.shape, x.dtype, 0)
}

func buildGatherElements(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	it, err := c.constInput(1)
	if err != nil {
		return err
	}
	if it.DType != onnx.Int64 {
		return c.errorf("indices must be an integer tensor")
	}
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	rank := len(x.shape)
	if len(it.Shape) != rank {
		return c.errorf("indices have rank %d, data rank %d", len(it.Shape), rank)
	}
	if rank == 0 {
		return c.errorf("data is a scalar: it needs at least one axis")
	}
	if axis, err = c.normAxis(axis, rank); err != nil {
		return err
	}
	xs := rowMajorStrides(x.shape)
	idx := make([]int32, len(it.I))
	co := make([]int, rank)
	for i, v := range it.I {
		unravelInto(i, it.Shape, co)
		if v < 0 {
			v += int64(x.shape[axis])
		}
		if v < 0 || v >= int64(x.shape[axis]) {
			return c.errorf("index %d is out of range for axis %d of size %d", it.I[i], axis, x.shape[axis])
		}
		off := 0
		for d := range rank {
			p := co[d]
			if d == axis {
				p = int(v)
			}
			off += p * xs[d]
		}
		idx[i] = int32(off)
	}
	return c.applyMove(0, &indexKernel{in: x.shape, out: it.Shape, idx: idx}, it.Shape, x.dtype, 0)
}
