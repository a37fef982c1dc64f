package onnx

import (
	"fmt"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
)

// Validate checks the structure of a decoded model before anything trusts
// it: a graph exists, every node input names a tensor defined before it
// (ONNX requires nodes in topological order), every graph output is
// produced, tensor data agrees with its declared dims, and the declared
// tensor data and the graph's structure (nodes, subgraph depth, attribute
// sizes, string lengths) stay within lim. file labels the errors.
func Validate(mp *ModelProto, file string, lim Limits) error {
	g := mp.Graph
	if g == nil {
		return formatErr(file, "", "the ModelProto has no graph")
	}
	if err := checkStructure(g, file, lim); err != nil {
		return err
	}
	max := lim.maxBytes()
	var total int64
	count := func(elem string, tp *TensorProto) error {
		if tp == nil {
			return formatErr(file, elem, "tensor is missing")
		}
		n, err := declaredElems(tp.Dims)
		if err != nil {
			return formatErr(file, elem, "%v", err)
		}
		dt := pb.TensorProto_DataType(tp.DataType)
		size := int64(elemSize(dt))
		if size == 0 {
			size = 1 // strings and unknown types: count elements, checked on use
		}
		if n > max/size || total+n*size > max {
			return &FormatError{File: file, Elem: elem, Err: ErrTooLarge, Msg: fmt.Sprintf("declares %d elements of %s (%d bytes in all so far), above the %d-byte limit", n, dt, total+n*size, max)}
		}
		total += n * size
		if elemSize(dt) == 0 {
			return nil
		}
		if tp.RawData != nil {
			if int64(len(tp.RawData)) != n*size {
				return formatErr(file, elem, "raw_data holds %d bytes, dims %v of %s need %d", len(tp.RawData), tp.Dims, dt, n*size)
			}
		} else if got := int64(typedLen(tp, dt)); got != n {
			return formatErr(file, elem, "holds %d values, dims %v need %d", got, tp.Dims, n)
		}
		return nil
	}

	defined := make(map[string]bool)
	for _, in := range g.Input {
		defined[in.Name] = true
	}
	for _, t := range g.Initializer {
		if t.Name == "" {
			return formatErr(file, "", "an initializer has no name")
		}
		if err := count(fmt.Sprintf("initializer %q", t.Name), t); err != nil {
			return err
		}
		defined[t.Name] = true
	}
	for i, n := range g.Node {
		elem := NodeLabel(n, i)
		if n.OpType == "" {
			return formatErr(file, elem, "node has no op_type")
		}
		for _, in := range n.Input {
			if in != "" && !defined[in] {
				return formatErr(file, elem, "input %q names no graph input, initializer or output of an earlier node", in)
			}
		}
		for _, a := range n.Attribute {
			if a.T != nil {
				if err := count(fmt.Sprintf("%s attribute %q", elem, a.Name), a.T); err != nil {
					return err
				}
			}
		}
		for _, out := range n.Output {
			if out == "" {
				continue
			}
			if defined[out] {
				return formatErr(file, elem, "output %q is already defined elsewhere in the graph", out)
			}
			defined[out] = true
		}
	}
	if len(g.Output) == 0 {
		return formatErr(file, "", "the graph has no outputs")
	}
	for _, out := range g.Output {
		if !defined[out.Name] {
			return formatErr(file, fmt.Sprintf("graph output %q", out.Name), "no node, input or initializer produces it")
		}
	}
	return nil
}

// NodeLabel names a node for messages: `node "name" (Op)`, or by index
// when it has no name.
func NodeLabel(n *NodeProto, index int) string {
	if n.Name != "" {
		return fmt.Sprintf("node %q (%s)", n.Name, n.OpType)
	}
	return fmt.Sprintf("node #%d (%s)", index, n.OpType)
}
