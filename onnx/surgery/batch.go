package surgery

import (
	"fmt"
	"strconv"

	"github.com/graftml/graft/onnx"
)

// SetBatch makes the batch dimension of every graph input symbolic
// ("dynamic") or fixed (a number). Reshape shape constants that hard-code
// the old fixed batch size get 0 (copy the input's dimension) instead, and
// intermediate value_infos, which record the old batch, are dropped.
func SetBatch(mp *onnx.ModelProto, batch string) error {
	dynamic := batch == "dynamic"
	n := 0
	if !dynamic {
		v, err := strconv.Atoi(batch)
		if err != nil || v < 1 {
			return fmt.Errorf("%q is neither \"dynamic\" nor a positive number", batch)
		}
		n = v
	}
	inits := map[string]*onnx.TensorProto{}
	for _, t := range mp.Graph.Initializer {
		inits[t.Name] = t
	}
	oldBatch := 0
	for _, in := range mp.Graph.Input {
		if _, ok := inits[in.Name]; ok {
			continue
		}
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 {
			continue
		}
		if v := dims[0].GetDimValue(); v > 0 {
			oldBatch = int(v)
		}
		if dynamic {
			dims[0].Value = &onnx.DimParam{DimParam: "N"}
		} else {
			dims[0].Value = &onnx.DimValue{DimValue: int64(n)}
		}
	}
	if oldBatch > 0 {
		fixReshapes(mp, inits, oldBatch)
	}
	mp.Graph.ValueInfo = nil
	return nil
}

// fixReshapes rewrites Reshape target shapes whose first entry is the old
// fixed batch size to 0, which copies the batch dimension of the input.
func fixReshapes(mp *onnx.ModelProto, inits map[string]*onnx.TensorProto, oldBatch int) {
	consts := map[string]*onnx.AttributeProto{}
	for _, n := range mp.Graph.Node {
		if n.OpType == "Constant" && len(n.Output) == 1 {
			for _, a := range n.Attribute {
				if a.Name == "value" && a.T != nil {
					consts[n.Output[0]] = a
				}
			}
		}
	}
	for _, n := range mp.Graph.Node {
		if n.OpType != "Reshape" || len(n.Input) < 2 {
			continue
		}
		allowZero := false
		for _, a := range n.Attribute {
			if a.Name == "allowzero" && a.I != 0 {
				allowZero = true
			}
		}
		if allowZero {
			continue
		}
		var tp *onnx.TensorProto
		if t, ok := inits[n.Input[1]]; ok {
			tp = t
		} else if a, ok := consts[n.Input[1]]; ok {
			tp = a.T
		}
		if tp == nil {
			continue
		}
		t, err := onnx.TensorFromProto(tp)
		if err != nil || t.DType != onnx.Int64 || len(t.I) < 2 || int(t.I[0]) != oldBatch {
			continue
		}
		t.I[0] = 0
		np := t.ToProto()
		tp.RawData, tp.Int64Data, tp.DataType = np.RawData, nil, np.DataType
	}
}

// OutputsHaveShapes reports whether every graph output declares a shape.
func OutputsHaveShapes(mp *onnx.ModelProto) bool {
	for _, o := range mp.Graph.Output {
		if o.GetType().GetTensorType().GetShape() == nil {
			return false
		}
	}
	return true
}
