package onnx

import (
	"errors"
	"strings"
	"testing"
)

// TestStructureLimits pairs each limit of Limits with a model just over
// it and the error it must give; the same model passes the defaults.
func TestStructureLimits(t *testing.T) {
	long := strings.Repeat("n", 40)
	cases := []struct {
		name string
		lim  Limits
		edit func(m *ModelProto)
		want string // the error without "invalid ONNX model: "
	}{
		{"nodes", Limits{MaxNodes: 1}, func(*ModelProto) {}, `more than 1 nodes (with its subgraphs), above the limit of 1`},
		{"subgraph nodes", Limits{MaxNodes: 2}, func(m *ModelProto) {
			m.Graph.Node[0].Attribute = []*AttributeProto{{Name: "body", Type: 5, G: &GraphProto{Node: []*NodeProto{{OpType: "Relu"}}}}}
		}, `node "relu" (Relu) attribute "body": the model has more than 2 nodes`},
		{"depth", Limits{MaxDepth: 2}, func(m *ModelProto) {
			inner := &GraphProto{}
			mid := &GraphProto{Node: []*NodeProto{{OpType: "If", Attribute: []*AttributeProto{{Name: "then_branch", G: inner}}}}}
			m.Graph.Node[0].Attribute = []*AttributeProto{{Name: "body", Graphs: []*GraphProto{mid}}}
		}, `node #0 (If) attribute "then_branch": subgraphs nest 3 deep, above the limit of 2`},
		{"ints", Limits{MaxAttrElems: 3}, func(m *ModelProto) {
			m.Graph.Node[0].Attribute = []*AttributeProto{{Name: "perm", Type: AttrInts, Ints: []int64{1, 2, 3, 4}}}
		}, `node "relu" (Relu) attribute "perm": holds 4 values, above the limit of 3`},
		{"inputs", Limits{MaxAttrElems: 3}, func(m *ModelProto) {
			m.Graph.Node[0].Input = []string{"x", "x", "x", "x"}
		}, `node "relu" (Relu): has 4 inputs, above the limit of 3`},
		{"string attribute", Limits{MaxStringLen: 8}, func(m *ModelProto) {
			m.Graph.Node[1].Attribute = []*AttributeProto{{Name: "mode", Type: AttrString, S: []byte(long)}}
		}, `node "add" (Add) attribute "mode": its value is 40 bytes long, above the 8-byte limit`},
		{"node name", Limits{MaxStringLen: 8}, func(m *ModelProto) { m.Graph.Node[1].Name = long }, `node #1: its name is 40 bytes long`},
		{"output name", Limits{MaxStringLen: 8}, func(m *ModelProto) {
			m.Graph.Node[1].Output[0] = long
			m.Graph.Output[0].Name = long
		}, `a value name is 40 bytes long`},
	}
	for _, tc := range cases {
		m := tinyModel()
		tc.edit(m)
		data := encode(t, m)
		_, err := Decode(data, "m.onnx", "", tc.lim)
		var fe *FormatError
		if err == nil || !errors.As(err, &fe) || !errors.Is(err, ErrOverLimit) || !strings.Contains(strings.Replace(err.Error(), "invalid ONNX model: ", "", 1), tc.want) || !strings.HasPrefix(err.Error(), "m.onnx: ") {
			t.Errorf("%s: got %v, want a FormatError wrapping ErrOverLimit with %q", tc.name, err, tc.want)
		}
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: a structure limit must not read as the memory limit", tc.name)
		}
		if err := checkStructure(m.Graph, "m.onnx", Limits{}); err != nil {
			t.Errorf("%s: the default limits refuse it: %v", tc.name, err)
		}
	}
}
