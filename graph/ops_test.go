package graph

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
)

// TestEveryOpTested requires, for every entry of the op table, a forward
// test against a reference and, for every entry with a gradient, a
// golden gradient case. Forward tests are the ONNX backend node cases
// TestConformance runs (against the ONNX reference outputs) and the
// gradient golden cases (whose outputs checkGoldenCase compares with
// PyTorch's): an op counts as tested when a node of it is in one of
// those models.
func TestEveryOpTested(t *testing.T) {
	golden := map[string][]string{} // op -> golden cases
	for _, dir := range goldenCases(t) {
		m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"), onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range goldenOpTypes(m) {
			golden[op] = append(golden[op], filepath.Base(dir))
		}
	}
	conformance := map[string]int{} // op -> conformance cases
	cases, _ := conformanceCases(t)
	for _, c := range cases {
		for _, n := range c.m.Proto.Graph.Node {
			conformance[n.OpType]++
		}
	}

	var noForward, noGrad []string
	for _, op := range slices.Sorted(maps.Keys(opTable)) {
		def := opTable[op]
		if _, ok := directlyTestedOps[op]; ok {
			continue
		}
		if len(golden[op]) == 0 && conformance[op] == 0 {
			noForward = append(noForward, op)
		}
		if !def.grad || len(golden[op]) > 0 {
			continue
		}
		if reason, ok := zeroGradOps[op]; ok {
			t.Logf("%s has no golden gradient case: %s", op, reason)
			continue
		}
		noGrad = append(noGrad, op)
	}
	if len(noForward) > 0 {
		t.Errorf("ops in the op table without a forward test (no backend node case that TestConformance runs, no golden case in %s): %s",
			gradGoldenDir, strings.Join(noForward, ", "))
	}
	if len(noGrad) > 0 {
		t.Errorf("ops listed with a gradient but without a golden gradient case in %s: %s (add cases to graph/testdata/gen_grads.py)",
			gradGoldenDir, strings.Join(noGrad, ", "))
	}
	for op := range zeroGradOps {
		if !opTable[op].grad {
			t.Errorf("zeroGradOps lists %s, which graft does not list with a gradient", op)
		}
	}
}

// TestOpTableEntries checks what every entry must hold.
func TestOpTableEntries(t *testing.T) {
	if len(opTable) < 50 {
		t.Fatalf("the op table has %d entries; graft reads more ops than that", len(opTable))
	}
	for op, d := range opTable {
		if d.build == nil {
			t.Errorf("%s: no build function", op)
		}
		if d.since < MinOpset || d.until > MaxOpset || d.since > d.until {
			t.Errorf("%s: opsets %d to %d are not within graft's %d to %d", op, d.since, d.until, MinOpset, MaxOpset)
		}
		if d.family == "" {
			t.Errorf("%s: no family", op)
		}
	}
}

// floatInit is a float32 initializer of n values.
func floatInit(name string, dims ...int64) *onnx.TensorProto {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: 1, FloatData: make([]float32, n)}
}

// TestSurgeryKnowsWeightedOps checks that onnx/surgery, which cannot
// import the op table, lists as layers exactly the ops whose entry names
// weights, and counts those weights among the layer's parameters: a
// one-node model whose inputs are all float initializers must be a layer
// for surgery.Layers if and only if the entry has weights.
func TestSurgeryKnowsWeightedOps(t *testing.T) {
	for _, op := range slices.Sorted(maps.Keys(opTable)) {
		def := opTable[op]
		g := &onnx.GraphProto{Output: []*onnx.ValueInfoProto{{Name: "y"}}}
		n := &onnx.NodeProto{Name: "n", OpType: op, Output: []string{"y"}}
		for i := range 5 {
			name := fmt.Sprintf("in%d", i)
			n.Input = append(n.Input, name)
			g.Initializer = append(g.Initializer, floatInit(name, 2))
		}
		g.Node = []*onnx.NodeProto{n}
		layers := surgery.Layers(&onnx.ModelProto{Graph: g}, "")
		switch {
		case len(def.weights) == 0 && len(layers) > 0:
			t.Errorf("%s: onnx/surgery (weightedOps in freeze.go) lists it as a layer, but its op table entry names no weights", op)
		case len(def.weights) > 0 && len(layers) == 0:
			t.Errorf("%s: its op table entry names weights %v, but onnx/surgery does not list it as a layer (add it to weightedOps in onnx/surgery/freeze.go)", op, def.weights)
		case len(def.weights) > 0:
			for _, i := range def.weights {
				if !slices.Contains(layers[0].Params, n.Input[i]) {
					t.Errorf("%s: onnx/surgery does not count input %d, a weight in the op table, among the layer's parameters %v", op, i, layers[0].Params)
				}
			}
		}
	}
}

// surgeryPooling are ops FindCut looks through for a reason other than
// passing the class through: they pool the features before a 1x1 Conv
// classifier (SqueezeNet), so they are not pass-through ops.
var surgeryPooling = map[string]bool{"GlobalAveragePool": true, "ReduceMean": true, "AveragePool": true}

// TestSurgeryKnowsPassThroughOps checks that onnx/surgery's FindCut looks
// through exactly the ops whose entry is marked passThrough: in
// Gemm -> op -> output it must find the Gemm if and only if op passes the
// class through (or pools, see surgeryPooling).
func TestSurgeryKnowsPassThroughOps(t *testing.T) {
	for _, op := range slices.Sorted(maps.Keys(opTable)) {
		def := opTable[op]
		g := &onnx.GraphProto{
			Input:       []*onnx.ValueInfoProto{{Name: "x"}},
			Initializer: []*onnx.TensorProto{floatInit("W", 2, 2)},
			Node: []*onnx.NodeProto{
				{Name: "fc", OpType: "Gemm", Input: []string{"x", "W"}, Output: []string{"logits"}},
				{Name: "n", OpType: op, Input: []string{"logits"}, Output: []string{"y"}},
			},
			Output: []*onnx.ValueInfoProto{{Name: "y"}},
		}
		cut, err := surgery.FindCut(&onnx.Model{Proto: &onnx.ModelProto{Graph: g}})
		found := err == nil && cut.Classifier == "fc"
		switch {
		case surgeryPooling[op]:
			if def.passThrough {
				t.Errorf("%s: marked passThrough in the op table, but surgeryPooling says it pools", op)
			}
		case def.passThrough && !found:
			t.Errorf("%s: marked passThrough in the op table, but onnx/surgery's FindCut does not look through it (add it to passThrough in onnx/surgery/cut.go): %v", op, err)
		case !def.passThrough && found:
			t.Errorf("%s: onnx/surgery's FindCut looks through it (passThrough in onnx/surgery/cut.go), but its op table entry is not marked passThrough", op)
		}
	}
}
