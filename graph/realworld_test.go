package graph

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/onnx/surgery"
	"google.golang.org/protobuf/proto"
)

// Models in the shapes non-PyTorch exporters (paddle2onnx, tf2onnx,
// Caffe2) write: weights as Constant nodes, a MatMul+Add classifier, and an
// image input whose height and width are symbolic.

// constClassifier is onnxtest.ConstClassifier.
func constClassifier(t *testing.T) (*onnx.ModelProto, string) { return onnxtest.ConstClassifier(t) }

func TestConstantWeights(t *testing.T) {
	mp, path := constClassifier(t)
	cw := surgery.ConstantWeights(mp)
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range cw {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"conv_b", "conv_w", "fc_b", "fc_w"}; !slices.Equal(got, want) {
		t.Fatalf("constant weights %v, want %v (Clip bounds and the shape are not weights)", got, want)
	}
	const params = 4*3*3*3 + 4 + 4*5 + 5
	if n := surgery.CountParams(mp); n != params {
		t.Errorf("CountParams %d, want %d", n, params)
	}
	layers := surgery.Layers(mp, "")
	if len(layers) != 2 || !slices.Equal(layers[0].Params, []string{"conv_w", "conv_b"}) || !slices.Equal(layers[1].Params, []string{"fc_w", "fc_b"}) || layers[1].NumParams != 25 {
		t.Fatalf("layers %+v: want conv (conv_w, conv_b) and fc (fc_w, fc_b)", layers)
	}
	src, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r := Inspect(src, Options{}); r.Params != params {
		t.Errorf("inspect counts %d parameters, want %d", r.Params, params)
	}
	cut, err := surgery.FindCut(src)
	if err != nil {
		t.Fatal(err)
	}
	if cut.Tensor != "feat" || cut.Classifier != "fc" || cut.Kind != "matmul" {
		t.Fatalf("cut %+v: want the MatMul fc at feat", cut)
	}

	// Build and Run at a size the model leaves symbolic, against ONNX Runtime.
	x := randInput(3, []int{2, 3, 9, 7})
	gm, err := Build(src, Options{Shapes: map[string][]int{"x": x.Shape}})
	if err != nil {
		t.Fatal(err)
	}
	if ps := slices.Sorted(keysOf(gm.Params)); !slices.Equal(ps, []string{"conv_b", "conv_w", "fc_b", "fc_w"}) {
		t.Fatalf("graph parameters %v", ps)
	}
	got1, err := gm.Run(map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	ort := onnxtest.ORT(t)
	want, err := ort.Run(path, map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	onnxtest.AssertClose(t, "constant-weight classifier vs ONNX Runtime", got1["y"], want["y"], 1e-4)

	// Export: an unchanged model stays byte-identical; a changed weight is
	// written back into its Constant node.
	before, _ := onnx.Encode(mp)
	clone := surgery.CloneProto(mp)
	changed, err := surgery.UpdateWeights(clone, gm.Weights())
	if err != nil || len(changed) != 0 {
		t.Fatalf("unchanged weights rewrote %v (%v)", changed, err)
	}
	if after, _ := onnx.Encode(clone); !bytes.Equal(before, after) {
		t.Fatal("UpdateWeights with unchanged weights changed the model's bytes")
	}
	w := gm.Weights()
	w["fc_w"].F[0] += 1
	w["conv_b"].F[1] -= 0.5
	changed, err = surgery.UpdateWeights(clone, w)
	if err != nil || !slices.Equal(slices.Sorted(slices.Values(changed)), []string{"conv_b", "fc_w"}) {
		t.Fatalf("changed %v (%v), want conv_b and fc_w", changed, err)
	}
	if len(clone.Graph.Initializer) != 0 || len(clone.Graph.Node) != len(mp.Graph.Node) {
		t.Fatal("UpdateWeights turned Constant weights into initializers")
	}
	for i, n := range clone.Graph.Node {
		if n.OpType != mp.Graph.Node[i].OpType {
			t.Fatalf("node %d became %s", i, n.OpType)
		}
		if n.Name != "fc_w" && n.Name != "conv_b_raw" && !proto.Equal(n, mp.Graph.Node[i]) {
			t.Errorf("node %q changed", n.Name)
		}
	}
	moved := filepath.Join(t.TempDir(), "moved.onnx")
	if err := onnx.WriteFile(moved, clone, false); err != nil {
		t.Fatal(err)
	}
	wantMoved, err := ort.Run(moved, map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	got2, err := gm.Run(map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	onnxtest.AssertClose(t, "changed constant weights vs ONNX Runtime", got2["y"], wantMoved["y"], 1e-4)
}

func keysOf[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestSymbolicImageSize: a symbolic H and W stop Build with a message
// that says how to bind them; the preprocessing metadata and
// Options.Shapes bind them.
func TestSymbolicImageSize(t *testing.T) {
	mp, _ := constClassifier(t)
	src := &onnx.Model{Proto: mp, Path: "m.onnx"}
	_, err := Build(src, Options{})
	if err == nil || !strings.Contains(err.Error(), `dimension 2 is symbolic ("H")`) || !strings.Contains(err.Error(), "--input-shape x=") {
		t.Fatalf("error %v", err)
	}
	surgery.SetMetadata(mp, onnx.KeyPreprocessing, `{"layout":"NCHW","channels":3,"height":11,"width":6}`)
	gm, err := Build(src, Options{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s := gm.Inputs[0].Shape; !slices.Equal(s, []int{2, 3, 11, 6}) {
		t.Fatalf("input shape %v, want [2 3 11 6] from the metadata", s)
	}
	gm, err = Build(src, Options{Shapes: map[string][]int{"x": {1, 3, 5, 8}}})
	if err != nil || !slices.Equal(gm.Inputs[0].Shape, []int{1, 3, 5, 8}) {
		t.Fatalf("Options.Shapes: %v %v", err, gm)
	}
}

// TestConvertConstantClassifier: `graft convert` with the auto cut and a
// new head on a constant-weight model with symbolic N, H, W writes a model
// the checker accepts, whose inputs stay symbolic, and that ONNX Runtime
// and graft agree on at two sizes.
func TestConvertConstantClassifier(t *testing.T) {
	_, path := constClassifier(t)
	ort := onnxtest.ORT(t)
	check := onnxtest.Checker(t)
	out := filepath.Join(t.TempDir(), "head.onnx")
	res, err := Convert(context.Background(), ConvertConfig{Model: path, Out: out, Cut: "auto", Head: &surgery.HeadSpec{Classes: 3, Softmax: true, Seed: 1},
		Shapes: map[string][]int{"x": {1, 3, 8, 8}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cut != "feat" {
		t.Fatalf("cut %q, want feat", res.Cut)
	}
	if err := check(out); err != nil {
		t.Fatalf("ONNX checker: %v", err)
	}
	m, err := onnx.ReadFile(out, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s := describe(m.Inputs()[0]).Shape; !slices.Equal(s, []string{"N", "3", "H", "W"}) {
		t.Fatalf("input shape %v: symbolic dims must stay symbolic", s)
	}
	for i, shape := range [][]int{{1, 3, 8, 8}, {3, 3, 13, 6}} {
		x := randInput(int64(i), shape)
		feeds := map[string]*onnx.Tensor{"x": x}
		want, err := ort.Run(out, feeds)
		if err != nil {
			t.Fatal(err)
		}
		gm, err := Build(m, Options{Shapes: map[string][]int{"x": shape}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := gm.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		name := res.Outputs[0].Name
		onnxtest.AssertClose(t, "converted head vs ONNX Runtime", got[name], want[name], 1e-4)
		if s := want[name].Shape; s[0] != shape[0] || s[1] != 3 {
			t.Fatalf("output shape %v", s)
		}
	}
}

// TestParamCountsUnchanged: on models whose weights are all initializers
// (PyTorch exports, the shipped backbone) no Constant counts as a weight,
// so parameter counts stay what the initializers hold.
func TestParamCountsUnchanged(t *testing.T) {
	paths := []string{filepath.Join(onnxtest.RepoRoot(), "models", "backbone.onnx")}
	for _, name := range []string{"conv_bn_pool_fc", "mobile_block_op11", "mobile_block_op13", "se_act_op14", "softmax_head_op13", "dynbatch_view"} {
		paths = append(paths, onnxtest.Fixture(t, name).ModelPath)
	}
	for _, p := range paths {
		src, err := onnx.ReadFile(p, onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var floats, all int64
		for _, tp := range src.Proto.Graph.Initializer {
			n := int64(1)
			for _, d := range tp.Dims {
				n *= d
			}
			all += n
			if tp.DataType == 1 {
				floats += n
			}
		}
		if cw := surgery.ConstantWeights(src.Proto); len(cw) != 0 {
			t.Errorf("%s: Constants counted as weights: %v", p, cw)
		}
		if n := surgery.CountParams(src.Proto); n != floats {
			t.Errorf("%s: CountParams %d, the float initializers hold %d", p, n, floats)
		}
		if r := Inspect(src, Options{}); r.Params != all {
			t.Errorf("%s: inspect counts %d parameters, the initializers hold %d", p, r.Params, all)
		}
	}
}

// TestCarriedCast: a run-time float cast to int64 is carried as float32
// and comes out of Run as int64, truncated toward zero.
func TestCarriedCast(t *testing.T) {
	mp := &onnx.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}},
		Graph: &onnx.GraphProto{
			Node:   []*onnx.NodeProto{{Name: "c", OpType: "Cast", Input: []string{"x"}, Output: []string{"y"}, Attribute: []*onnx.AttributeProto{onnx.IntAttr("to", 7)}}},
			Input:  []*onnx.ValueInfoProto{onnx.ValueInfo("x", []int{4}, 1, "")},
			Output: []*onnx.ValueInfoProto{onnx.ValueInfo("y", []int{4}, 7, "")},
		},
	}
	gm, err := Build(&onnx.Model{Proto: mp}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := gm.Run(map[string]*onnx.Tensor{"x": onnx.NewFloat([]int{4}, []float32{1.7, -1.7, 0, 3})})
	if err != nil {
		t.Fatal(err)
	}
	if y := out["y"]; y.DType != onnx.Int64 || !slices.Equal(y.I, []int64{1, -1, 0, 3}) {
		t.Fatalf("got %v %v, want int64 [1 -1 0 3]", y.DType, y.I)
	}
}
