package surgery

import "github.com/graftml/graft/onnx"

// Quantized (QDQ) models store a layer's weight as an integer initializer
// read through a DequantizeLinear; the layer reads the DequantizeLinear's
// output. graft computes with the float weight that output stands for,
// so the output counts as the weight: Layers lists it, FindCut sees the
// layer, CountParams counts it. Such weights stay frozen: graft writes
// trained weights back as float initializers only (UpdateWeights refuses
// a changed quantized weight).

// QuantWeight is a weight stored quantized.
type QuantWeight struct {
	// Node is the index of the DequantizeLinear node.
	Node int
	// Tensor is the quantized initializer it reads.
	Tensor *onnx.TensorProto
}

// QuantizedWeights returns the DequantizeLinear nodes whose quantized
// input is an initializer, by the name of their output.
func QuantizedWeights(mp *onnx.ModelProto) map[string]QuantWeight {
	g := mp.GetGraph()
	if g == nil {
		return nil
	}
	inits := map[string]*onnx.TensorProto{}
	for _, t := range g.Initializer {
		inits[t.Name] = t
	}
	out := map[string]QuantWeight{}
	for i, n := range g.Node {
		if n.OpType != "DequantizeLinear" || (n.Domain != "" && n.Domain != "ai.onnx") || len(n.Input) == 0 || len(n.Output) != 1 {
			continue
		}
		if t, ok := inits[n.Input[0]]; ok && !isFloatType(t.DataType) {
			out[n.Output[0]] = QuantWeight{Node: i, Tensor: t}
		}
	}
	return out
}

// FloatType returns the ONNX float element type of tensor name in mp
// (FLOAT 1, FLOAT16 10, DOUBLE 11, BFLOAT16 16), so that what graft adds
// after it (a head, a Softmax) is written in the same type: a float16
// model stays float16. It reads declared types (inputs, outputs,
// value_info, initializers, Constants) and Cast targets, and otherwise
// follows the first input of the producing node, as the float ops keep
// their input's type; a DequantizeLinear gives its scale's type. It
// returns 1 when nothing says otherwise.
func FloatType(mp *onnx.ModelProto, name string) int32 {
	g := mp.GetGraph()
	declared := map[string]int32{}
	for _, vs := range [][]*onnx.ValueInfoProto{g.GetInput(), g.GetOutput(), g.GetValueInfo()} {
		for _, v := range vs {
			if e := v.GetType().GetTensorType().GetElemType(); e != 0 {
				declared[v.GetName()] = e
			}
		}
	}
	for _, t := range g.GetInitializer() {
		declared[t.GetName()] = t.GetDataType()
	}
	producer := map[string]*onnx.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	cur := name
	for range len(g.GetNode()) + 1 {
		if e, ok := declared[cur]; ok {
			if isFloatType(e) || e == 16 {
				return e
			}
			return 1
		}
		n := producer[cur]
		if n == nil || len(n.GetInput()) == 0 {
			break
		}
		switch n.GetOpType() {
		case "Cast":
			to := attrInt(n, "to", 1)
			if isFloatType(int32(to)) || to == 16 {
				return int32(to)
			}
			return 1
		case "DequantizeLinear":
			if len(n.GetInput()) > 1 {
				cur = n.GetInput()[1]
				continue
			}
			return 1
		}
		cur = n.GetInput()[0]
	}
	return 1
}
