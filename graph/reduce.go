package graph

import (
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
)

// Reductions: ReduceMean, ReduceSum, ReduceMax over any set of axes in one
// strided pass (gorgonia's multi-axis Sum/Mean are wrong; see the notes).

var reduceOps = map[string]opDef{
	"ReduceMean": {build: buildReduce, grad: true},
	"ReduceSum":  {build: buildReduce, grad: true},
	"ReduceMax":  {build: buildReduce, grad: true},
}

// reduceKernel reduces in over the axes marked in the kept shape (dims
// set to 1). idx maps each input element to its output element, so every
// reduction is one pass over the input in memory order.
type reduceKernel struct {
	op    string // Sum, Mean or Max
	in    []int
	out   []int   // logical output shape (keepdims applied)
	kept  []int   // output shape with reduced dims kept as 1
	idx   []int32 // per input element, its output element
	count int     // input elements per output element
}

func newReduce(op string, in []int, axes []bool, keepdims bool) *reduceKernel {
	k := &reduceKernel{op: op, in: in, count: 1}
	k.kept = make([]int, len(in))
	k.out = []int{}
	for i, d := range in {
		if axes[i] {
			k.kept[i] = 1
			k.count *= d
			if keepdims {
				k.out = append(k.out, 1)
			}
			continue
		}
		k.kept[i] = d
		k.out = append(k.out, d)
	}
	k.idx = broadcastIndex(k.kept, in)
	return k
}

func (k *reduceKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType == onnx.Int64 {
		return k.forwardInt(in[0].I), nil
	}
	x := in[0].F
	out := onnx.NewFloat(k.out, nil)
	if k.op == "Max" {
		for i := range out.F {
			out.F[i] = float32(math.Inf(-1))
		}
		for e, v := range x {
			if o := k.idx[e]; v > out.F[o] || v != v {
				out.F[o] = v
			}
		}
		return out, nil
	}
	acc := make([]float64, len(out.F))
	for e, v := range x {
		acc[k.idx[e]] += float64(v)
	}
	s := 1.0
	if k.op == "Mean" {
		s = 1 / float64(k.count)
	}
	for i, v := range acc {
		out.F[i] = float32(v * s)
	}
	return out, nil
}

func (k *reduceKernel) forwardInt(x []int64) *onnx.Tensor {
	out := onnx.NewInt(k.out, nil)
	if k.op == "Max" {
		for i := range out.I {
			out.I[i] = math.MinInt64
		}
		for e, v := range x {
			out.I[k.idx[e]] = max(out.I[k.idx[e]], v)
		}
		return out
	}
	for e, v := range x {
		out.I[k.idx[e]] += v
	}
	if k.op == "Mean" && k.count > 0 {
		for i := range out.I {
			out.I[i] /= int64(k.count)
		}
	}
	return out
}

// backward: Sum passes dy to every element, Mean dy/count, Max all of dy
// to the first element equal to the maximum.
func (k *reduceKernel) backward(_ int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(k.in, nil)
	d := dy.F
	switch k.op {
	case "Max":
		taken := make([]bool, len(d))
		y, x := out.F, in[0].F
		for e, v := range x {
			o := k.idx[e]
			if !taken[o] && (v == y[o] || v != v && y[o] != y[o]) {
				taken[o] = true
				g.F[e] = d[o]
			}
		}
	default:
		s := float32(1)
		if k.op == "Mean" {
			s = 1 / float32(k.count)
		}
		for e := range g.F {
			g.F[e] = d[k.idx[e]] * s
		}
	}
	return g, nil
}

func buildReduce(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	keep, err := c.attrInt("keepdims", 1)
	if err != nil {
		return err
	}
	var axes []int
	noop := false
	if c.n.OpType == "ReduceSum" && c.opset >= 13 {
		if c.has("axes") {
			return c.errorf("from opset 13 ReduceSum takes axes as input 1, not as an attribute")
		}
		a, _, err := c.constInts(1)
		if err != nil {
			return err
		}
		axes = a
		n, err := c.attrInt("noop_with_empty_axes", 0)
		if err != nil {
			return err
		}
		noop = n != 0
	} else {
		if axes, err = c.attrInts("axes", nil); err != nil {
			return err
		}
	}
	rank := len(x.shape)
	if len(axes) == 0 && noop {
		c.alias(0, x)
		return nil
	}
	marked := make([]bool, rank)
	if len(axes) == 0 {
		for i := range marked {
			marked[i] = true
		}
	}
	for _, a := range axes {
		n, err := c.normAxis(a, rank)
		if err != nil {
			return err
		}
		if rank == 0 {
			continue
		}
		if marked[n] {
			return c.errorf("axis %d is given twice", a)
		}
		marked[n] = true
	}
	op := map[string]string{"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max"}[c.n.OpType]
	k := newReduce(op, x.shape, marked, keep != 0)
	if slices.Contains(x.shape, 0) && op != "Sum" {
		return c.errorf("%s of an empty tensor is undefined", c.n.OpType)
	}
	return c.apply(0, k, k.out, x.dtype, 0)
}
