package graph

import (
	"fmt"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
)

// Low-precision floats. graft holds every float tensor as float32; a
// float16 or bfloat16 tensor is the float32 of its value. Where a model
// asks for the narrow type explicitly, graft rounds as ONNX Runtime
// does: a Cast to float16 or bfloat16 (narrowKernel), a float16 graph
// input (rounded when fed, see Model.Run), a float16 graph output
// (rounded when returned). Everything between is computed in float32,
// so a float16 model's outputs are at least as accurate as ONNX
// Runtime's, which rounds after every op.

// narrowFloat returns the rounding of ONNX float element type elem, or
// nil for float and double (which graft holds as float32 unchanged).
func narrowFloat(elem int) func(float32) float32 {
	switch elem {
	case 10:
		return onnx.RoundHalf
	case 16:
		return onnx.RoundBFloat16
	}
	return nil
}

// narrowKernel rounds every element to a narrower float type. Its gradient
// passes straight through (d round(x)/dx taken as 1), as PyTorch's
// x.half().float() does.
type narrowKernel struct {
	round func(float32) float32
}

func (k *narrowKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	out := onnx.NewFloat(x.Shape, nil)
	if x.DType == onnx.Int64 {
		for i, v := range x.I {
			out.F[i] = k.round(float32(v))
		}
		return out, nil
	}
	for i, v := range x.F {
		out.F[i] = k.round(v)
	}
	return out, nil
}

func (k *narrowKernel) backward(_ int, _ []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	return dy.Clone(), nil
}

// castNarrow builds a Cast to float16 or bfloat16 (to 10 or 16), or
// reports false for other targets.
func castNarrow(c *nodeCtx, to int, x *value) (bool, error) {
	round := narrowFloat(to)
	if round == nil {
		return false, nil
	}
	return true, c.applyMove(0, &narrowKernel{round: round}, x.shape, onnx.Float32, 0)
}

// roundTensor rounds a float tensor in place to ONNX element type elem
// (float16, bfloat16); other types are left alone.
func roundTensor(t *onnx.Tensor, elem int) {
	if round := narrowFloat(elem); round != nil && t != nil && t.DType == onnx.Float32 {
		for i, v := range t.F {
			t.F[i] = round(v)
		}
	}
}

// narrowNode returns a node computing n rounded to ONNX float type elem
// (float16, bfloat16), or n itself for other types. id names the new
// node (unique in the graph).
func (b *builder) narrowNode(id string, n *G.Node, shape []int, elem int) (*G.Node, error) {
	round := narrowFloat(elem)
	if round == nil {
		return n, nil
	}
	op := &kop{k: &narrowKernel{round: round}, opType: "Cast", id: id, in: [][]int{shape}, out: append([]int(nil), shape...), diff: []bool{true}}
	r, err := G.ApplyOpWithName(op, id, n)
	if err != nil {
		return nil, fmt.Errorf("%s: rounding %q to element type %d: %w", b.file, id, elem, err)
	}
	return r, nil
}

// declaredElem returns the element type a graph output declares (0 when
// it declares none).
func declaredElem(g *onnx.GraphProto, name string) int {
	for _, o := range g.GetOutput() {
		if o.GetName() == name {
			return int(o.GetType().GetTensorType().GetElemType())
		}
	}
	return 0
}
