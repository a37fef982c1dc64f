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
