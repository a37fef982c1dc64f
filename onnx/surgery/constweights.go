package surgery

import (
	"fmt"

	"github.com/graftml/graft/onnx"
)

// Exporters other than PyTorch (paddle2onnx, tf2onnx, Caffe2) often store
// weights as Constant nodes rather than initializers. This file finds the
// Constants that are weights, so that graft counts, lists, freezes, trains
// and writes them back like initializers; every other Constant (Clip
// bounds, shapes, scalars) stays a build-time constant.

// weightInputs lists, per weighted op, the inputs that hold weights (the
// inputs a Constant must feed to count as a weight). Running statistics
// (BatchNormalization's inputs 3 and 4) are not weights.
var weightInputs = map[string][]int{
	"Conv": {1, 2}, "ConvTranspose": {1, 2}, "Gemm": {1, 2}, "MatMul": {1},
	"BatchNormalization": {1, 2}, "LayerNormalization": {1, 2},
	"InstanceNormalization": {1, 2}, "PRelu": {1},
}

// biasAfter are the ops whose output an Add (bias) or Mul (scale) with a
// weight operand extends: MatMul+Add is a linear layer, Conv+Add a
// convolution with its bias stored apart.
var biasAfter = map[string]bool{"MatMul": true, "Conv": true, "ConvTranspose": true, "Gemm": true}

// ConstWeight is a weight stored as a Constant node.
type ConstWeight struct {
	// Node is the index of the Constant node holding the value.
	Node int
	// Tensor is its value (the node's "value" attribute, or a tensor made
	// from "value_float(s)").
	Tensor *onnx.TensorProto
}

// ConstantWeights returns the float Constant nodes (read directly or
// through an Identity) that feed a weight input of a weighted op, or the
// bias or scale operand of an Add or Mul after a MatMul, Gemm, Conv or
// ConvTranspose, by the tensor name the weighted op reads.
func ConstantWeights(mp *onnx.ModelProto) map[string]ConstWeight {
	g := mp.Graph
	if g == nil {
		return nil
	}
	consts := map[string]ConstWeight{} // float Constant outputs, and Identities of them
	producer := map[string]*onnx.NodeProto{}
	for i, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
		switch {
		case n.OpType == "Constant" && (n.Domain == "" || n.Domain == "ai.onnx") && len(n.Output) == 1:
			if t := floatConstant(n); t != nil {
				consts[n.Output[0]] = ConstWeight{Node: i, Tensor: t}
			}
		case n.OpType == "Identity" && len(n.Input) == 1 && len(n.Output) == 1:
			if c, ok := consts[n.Input[0]]; ok {
				consts[n.Output[0]] = c
			}
		}
	}
	out := map[string]ConstWeight{}
	for _, n := range g.Node {
		for _, i := range weightInputs[n.OpType] {
			if i < len(n.Input) {
				if c, ok := consts[n.Input[i]]; ok {
					out[n.Input[i]] = c
				}
			}
		}
		if (n.OpType == "Add" || n.OpType == "Mul") && len(n.Input) == 2 {
			for j, in := range n.Input {
				c, ok := consts[in]
				p := producer[n.Input[1-j]]
				if ok && p != nil && biasAfter[p.OpType] {
					out[in] = c
				}
			}
		}
	}
	return out
}

// floatConstant returns the float value of a Constant node as a
// TensorProto, or nil when it holds no float tensor.
func floatConstant(n *onnx.NodeProto) *onnx.TensorProto {
	for _, a := range n.Attribute {
		switch a.Name {
		case "value":
			if t := a.T; t != nil && isFloatType(t.DataType) {
				return t
			}
		case "value_floats":
			return &onnx.TensorProto{Dims: []int64{int64(len(a.Floats))}, DataType: 1, FloatData: a.Floats}
		}
	}
	return nil
}

func isFloatType(dt int32) bool { return dt == 1 || dt == 10 || dt == 11 }

// weightTensors returns the float initializers and the Constant weights
// of mp by the name the graph reads them as.
func weightTensors(mp *onnx.ModelProto) map[string]*onnx.TensorProto {
	out := map[string]*onnx.TensorProto{}
	for _, t := range mp.Graph.Initializer {
		out[t.Name] = t
	}
	for name, c := range ConstantWeights(mp) {
		if _, ok := out[name]; !ok {
			out[name] = c.Tensor
		}
	}
	for name, q := range QuantizedWeights(mp) {
		if _, ok := out[name]; !ok {
			out[name] = q.Tensor
		}
	}
	return out
}

// updateConstant writes a changed weight back into the Constant node it
// came from, in the form it had ("value" stays a TensorProto,
// "value_floats" stays a float list).
func updateConstant(mp *onnx.ModelProto, name string, c ConstWeight, w *onnx.Tensor) (bool, error) {
	old, err := onnx.TensorFromProto(c.Tensor)
	if err != nil {
		return false, fmt.Errorf("constant weight %q: %w", name, err)
	}
	if old.DType != onnx.Float32 || w.DType != onnx.Float32 {
		return false, nil
	}
	if len(old.F) != len(w.F) {
		return false, fmt.Errorf("constant weight %q: shape %v, new value has shape %v", name, old.Shape, w.Shape)
	}
	if sameBits(old.F, w.F) {
		return false, nil
	}
	if c.Tensor.DataType != 1 {
		return false, fmt.Errorf("constant weight %q changed but is stored as ONNX type %d; graft writes changed weights as float32 only", name, c.Tensor.DataType)
	}
	n := mp.Graph.Node[c.Node]
	for _, a := range n.Attribute {
		switch a.Name {
		case "value":
			nt := w.Clone()
			nt.Shape = old.Shape
			np := nt.ToProto()
			np.Name = a.T.Name
			np.DocString = a.T.DocString
			a.T = np
		case "value_floats":
			a.Floats = append([]float32(nil), w.F...)
		}
	}
	return true, nil
}
