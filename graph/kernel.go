package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A kernel is the math of one op instance. Shapes and attributes are fixed
// when the kernel is made, so forward and backward are pure functions of
// their tensor arguments and can be tested without gorgonia or protobuf.
type kernel interface {
	// forward computes the output. Inputs carry the logical (ONNX) shapes
	// the kernel was built for.
	forward(in []*onnx.Tensor) (*onnx.Tensor, error)
}

// A gradKernel can also propagate gradients.
type gradKernel interface {
	kernel
	// backward returns dL/d(in[i]) given the inputs, the forward output
	// and dL/d(out). It is only called for inputs marked differentiable.
	backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error)
}

// A gradIntoKernel can write dL/d(in[i]) into dx, of in[i]'s shape and
// all zeros, instead of a fresh tensor, so that the gradients of a
// TrainGraph reuse their buffers from step to step (see kop.recycle).
type gradIntoKernel interface {
	gradKernel
	backwardInto(i int, in []*onnx.Tensor, out, dy, dx *onnx.Tensor) error
}

// freshGrad is backward for a gradIntoKernel: its gradient written into
// a new tensor of in[i]'s shape.
func freshGrad(k gradIntoKernel, i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if i < 0 || i >= len(in) {
		return nil, fmt.Errorf("no input %d", i)
	}
	dx := onnx.NewFloat(in[i].Shape, nil)
	if err := k.backwardInto(i, in, out, dy, dx); err != nil {
		return nil, err
	}
	return dx, nil
}

// gshape is the shape a logical ONNX shape has inside gorgonia, which
// cannot hold rank-0 tensors as tensor nodes: a scalar becomes [1].
func gshape(s []int) tensor.Shape {
	if len(s) == 0 {
		return tensor.Shape{1}
	}
	return tensor.Shape(append([]int(nil), s...))
}

func ttype(s []int) hm.Type {
	return G.TensorType{Dims: len(gshape(s)), Of: G.Float32}
}

// kop adapts a kernel to gorgonia's Op interface. Every graph node graft
// builds from ONNX is a kop; its hash includes the ONNX tensor it
// computes, so gorgonia never merges two of them.
type kop struct {
	k      kernel
	opType string  // ONNX op type, for messages
	id     string  // the ONNX output tensor name (unique in a graph)
	in     [][]int // logical input shapes
	out    []int   // logical output shape
	diff   []bool  // which inputs are differentiable
	scalar bool    // output is a gorgonia scalar (a loss)

	// recycle, set on the kops of a TrainGraph (whose values are valid
	// until the next Step), makes Do write into the buffer it returned
	// the step before, when the kernel can write into a given buffer, so
	// that a training step does not allocate its activations again.
	recycle bool
	last    *onnx.Tensor
}

// recyclable reports whether k's forward on in is exactly a fresh output
// filled by forwardInto, so that Do may hand forwardInto last step's
// output instead: float inputs, and none of the kernels whose forward
// does more (batch-statistics BatchNormalization) or returns a view.
func recyclable(k kernel, in []*onnx.Tensor) (intoKernel, bool) {
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return nil, false
		}
	}
	switch k := k.(type) {
	case *convKernel, *naryKernel, *unaryKernel, *gemmKernel, *matmulKernel, *poolKernel, *globalPoolKernel, *concatKernel:
		return k.(intoKernel), true
	case *bnKernel:
		return k, !k.batch
	}
	return nil, false
}

func (o *kop) Arity() int { return len(o.in) }

func (o *kop) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.in)+1)
	for _, s := range o.in {
		ts = append(ts, ttype(s))
	}
	if o.scalar {
		ts = append(ts, G.Float32)
	} else {
		ts = append(ts, ttype(o.out))
	}
	return hm.NewFnType(ts...)
}

func (o *kop) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if o.scalar {
		return tensor.ScalarShape(), nil
	}
	return gshape(o.out), nil
}

func (o *kop) Do(vs ...G.Value) (G.Value, error) {
	in, err := unwrap(vs, o.in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	if o.recycle && !o.scalar {
		if ik, ok := recyclable(o.k, in); ok {
			if o.last == nil {
				o.last = onnx.NewFloat(o.out, nil)
			}
			if err := ik.forwardInto(in, o.last); err != nil {
				return nil, fmt.Errorf("%s: %w", o, err)
			}
			return wrap(o.last, false), nil
		}
	}
	out, err := o.k.forward(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	return wrap(out, o.scalar), nil
}

func (o *kop) ReturnsPtr() bool     { return false }
func (o *kop) CallsExtern() bool    { return false }
func (o *kop) OverwritesInput() int { return -1 }
func (o *kop) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "graft.%s:%s", o.opType, o.id)
}
func (o *kop) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *kop) String() string { return fmt.Sprintf("%s %q", o.opType, o.id) }

