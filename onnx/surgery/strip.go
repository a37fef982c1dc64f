package surgery

import (
	"fmt"
	"slices"

	"github.com/graftml/graft/onnx"
)

// StripInference removes the nodes that do nothing at inference: Dropout
// (whose mask output nothing reads) and Identity. Where it can, it keeps
// the removed node's output name, renaming the tensor it copied (when
// only that node reads it and it is neither a graph input, output nor
// initializer), so that tensors downstream keep their names; otherwise
// the readers of its output read its input instead. A node whose output
// is a graph output and whose input cannot be renamed stays. It returns
// the number of nodes removed.
func StripInference(mp *onnx.ModelProto) int {
	g := mp.Graph
	if hasSubgraphs(g) {
		// names inside subgraphs may refer to these tensors: leave them
		return 0
	}
	removed := 0
	kept := map[*onnx.NodeProto]bool{} // nodes looked at and left in place
	for {
		idx := -1
		for i, n := range g.Node {
			if !kept[n] && strippable(g, n) {
				idx = i
				break
			}
		}
		if idx < 0 {
			return removed
		}
		n := g.Node[idx]
		in, out := n.Input[0], n.Output[0]
		fixed := map[string]bool{}
		for _, v := range g.Input {
			fixed[v.Name] = true
		}
		for _, t := range g.Initializer {
			fixed[t.Name] = true
		}
		for _, o := range g.Output {
			fixed[o.Name] = true
		}
		readers := 0
		for _, m := range g.Node {
			for _, x := range m.Input {
				if x == in {
					readers++
				}
			}
		}
		switch {
		case !fixed[in] && readers == 1:
			// the producer of in writes out directly
			g.Node = slices.Delete(g.Node, idx, idx+1)
			for _, m := range g.Node {
				for i, o := range m.Output {
					if o == in {
						m.Output[i] = out
					}
				}
			}
			g.ValueInfo = slices.DeleteFunc(g.ValueInfo, func(vi *onnx.ValueInfoProto) bool { return vi.Name == in })
		case !isGraphOutput(g, out):
			g.Node = slices.Delete(g.Node, idx, idx+1)
			for _, m := range g.Node {
				for i, x := range m.Input {
					if x == out {
						m.Input[i] = in
					}
				}
			}
			g.ValueInfo = slices.DeleteFunc(g.ValueInfo, func(vi *onnx.ValueInfoProto) bool { return vi.Name == out })
		default:
			// it copies a graph input or initializer to a graph output
			kept[n] = true
			continue
		}
		removed++
	}
}

func strippable(g *onnx.GraphProto, n *onnx.NodeProto) bool {
	if n.Domain != "" && n.Domain != "ai.onnx" || len(n.Input) == 0 || n.Input[0] == "" || len(n.Output) == 0 {
		return false
	}
	switch n.OpType {
	case "Identity":
		return len(n.Output) == 1
	case "Dropout":
		if len(n.Output) > 1 && n.Output[1] != "" {
			for _, m := range g.Node {
				if slices.Contains(m.Input, n.Output[1]) {
					return false
				}
			}
			if isGraphOutput(g, n.Output[1]) {
				return false
			}
		}
		return true
	}
	return false
}

func isGraphOutput(g *onnx.GraphProto, name string) bool {
	return slices.ContainsFunc(g.Output, func(o *onnx.ValueInfoProto) bool { return o.Name == name })
}

func hasSubgraphs(g *onnx.GraphProto) bool {
	for _, n := range g.Node {
		for _, a := range n.Attribute {
			if a.G != nil || len(a.Graphs) > 0 {
				return true
			}
		}
	}
	return false
}

// RenameInput renames graph input old to new everywhere it is read.
func RenameInput(mp *onnx.ModelProto, old, new string) error {
	g := mp.Graph
	i := slices.IndexFunc(g.Input, func(v *onnx.ValueInfoProto) bool { return v.Name == old })
	if i < 0 || slices.ContainsFunc(g.Initializer, func(t *onnx.TensorProto) bool { return t.Name == old }) {
		return fmt.Errorf("no graph input named %q (inputs: %s)", old, valueNames(realInputs(g)))
	}
	return renameTensor(g, old, new)
}

// RenameOutput renames graph output old to new, and the node output that
// computes it.
func RenameOutput(mp *onnx.ModelProto, old, new string) error {
	g := mp.Graph
	if !isGraphOutput(g, old) {
		return fmt.Errorf("no graph output named %q (outputs: %s)", old, valueNames(g.Output))
	}
	if slices.ContainsFunc(g.Input, func(v *onnx.ValueInfoProto) bool { return v.Name == old }) {
		return fmt.Errorf("graph output %q is also a graph input; rename the input", old)
	}
	return renameTensor(g, old, new)
}

func renameTensor(g *onnx.GraphProto, old, new string) error {
	if new == "" {
		return fmt.Errorf("renaming %q: the new name is empty", old)
	}
	if old == new {
		return nil
	}
	if hasSubgraphs(g) {
		return fmt.Errorf("renaming %q: the graph has subgraphs, which may refer to it", old)
	}
	names := usedNames(g)
	delete(names, old)
	for _, n := range g.Node {
		delete(names, n.Name)
	}
	if names[new] {
		return fmt.Errorf("renaming %q: a tensor named %q already exists", old, new)
	}
	sub := func(s []string) {
		for i, x := range s {
			if x == old {
				s[i] = new
			}
		}
	}
	for _, n := range g.Node {
		sub(n.Input)
		sub(n.Output)
	}
	for _, vs := range [][]*onnx.ValueInfoProto{g.Input, g.Output, g.ValueInfo} {
		for _, v := range vs {
			if v.Name == old {
				v.Name = new
			}
		}
	}
	return nil
}

func realInputs(g *onnx.GraphProto) []*onnx.ValueInfoProto {
	inits := map[string]bool{}
	for _, t := range g.Initializer {
		inits[t.Name] = true
	}
	var out []*onnx.ValueInfoProto
	for _, v := range g.Input {
		if !inits[v.Name] {
			out = append(out, v)
		}
	}
	return out
}

func valueNames(vs []*onnx.ValueInfoProto) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", v.Name)
	}
	return s
}
