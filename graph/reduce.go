package graph

import (
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
)

// Reductions: ReduceMean, ReduceSum, ReduceMax over any set of axes in one
// strided pass (gorgonia's multi-axis Sum/Mean are wrong; see the notes).
// Axes are an attribute until opset 17 (12 for ReduceSum) and the optional
// input 1 after, with noop_with_empty_axes.

var reduceOps = map[string]opDef{
	"ReduceMean": {build: buildReduce, grad: true},
	"ReduceSum":  {build: buildReduce, grad: true},
	"ReduceMax":  {build: buildReduce, grad: true},
	// the rest of the family, which models from other exporters use
	"ReduceMin":       {build: buildReduce, grad: true},
	"ReduceProd":      {build: buildReduce, grad: true},
	"ReduceL1":        {build: buildReduce, grad: true},
	"ReduceL2":        {build: buildReduce, grad: true},
	"ReduceLogSum":    {build: buildReduce, grad: true},
	"ReduceLogSumExp": {build: buildReduce, grad: true},
	"ReduceSumSquare": {build: buildReduce, grad: true},
}

// reduceNames maps each op to its reduction.
var reduceNames = map[string]string{
	"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max", "ReduceMin": "Min",
	"ReduceProd": "Prod", "ReduceL1": "L1", "ReduceL2": "L2", "ReduceLogSum": "LogSum",
	"ReduceLogSumExp": "LogSumExp", "ReduceSumSquare": "SumSquare",
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
	if k.op != "Max" && k.op != "Sum" && k.op != "Mean" {
		k.forwardMore(x, out.F)
		return out, nil
	}
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

// forwardMore computes the reductions beyond Sum, Mean and Max in
// float64.
func (k *reduceKernel) forwardMore(x []float32, out []float32) {
	acc := make([]float64, len(out))
	switch k.op {
	case "Min":
		for i := range acc {
			acc[i] = math.Inf(1)
		}
		for e, v := range x {
			if o := k.idx[e]; float64(v) < acc[o] || v != v {
				acc[o] = float64(v)
			}
		}
	case "Prod":
		for i := range acc {
			acc[i] = 1
		}
		for e, v := range x {
			acc[k.idx[e]] *= float64(v)
		}
	case "LogSumExp":
		m := make([]float64, len(out))
		for i := range m {
			m[i] = math.Inf(-1)
		}
		for e, v := range x {
			m[k.idx[e]] = max(m[k.idx[e]], float64(v))
		}
		for e, v := range x {
			acc[k.idx[e]] += math.Exp(float64(v) - m[k.idx[e]])
		}
		for i := range acc {
			acc[i] = math.Log(acc[i]) + m[i]
		}
	default:
		for e, v := range x {
			f := float64(v)
			switch k.op {
			case "L1":
				f = math.Abs(f)
			case "L2", "SumSquare":
				f *= f
			}
			acc[k.idx[e]] += f
		}
		for i, v := range acc {
			switch k.op {
			case "L2":
				acc[i] = math.Sqrt(v)
			case "LogSum":
				acc[i] = math.Log(v)
			}
		}
	}
	for i, v := range acc {
		out[i] = float32(v)
	}
}

func (k *reduceKernel) forwardInt(x []int64) *onnx.Tensor {
	out := onnx.NewInt(k.out, nil)
	if k.op != "Max" && k.op != "Sum" && k.op != "Mean" {
		f := make([]float32, len(x))
		for i, v := range x {
			f[i] = float32(v)
		}
		r := make([]float32, len(out.I))
		k.forwardMore(f, r)
		for i, v := range r {
			out.I[i] = int64(v)
		}
		return out
	}
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
	x := in[0].F
	switch k.op {
	case "Prod": // the product of the other elements, computed directly
		for e := range g.F {
			p := float64(d[k.idx[e]])
			for f, v := range x {
				if f != e && k.idx[f] == k.idx[e] {
					p *= float64(v)
				}
			}
			g.F[e] = float32(p)
		}
		return g, nil
	case "L1":
		for e, v := range x {
			s := float32(0)
			if v > 0 {
				s = 1
			} else if v < 0 {
				s = -1
			}
			g.F[e] = d[k.idx[e]] * s
		}
		return g, nil
	case "L2":
		for e, v := range x {
			if y := out.F[k.idx[e]]; y != 0 {
				g.F[e] = d[k.idx[e]] * v / y
			}
		}
		return g, nil
	case "SumSquare":
		for e, v := range x {
			g.F[e] = 2 * v * d[k.idx[e]]
		}
		return g, nil
	case "LogSum":
		for e := range x {
			g.F[e] = d[k.idx[e]] * float32(math.Exp(-float64(out.F[k.idx[e]])))
		}
		return g, nil
	case "LogSumExp":
		for e, v := range x {
			g.F[e] = d[k.idx[e]] * float32(math.Exp(float64(v)-float64(out.F[k.idx[e]])))
		}
		return g, nil
	}
	switch k.op {
	case "Max", "Min":
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
	if c.n.OpType == "ReduceSum" && c.opset >= 13 || c.opset >= 18 {
		if c.has("axes") {
			return c.errorf("%s at opset %d takes axes as input 1, not as an attribute", c.n.OpType, c.opset)
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
	op := reduceNames[c.n.OpType]
	if len(axes) == 0 && noop && (op == "Sum" || op == "Mean" || op == "Max" || op == "Min" || op == "Prod" || op == "LogSumExp") {
		// a reduction over no axes reduces each element alone: the
		// identity for these; L1, L2, LogSum and SumSquare still apply
		// their elementwise step (|x|, log x, x²) below
		c.alias(0, x)
		return nil
	}
	marked := make([]bool, rank)
	if len(axes) == 0 && !noop {
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
	k := newReduce(op, x.shape, marked, keep != 0)
	if slices.Contains(x.shape, 0) && op != "Sum" && op != "SumSquare" && op != "L1" && op != "L2" && op != "Prod" && op != "LogSum" {
		return c.errorf("%s of an empty tensor is undefined", c.n.OpType)
	}
	if !x.carried {
		return c.apply(0, k, k.out, x.dtype, 0)
	}
	// a bool or integer computed at run time (carried as float32): Max,
	// Min, Sum and Prod of integers are the integers the float kernel
	// computes (ReduceMax and ReduceMin take bool from opset 20)
	if op != "Max" && op != "Min" && op != "Sum" && op != "Prod" {
		return c.errorf("%s of a bool or integer tensor computed at run time (%q) is not supported", c.n.OpType, x.name)
	}
	if err := c.apply(0, k, k.out, x.dtype, 0); err != nil {
		return err
	}
	if v := c.b.vals[c.outName(0)]; v != nil {
		v.carried = true
	}
	return nil
}
