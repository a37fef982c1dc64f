package graph

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// conformanceExclusions lists backend node cases that use only ops graft
// supports but exercise something graft deliberately leaves out. Every
// entry says why. A prefix ending in "*" matches all cases it starts.
var conformanceExclusions = map[string]string{
	"test_pow_types_*": "Pow with one integer and one float operand: graft computes in float32 and folds integers only",

	// Conv and pooling (conv.go, pool.go)
	"test_maxpool_3d_default":     "3-D pooling: graft pools over 1-D and 2-D inputs only",
	"test_averagepool_3d_default": "3-D pooling: graft pools over 1-D and 2-D inputs only",
	"test_convtranspose_3d":       "3-D ConvTranspose: graft convolves over 1-D and 2-D inputs only (the node is refused by name)",
	"test_maxpool_with_argmax_*":  "MaxPool's Indices output: graft computes int64 tensors only from constants, so it leaves Indices unproduced",

	"test_training_dropout*": "Dropout with training_mode true draws random masks: graft draws them only in training builds (BuildTraining), so no reference output can match",
}

func excluded(name string) (string, bool) {
	if why, ok := conformanceExclusions[name]; ok {
		return why, true
	}
	for k, why := range conformanceExclusions {
		if strings.HasSuffix(k, "*") && strings.HasPrefix(name, strings.TrimSuffix(k, "*")) {
			return why, true
		}
	}
	return "", false
}

const (
	protoFloat = 1
	protoInt64 = 7
	protoBool  = 9
)

// conformanceCount is the exact number of backend node cases
// TestConformance runs. It changes only in a commit that says why (an op
// added, an exclusion added or lifted, new test data): a case that stops
// being selected silently must fail the test, not shrink the suite.
const conformanceCount = 531

// conformanceCase is one backend node case that TestConformance runs.
type conformanceCase struct {
	name string
	m    *onnx.Model
	c    *onnxtest.Case
}

// conformanceCases selects the backend node cases TestConformance runs:
// opset 7 or above, ops graft supports, not excluded, float32 or int64
// data. It counts the others by the reason they are left out.
func conformanceCases(t *testing.T) ([]conformanceCase, map[string]int) {
	t.Helper()
	root := filepath.Join(onnxtest.BackendTestData(t), "node")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var cases []conformanceCase
	skipped := map[string]int{}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(root, name)
		m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"), onnx.Limits{})
		if err != nil {
			t.Errorf("%s: unreadable model: %v", name, err)
			continue
		}
		if m.Opset() < MinOpset {
			skipped["opset below 7"]++
			continue
		}
		if m.Opset() > MaxOpset {
			skipped["opset above 17"]++
			continue
		}
		var uerr *UnsupportedOpsError
		if err := CheckOps(m); errors.As(err, &uerr) {
			skipped["unsupported op"]++
			continue
		}
		if why, ok := excluded(name); ok {
			skipped["excluded: "+why]++
			continue
		}
		if !floatOrInt64(m) {
			skipped["data type other than float32/int64/bool"]++
			continue
		}
		c, err := onnxtest.LoadCase(dir)
		if err != nil {
			t.Errorf("%s: unreadable test data: %v", name, err)
			continue
		}
		cases = append(cases, conformanceCase{name: name, m: m, c: c})
	}
	return cases, skipped
}

// TestConformance runs every ONNX backend node case at opset 7 or above
// whose ops graft supports, at rtol 1e-4 / atol 1e-5.
func TestConformance(t *testing.T) {
	cases, skipped := conformanceCases(t)
	var ran, passed int
	var failures []string
	for _, cc := range cases {
		ran++
		if err := runCase(cc.m, cc.c); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", cc.name, err))
			continue
		}
		passed++
	}
	var keys []string
	for k := range skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("not run (%s): %d", k, skipped[k])
	}
	t.Logf("conformance: %d cases ran, %d passed, %d failed", ran, passed, len(failures))
	for _, f := range failures {
		t.Error(f)
	}
	if ran != conformanceCount {
		t.Errorf("%d conformance cases ran; conformanceCount says %d (change it in a commit that says why)", ran, conformanceCount)
	}
}

// floatOrInt64 reports whether every graph input and output is float32,
// int64 or bool (which graft folds as int64 and carries at run time as
// float32 0/1, see graph/doc.go).
func floatOrInt64(m *onnx.Model) bool {
	for _, vi := range append(append([]*onnx.ValueInfoProto{}, m.Proto.Graph.Input...), m.Proto.Graph.Output...) {
		et := vi.GetType().GetTensorType().GetElemType()
		if et != protoFloat && et != protoInt64 && et != protoBool {
			return false
		}
	}
	return true
}

func runCase(m *onnx.Model, c *onnxtest.Case) error {
	for si := range c.Sets {
		feeds, err := c.Feeds(si)
		if err != nil {
			return err
		}
		opt := Options{Shapes: map[string][]int{}, Values: map[string]*onnx.Tensor{}}
		for name, x := range feeds {
			// Integer inputs, scalar floats (Clip's bounds, Pad's value)
			// and float inputs such as Resize's scales are parameters
			// graft fixes when it builds a graph.
			if x.DType == onnx.Int64 || len(x.Shape) == 0 || buildTimeInput(m, name) {
				opt.Values[name] = x
				delete(feeds, name)
			} else {
				opt.Shapes[name] = x.Shape
			}
		}
		gm, err := Build(m, opt)
		if err != nil {
			return err
		}
		got, err := gm.Run(feeds)
		if err != nil {
			return err
		}
		wants, err := c.Wants(si)
		if err != nil {
			return err
		}
		for _, o := range m.Proto.Graph.Output {
			name := o.Name
			want, ok := wants[name]
			if !ok {
				return fmt.Errorf("set %d: no reference for output %q", si, name)
			}
			if err := allClose(got[name], want, 1e-4, 1e-5); err != nil {
				return fmt.Errorf("set %d output %q: %v", si, name, err)
			}
		}
	}
	return nil
}

// buildTimeFloats lists, per op, the float inputs graft reads when it
// builds a graph.
var buildTimeFloats = map[string][]int{"Resize": {1, 2}, "Upsample": {1}, "QuantizeLinear": {1}, "DequantizeLinear": {1}}

// buildTimeInput reports whether a graph input feeds one of those.
func buildTimeInput(m *onnx.Model, name string) bool {
	for _, n := range m.Proto.Graph.Node {
		for _, i := range buildTimeFloats[n.OpType] {
			if i < len(n.Input) && n.Input[i] == name {
				return true
			}
		}
	}
	return false
}

// allClose is numpy.allclose: |got-want| <= atol + rtol*|want|, NaNs equal.
func allClose(got, want *onnx.Tensor, rtol, atol float64) error {
	if got == nil {
		return fmt.Errorf("missing")
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if got.DType != want.DType {
		return fmt.Errorf("type %s, want %s", got.DType, want.DType)
	}
	if want.DType == onnx.Int64 {
		for i := range want.I {
			if got.I[i] != want.I[i] {
				return fmt.Errorf("element %d: %d, want %d", i, got.I[i], want.I[i])
			}
		}
		return nil
	}
	for i := range want.F {
		g, w := float64(got.F[i]), float64(want.F[i])
		if math.IsNaN(w) && math.IsNaN(g) || g == w {
			continue
		}
		if math.IsNaN(g) || math.Abs(g-w) > atol+rtol*math.Abs(w) {
			return fmt.Errorf("element %d: %g, want %g", i, g, w)
		}
	}
	return nil
}
