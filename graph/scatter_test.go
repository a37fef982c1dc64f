package graph

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
)

// TestScatterRefused: indices out of range, updates of the wrong shape and
// reductions graft does not read are errors naming the node.
func TestScatterRefused(t *testing.T) {
	data := onnx.NewFloat([]int{3, 4}, nil)
	for _, c := range []struct {
		op    string
		attrs map[string]any
		idx   *onnx.Tensor
		upd   []int
		want  string
	}{
		{"ScatterElements", map[string]any{"axis": 1}, onnx.NewInt([]int{1, 2}, []int64{0, 4}), []int{1, 2}, "index 4 is out of range for axis 1 of size 4"},
		{"ScatterElements", nil, onnx.NewInt([]int{1, 2}, []int64{0, -4}), []int{1, 2}, "index -4 is out of range"},
		{"ScatterElements", map[string]any{"reduction": "max"}, onnx.NewInt([]int{1, 2}, []int64{0, 1}), []int{1, 2}, "reduction \"max\" is not one ScatterElements reads at opset 16"},
		{"ScatterElements", nil, onnx.NewInt([]int{1, 2}, []int64{0, 1}), []int{2, 2}, "must have one shape"},
		{"ScatterND", nil, onnx.NewInt([]int{1, 2}, []int64{2, 7}), []int{1}, "index 7 is out of range for axis 1"},
		{"ScatterND", nil, onnx.NewInt([]int{1, 1}, []int64{1}), []int{1, 3}, "updates have shape [1 3]"},
		{"ScatterND", nil, onnx.NewInt([]int{1, 3}, []int64{1, 1, 1}), []int{1}, "between 1 and data's rank 2"},
	} {
		ins := []opIn{{name: "data", t: data}, {name: "indices", t: c.idx, konst: true}, {name: "updates", t: onnx.NewFloat(c.upd, nil)}}
		_, err := opRunGraft(opModel(t, 16, c.op, c.attrs, ins, "y"), ins)
		var ne *NodeError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "n0") {
			t.Errorf("%s %v: got %v, want a NodeError naming n0 and saying %q", c.op, c.idx.I, err, c.want)
		}
	}
}

// TestScatterNDFoldsIntegers: ScatterND on an int64 shape vector (how
// exporters edit a shape) folds exactly.
func TestScatterNDFoldsIntegers(t *testing.T) {
	ins := []opIn{
		{name: "data", t: onnx.NewInt([]int{4}, []int64{1, 3, 224, 224}), konst: true},
		{name: "indices", t: onnx.NewInt([]int{2, 1}, []int64{2, 3}), konst: true},
		{name: "updates", t: onnx.NewInt([]int{2}, []int64{-1, 7}), konst: true},
	}
	got, err := opRunGraft(opModel(t, 13, "ScatterND", nil, ins, "y"), ins)
	if err != nil {
		t.Fatal(err)
	}
	if got["y"] == nil || !slices.Equal(got["y"].I, []int64{1, 3, -1, 7}) {
		t.Errorf("ScatterND of int64 constants: %v", got["y"])
	}
}
