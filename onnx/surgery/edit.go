package surgery

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
	"google.golang.org/protobuf/proto"
)

// This file is the write half of the weight round trip: it starts from
// the original ModelProto and changes only what graft changed, so node
// names, doc strings, opset imports, producer fields and unknown fields
// survive, and weights that did not change stay bit-identical.

// CloneProto deep-copies a ModelProto.
func CloneProto(mp *onnx.ModelProto) *onnx.ModelProto {
	return proto.Clone(mp).(*onnx.ModelProto)
}

// UpdateWeights writes new values into the initializers and Constant
// weights (see ConstantWeights) of mp. A weight whose value did not change
// keeps its original encoding; a changed initializer is rewritten as
// raw_data of its type (float32, or float16 rounded to nearest even), a changed Constant stays a Constant holding float32
// raw_data. It returns the names of the weights it rewrote.
func UpdateWeights(mp *onnx.ModelProto, weights map[string]*onnx.Tensor) ([]string, error) {
	var changed []string
	isInit := map[string]bool{}
	for _, tp := range mp.Graph.Initializer {
		isInit[tp.Name] = true
	}
	cw := ConstantWeights(mp)
	for _, name := range slices.Sorted(maps.Keys(cw)) {
		w, ok := weights[name]
		if !ok || isInit[name] {
			continue
		}
		did, err := updateConstant(mp, name, cw[name], w)
		if err != nil {
			return nil, err
		}
		if did {
			changed = append(changed, name)
		}
	}
	for i, tp := range mp.Graph.Initializer {
		w, ok := weights[tp.Name]
		if !ok {
			continue
		}
		old, err := onnx.TensorFromProto(tp)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", tp.Name, err)
		}
		if old.DType != onnx.Float32 || w.DType != onnx.Float32 {
			continue
		}
		if !slices.Equal(old.Shape, w.Shape) || len(old.F) != len(w.F) {
			return nil, fmt.Errorf("initializer %q: shape %v, new value has shape %v", tp.Name, old.Shape, w.Shape)
		}
		if sameBits(old.F, w.F) {
			continue
		}
		if tp.DataType != 1 && tp.DataType != 10 {
			return nil, fmt.Errorf("initializer %q changed but is stored as ONNX type %d; graft writes changed weights as float32 and float16 only", tp.Name, tp.DataType)
		}
		nt := w.Clone()
		nt.Name = tp.Name
		np := nt.ToProtoAs(tp.DataType) // float16 stays float16, rounded to nearest even
		np.DocString = tp.DocString
		mp.Graph.Initializer[i] = np
		changed = append(changed, tp.Name)
	}
	return changed, nil
}

func sameBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// CutAt removes every node computed from tensor, making tensor the only
// graph output, and prunes what nothing uses any more. Its shape is set by
// SetOutputs afterwards.
func CutAt(mp *onnx.ModelProto, tensor string) error {
	g := mp.Graph
	if !definesTensor(g, tensor) {
		return fmt.Errorf("no tensor named %q", tensor)
	}
	tainted := map[string]bool{tensor: true}
	var keep []*onnx.NodeProto
	for _, n := range g.Node {
		hit := false
		for _, in := range n.Input {
			if tainted[in] {
				hit = true
			}
		}
		if hit {
			for _, o := range n.Output {
				tainted[o] = true
			}
			continue
		}
		keep = append(keep, n)
	}
	g.Node = keep
	g.Output = []*onnx.ValueInfoProto{{Name: tensor}}
	Prune(mp)
	return nil
}

func definesTensor(g *onnx.GraphProto, name string) bool {
	for _, in := range g.Input {
		if in.Name == name {
			return true
		}
	}
	for _, n := range g.Node {
		if slices.Contains(n.Output, name) {
			return true
		}
	}
	return false
}