// DiffWRT and SymDiff make every kop a symbolically differentiable op.
func (o *kop) DiffWRT(int) []bool { return o.diff }

func (o *kop) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	gk, ok := o.k.(gradKernel)
	if !ok {
		return nil, fmt.Errorf("op %s (node computing %q) has no gradient in graft; keep it frozen", o.opType, o.id)
	}
	args := append(append(G.Nodes{}, inputs...), output, grad)
	res := make(G.Nodes, len(inputs))
	for i := range inputs {
		if !o.diff[i] {
			continue
		}
		n, err := G.ApplyOp(&gradOp{fwd: o, k: gk, i: i}, args...)
		if err != nil {
			return nil, fmt.Errorf("gradient of %s: %w", o, err)
		}
		res[i] = n
	}
	return res, nil
}

// gradOp computes the gradient of a kop's output with respect to its
// input i. Its arguments are the kop's inputs, its output and dL/dout.
type gradOp struct {
	fwd  *kop
	k    gradKernel
	i    int
	last *onnx.Tensor // the gradient of the step before, when fwd.recycle
}

func (o *gradOp) Arity() int { return len(o.fwd.in) + 2 }

func (o *gradOp) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.fwd.in)+3)
	for _, s := range o.fwd.in {
		ts = append(ts, ttype(s))
	}
	if o.fwd.scalar {
		ts = append(ts, G.Float32, G.Float32)
	} else {
		ts = append(ts, ttype(o.fwd.out), ttype(o.fwd.out))
	}
	return hm.NewFnType(append(ts, ttype(o.fwd.in[o.i]))...)
}

func (o *gradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return gshape(o.fwd.in[o.i]), nil
}

func (o *gradOp) Do(vs ...G.Value) (G.Value, error) {
	n := len(o.fwd.in)
	in, err := unwrap(vs[:n], o.fwd.in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	outs, err := unwrap(vs[n:], [][]int{o.fwd.out, o.fwd.out})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	if gk, ok := o.k.(gradIntoKernel); ok && o.fwd.recycle {
		if o.last == nil {
			o.last = onnx.NewFloat(o.fwd.in[o.i], nil)
		} else {
			clear(o.last.F)
		}
		if err := gk.backwardInto(o.i, in, outs[0], outs[1], o.last); err != nil {
			return nil, fmt.Errorf("%s: %w", o, err)
		}
		return wrap(o.last, false), nil
	}
	g, err := o.k.backward(o.i, in, outs[0], outs[1])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	return wrap(g, false), nil
}

func (o *gradOp) ReturnsPtr() bool     { return false }
func (o *gradOp) CallsExtern() bool    { return false }
func (o *gradOp) OverwritesInput() int { return -1 }
func (o *gradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "graft.grad%d.%s:%s", o.i, o.fwd.opType, o.fwd.id)
}
func (o *gradOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *gradOp) String() string { return fmt.Sprintf("∂%s/∂in%d", o.fwd, o.i) }

// unwrap views gorgonia values as onnx tensors with the given logical
// shapes, without copying.
func unwrap(vs []G.Value, shapes [][]int) ([]*onnx.Tensor, error) {
	out := make([]*onnx.Tensor, len(vs))
	for i, v := range vs {
		var data []float32
		switch x := v.(type) {
		case *tensor.Dense:
			d, ok := x.Data().([]float32)
			if !ok {
				if f, ok := x.Data().(float32); ok {
					d = []float32{f}
				} else {
					return nil, fmt.Errorf("input %d: want float32 data, got %T", i, x.Data())
				}
			}
			data = d
		case *G.F32:
			data = []float32{float32(*x)}
		default:
			return nil, fmt.Errorf("input %d: unexpected value type %T", i, v)
		}
		if len(data) != onnx.NumElems(shapes[i]) {
			return nil, fmt.Errorf("input %d: %d elements, shape %v expected", i, len(data), shapes[i])
		}
		out[i] = &onnx.Tensor{DType: onnx.Float32, Shape: shapes[i], F: data}
	}
	return out, nil
}

func wrap(t *onnx.Tensor, scalar bool) G.Value {
	if scalar {
		v := G.F32(t.F[0])
		return &v
	}
	return tensor.New(tensor.WithShape(gshape(t.Shape)...), tensor.WithBacking(t.F))
}
