package graph

import (
	"fmt"
	"slices"
	"strings"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
)

// value is what the builder knows of one ONNX tensor.
type value struct {
	name  string
	dtype onnx.DType
	shape []int        // logical ONNX shape
	t     *onnx.Tensor // the value, when known at build time
	param bool         // t is a float initializer: a weight
	// carried: a bool or integer tensor computed at run time, held as
	// float32 (see logic.go)
	carried bool
	node    *G.Node // the gorgonia node, when one exists
}

// builder turns an ONNX graph into a gorgonia graph for fixed input shapes.
type builder struct {
	m      *Model
	file   string
	opset  int
	vals   map[string]*value
	frozen map[string]bool // initializers that stay constants (folded)
	// constWeights: an inference-only build whose weights nobody updates
	// (Freeze, not training, no shared Options.Weights), so kernels may
	// prepare them once (packed matrices)
	constWeights bool
	pre          *onnx.Preprocessing // binds symbolic image sizes, when recorded
}

// nodeCtx is an op builder's view of one ONNX node.
type nodeCtx struct {
	b     *builder
	n     *onnx.NodeProto
	index int
	opset int
	in    []*value // nil for absent optional inputs
}

func (c *nodeCtx) errorf(format string, args ...any) error {
	for i, a := range args {
		args[i] = brief(a)
	}
	return &NodeError{File: c.b.file, Node: onnx.NodeLabel(c.n, c.index), Msg: fmt.Sprintf(format, args...)}
}

// briefMax is the most values of a list an error message prints.
const briefMax = 16

// brief shortens a long list of values (shapes, pads, splits a model
// sets) to its first values and its length, so that an error about a
// tensor of millions of values stays one line and costs nothing to
// format. Other values are returned as they are.
func brief(a any) any {
	switch v := a.(type) {
	case []int:
		return briefList(v)
	case []int64:
		return briefList(v)
	case []float32:
		return briefList(v)
	}
	return a
}

type shortList string

func (s shortList) String() string { return string(s) }

func briefList[T int | int64 | float32](v []T) any {
	if len(v) <= briefMax {
		return v
	}
	return shortList(strings.TrimSuffix(fmt.Sprint(v[:briefMax-1]), "]") + fmt.Sprintf(" ...] (%d values)", len(v)))
}

// NodeError reports a problem building one node.
type NodeError struct {
	File, Node, Msg string
}

func (e *NodeError) Error() string {
	s := e.Node + ": " + e.Msg
	if e.File != "" {
		s = e.File + ": " + s
	}
	return s
}

// input returns input i, or an error when it is absent.
func (c *nodeCtx) input(i int) (*value, error) {
	if i >= len(c.in) || c.in[i] == nil {
		return nil, c.errorf("input %d is required", i)
	}
	return c.in[i], nil
}

// optional reports whether input i is present.
func (c *nodeCtx) optional(i int) bool { return i < len(c.in) && c.in[i] != nil }

// constInput returns the value of input i, which must be known when the
// graph is built (a constant, an initializer, or computed from those).
func (c *nodeCtx) constInput(i int) (*onnx.Tensor, error) {
	v, err := c.input(i)
	if err != nil {
		return nil, err
	}
	if v.t == nil {
		return nil, c.errorf("input %d (%q) must be known when the graph is built (a constant or initializer); graft cannot compute it from the model's inputs", i, v.name)
	}
	return v.t, nil
}

// constInts returns input i as ints, or nil, false when it is absent.
func (c *nodeCtx) constInts(i int) ([]int, bool, error) {
	if !c.optional(i) {
		return nil, false, nil
	}
	t, err := c.constInput(i)
	if err != nil {
		return nil, false, err
	}
	if t.DType != onnx.Int64 {
		return nil, false, c.errorf("input %d (%q) must be an integer tensor", i, c.in[i].name)
	}
	return t.Ints(), true, nil
}

// outName is the ONNX name of output i.
func (c *nodeCtx) outName(i int) string {
	if i < len(c.n.Output) {
		return c.n.Output[i]
	}
	return ""
}

