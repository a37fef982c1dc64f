package graph

import (
	"github.com/graftml/graft/onnx"
)

// Typed attribute accessors. Each takes the spec's default, which applies
// when the attribute is absent; an attribute of the wrong type is an error
// naming the attribute and the node.

func (c *nodeCtx) attr(name string) *onnx.AttributeProto {
	for _, a := range c.n.Attribute {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func (c *nodeCtx) has(name string) bool { return c.attr(name) != nil }

func (c *nodeCtx) wrongType(name, want string) error {
	return c.errorf("attribute %q must be %s", name, want)
}

func (c *nodeCtx) attrInt(name string, def int) (int, error) {
	a := c.attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != onnx.AttrInt && !(a.Type == 0 && len(a.Ints) == 0) {
		return 0, c.wrongType(name, "an int")
	}
	return int(a.I), nil
}

func (c *nodeCtx) attrFloat(name string, def float32) (float32, error) {
	a := c.attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != onnx.AttrFloat && a.Type != 0 {
		return 0, c.wrongType(name, "a float")
	}
	return a.F, nil
}

func (c *nodeCtx) attrString(name, def string) (string, error) {
	a := c.attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != onnx.AttrString && a.Type != 0 {
		return "", c.wrongType(name, "a string")
	}
	return string(a.S), nil
}

// attrInts returns the ints attribute, or def (which may be nil) when absent.
func (c *nodeCtx) attrInts(name string, def []int) ([]int, error) {
	a := c.attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != onnx.AttrInts && a.Type != 0 {
		return nil, c.wrongType(name, "a list of ints")
	}
	out := make([]int, len(a.Ints))
	for i, v := range a.Ints {
		out[i] = int(v)
	}
	return out, nil
}

func (c *nodeCtx) attrFloats(name string, def []float32) ([]float32, error) {
	a := c.attr(name)
	if a == nil {
		return def, nil
	}
	if a.Type != onnx.AttrFloats && a.Type != 0 {
		return nil, c.wrongType(name, "a list of floats")
	}
	return append([]float32(nil), a.Floats...), nil
}

func (c *nodeCtx) attrTensor(name string) (*onnx.Tensor, error) {
	a := c.attr(name)
	if a == nil {
		return nil, nil
	}
	if a.T == nil {
		// Also when the type says TENSOR: the message may hold no t.
		return nil, c.wrongType(name, "a tensor")
	}
	t, err := onnx.TensorFromProto(a.T)
	if err != nil {
		return nil, c.errorf("attribute %q: %v", name, err)
	}
	return t, nil
}

// normAxis maps a possibly negative axis into [0, rank).
func (c *nodeCtx) normAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank && !(rank == 0 && axis == 0) {
		return 0, c.errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}
