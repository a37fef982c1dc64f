package surgery

import (
	"fmt"

	"github.com/graftml/graft/onnx"
)

// AppendSoftmax appends Softmax over axis 1 to a model with one output,
// which becomes the Softmax's output, named "probabilities" (or a fresh
// variant of it). It refuses a model whose output already comes out of
// a Softmax, or has fewer than 2 dimensions when its shape is declared.
func AppendSoftmax(mp *onnx.ModelProto) (string, error) {
	g := mp.Graph
	if len(g.Output) != 1 {
		return "", fmt.Errorf("softmax needs a model with one output; this one has %d", len(g.Output))
	}
	out := g.Output[0].Name
	for _, n := range g.Node {
		if len(n.Output) > 0 && n.Output[0] == out && n.OpType == "Softmax" {
			return "", fmt.Errorf("output %q already comes out of Softmax node %q", out, n.Name)
		}
	}
	if dims := g.Output[0].GetType().GetTensorType().GetShape().GetDim(); dims != nil && len(dims) < 2 {
		return "", fmt.Errorf("output %q has %d dimensions; softmax applies to [N, classes]", out, len(dims))
	}
	names := usedNames(g)
	p := uniqueName(names, "probabilities")
	g.Node = append(g.Node, &onnx.NodeProto{Name: uniqueName(names, "graft/Softmax"), OpType: "Softmax", Input: []string{out}, Output: []string{p},
		Attribute: []*onnx.AttributeProto{onnx.IntAttr("axis", 1)}})
	g.Output = []*onnx.ValueInfoProto{{Name: p}}
	return p, nil
}

// NameOutput gives a model's only output the name name, in the node
// that computes it, in every node that reads it and in the graph's
// outputs. A name some other tensor, input or node of the model has is
// refused.
func NameOutput(mp *onnx.ModelProto, name string) error {
	g := mp.Graph
	if len(g.Output) != 1 {
		return fmt.Errorf("renaming the output needs a model with one output; this one has %d", len(g.Output))
	}
	old := g.Output[0].Name
	if old == name {
		return nil
	}
	if usedNames(g)[name] {
		return fmt.Errorf("the model already has a tensor or node named %q", name)
	}
	for _, in := range g.Input {
		if in.Name == old {
			return fmt.Errorf("output %q is the model's input; graft does not rename inputs", old)
		}
	}
	for _, n := range g.Node {
		for i := range n.Input {
			if n.Input[i] == old {
				n.Input[i] = name
			}
		}
		for i := range n.Output {
			if n.Output[i] == old {
				n.Output[i] = name
			}
		}
	}
	for _, vi := range g.ValueInfo {
		if vi.Name == old {
			vi.Name = name
		}
	}
	g.Output[0].Name = name
	return nil
}