// setConst records a build-time value for output i.
func (c *nodeCtx) setConst(i int, t *onnx.Tensor) {
	name := c.outName(i)
	if name == "" {
		return
	}
	t.Name = name
	c.b.vals[name] = &value{name: name, dtype: t.DType, shape: t.Shape, t: t}
}

// alias makes output i the same value as v (Identity, Dropout, Reshape of
// a known value keeps its node when shapes agree).
func (c *nodeCtx) alias(i int, v *value) {
	name := c.outName(i)
	if name == "" {
		return
	}
	cp := *v
	cp.name = name
	cp.param = false
	c.b.vals[name] = &cp
}

// apply computes output i with kernel k over the given inputs (indices into
// the node's inputs). When every one of them is known at build time and
// none is a weight, k runs now and the output is a constant (this is how
// shape subgraphs fold). Otherwise it becomes a gorgonia node.
func (c *nodeCtx) apply(i int, k kernel, shape []int, dtype onnx.DType, inputs ...int) error {
	ins := make([]*value, len(inputs))
	fold := true
	for j, idx := range inputs {
		v, err := c.input(idx)
		if err != nil {
			return err
		}
		ins[j] = v
		if v.t == nil || (v.param && !c.b.frozen[v.name]) {
			fold = false
		}
	}
	if fold {
		ts := make([]*onnx.Tensor, len(ins))
		for j, v := range ins {
			ts[j] = v.t
		}
		r, err := k.forward(ts)
		if err != nil {
			return c.errorf("%v", err)
		}
		if !slices.Equal(r.Shape, shape) && onnx.NumElems(r.Shape) == onnx.NumElems(shape) {
			r.Shape = append([]int(nil), shape...)
		}
		c.setConst(i, r)
		return nil
	}
	if dtype != onnx.Float32 {
		return c.errorf("computes an %s tensor from the model's inputs; graft computes integer tensors only from constants", dtype)
	}
	if onnx.NumElems(shape) == 0 {
		return c.errorf("output %q would have no elements (shape %v)", c.outName(i), shape)
	}
	nodes := make(G.Nodes, len(ins))
	op := &kop{k: k, opType: c.n.OpType, id: c.outName(i), out: append([]int(nil), shape...)}
	for j, v := range ins {
		if v.dtype != onnx.Float32 {
			return c.errorf("input %q is %s and not a constant; graft computes integer tensors only from constants", v.name, v.dtype)
		}
		n, err := c.b.nodeOf(v)
		if err != nil {
			return err
		}
		nodes[j] = n
		op.in = append(op.in, v.shape)
		op.diff = append(op.diff, true)
	}
	if op.id == "" {
		op.id = fmt.Sprintf("%s#%d.%d", c.n.OpType, c.index, i)
	}
	n, err := G.ApplyOpWithName(op, op.id, nodes...)
	if err != nil {
		return c.errorf("building gorgonia node: %v", err)
	}
	name := c.outName(i)
	if name != "" {
		c.b.vals[name] = &value{name: name, dtype: onnx.Float32, shape: op.out, node: n}
		c.b.m.nodes[name] = n
	}
	return nil
}

// nodeOf returns the gorgonia node of v, creating an input node holding
// its value for weights and constants.
func (b *builder) nodeOf(v *value) (*G.Node, error) {
	if v.node != nil {
		return v.node, nil
	}
	if v.t == nil {
		return nil, fmt.Errorf("%s: tensor %q has no value and no node", b.file, v.name)
	}
	if v.t.Len() == 0 {
		return nil, fmt.Errorf("%s: tensor %q has no elements", b.file, v.name)
	}
	shape := gshape(v.shape)
	n := G.NewTensor(b.m.G, G.Float32, len(shape), G.WithShape(shape...), G.WithName(v.name), G.WithValue(wrap(v.t, false)))
	v.node = n
	b.m.nodes[v.name] = n
	if v.param {
		b.m.Params[v.name] = n
	}
	return n, nil
}