// Prune removes nodes whose outputs nothing needs, then initializers,
// value_infos and initializer-backed graph inputs that no node uses.
func Prune(mp *onnx.ModelProto) {
	g := mp.Graph
	needed := map[string]bool{}
	for _, o := range g.Output {
		needed[o.Name] = true
	}
	var keep []*onnx.NodeProto
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		use := false
		for _, o := range n.Output {
			if needed[o] {
				use = true
			}
		}
		if !use {
			continue
		}
		keep = append(keep, n)
		for _, in := range n.Input {
			needed[in] = true
		}
	}
	slices.Reverse(keep)
	g.Node = keep
	wasInit := map[string]bool{}
	var ki []*onnx.TensorProto
	for _, t := range g.Initializer {
		wasInit[t.Name] = true
		if needed[t.Name] {
			ki = append(ki, t)
		}
	}
	g.Initializer = ki
	var kin []*onnx.ValueInfoProto
	for _, in := range g.Input {
		// Old IR versions list weights as graph inputs too: drop those of
		// pruned weights. Real inputs stay, used or not.
		if needed[in.Name] || !wasInit[in.Name] {
			kin = append(kin, in)
		}
	}
	g.Input = kin
	var kvi []*onnx.ValueInfoProto
	for _, vi := range g.ValueInfo {
		if needed[vi.Name] {
			kvi = append(kvi, vi)
		}
	}
	g.ValueInfo = kvi
}

// SetMetadata sets (or adds) a metadata_props entry.
func SetMetadata(mp *onnx.ModelProto, key, value string) {
	for _, p := range mp.MetadataProps {
		if p.Key == key {
			p.Value = value
			return
		}
	}
	mp.MetadataProps = append(mp.MetadataProps, &onnx.StringStringEntryProto{Key: key, Value: value})
}

// SubModel returns a model that computes output from tensor input of
// the given shape (its first dimension symbolic "N"): the nodes between
// them and the initializers they use. Head training on cached features
// uses it to run only the head.
func SubModel(mp *onnx.ModelProto, input string, shape []int, output string) (*onnx.ModelProto, error) {
	sub := CloneProto(mp)
	g := sub.Graph
	if !definesTensor(g, input) {
		return nil, fmt.Errorf("no tensor named %q", input)
	}
	// Keep the nodes computed from input, and the static ones (Constant
	// nodes, computations on initializers only) that they may read;
	// Prune drops what the output does not need.
	var keep []*onnx.NodeProto
	tainted := map[string]bool{input: true}
	static := map[string]bool{}
	for _, t := range g.Initializer {
		static[t.Name] = true
	}
	for _, n := range g.Node {
		if slices.Contains(n.Output, input) {
			continue
		}
		hit, allStatic := false, true
		for _, in := range n.Input {
			if tainted[in] {
				hit = true
			}
			if in != "" && !static[in] {
				allStatic = false
			}
		}
		switch {
		case hit:
			keep = append(keep, n)
			for _, o := range n.Output {
				tainted[o] = true
			}
		case allStatic:
			keep = append(keep, n)
			for _, o := range n.Output {
				static[o] = true
			}
		}
	}
	if !tainted[output] {
		return nil, fmt.Errorf("%q is not computed from %q", output, input)
	}
	g.Node = keep
	g.Input = []*onnx.ValueInfoProto{onnx.ValueInfo(input, shape, 1, "N")}
	g.Output = []*onnx.ValueInfoProto{{Name: output}}
	g.ValueInfo = nil
	Prune(sub)
	for _, n := range g.Node {
		for _, in := range n.Input {
			if in != "" && !definesTensor(g, in) && !slices.ContainsFunc(g.Initializer, func(t *onnx.TensorProto) bool { return t.Name == in }) {
				return nil, fmt.Errorf("node %q reads %q, which is computed before %q", n.Name, in, input)
			}
		}
	}
	return sub, nil
}

// RemoveMetadata deletes every metadata_props entry with the key.
func RemoveMetadata(mp *onnx.ModelProto, key string) {
	var keep []*onnx.StringStringEntryProto
	for _, p := range mp.MetadataProps {
		if p.Key != key {
			keep = append(keep, p)
		}
	}
	mp.MetadataProps = keep
}

// CountParams counts the float parameters of mp's initializers and
// Constant weights.
func CountParams(mp *onnx.ModelProto) int64 {
	var n int64
	isInit := map[string]bool{}
	for _, t := range mp.Graph.Initializer {
		isInit[t.Name] = true
	}
	seen := map[int]bool{}
	for name, c := range ConstantWeights(mp) {
		if !isInit[name] && !seen[c.Node] {
			seen[c.Node] = true
			n += numElems(c.Tensor)
		}
	}
	quant := map[string]bool{} // quantized weights count as the floats they stand for
	for _, q := range QuantizedWeights(mp) {
		quant[q.Tensor.Name] = true
	}
	for _, t := range mp.Graph.Initializer {
		if t.DataType != 1 && t.DataType != 10 && t.DataType != 11 && !quant[t.Name] {
			continue
		}
		c := int64(1)
		for _, d := range t.Dims {
			c *= d
		}
		n += c
	}
	return n
}
