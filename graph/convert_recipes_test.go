package graph

import (
	"context"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/onnx/surgery"
)

// bnModel builds Conv(+bias) -> BN -> Relu -> grouped Conv (no bias) ->
// BN -> GlobalAveragePool -> Flatten -> Gemm(transB 1) -> BN -> Dropout
// -> Gemm(transB 0, scalar bias, beta 0.5) -> BN -> Identity -> output,
// with random weights and statistics: every case FoldBatchNorm handles,
// and the nodes StripInference removes.
func bnModel(t *testing.T, seed int64) *onnx.ModelProto {
	rng := rand.New(rand.NewSource(seed))
	var inits []*onnx.TensorProto
	w := func(name string, shape []int, lo, hi float64) string {
		tt := onnx.NewFloat(shape, nil)
		for i := range tt.F {
			tt.F[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		tt.Name = name
		inits = append(inits, tt.ToProto())
		return name
	}
	bn := func(name, in string, c int) *onnx.NodeProto {
		return &onnx.NodeProto{Name: name, OpType: "BatchNormalization",
			Input:     []string{in, w(name+".scale", []int{c}, 0.5, 1.5), w(name+".beta", []int{c}, -1, 1), w(name+".mean", []int{c}, -1, 1), w(name+".var", []int{c}, 0.2, 2)},
			Output:    []string{name + ".out"},
			Attribute: testAttrs(t, map[string]any{"epsilon": 1e-3})}
	}
	nodes := []*onnx.NodeProto{
		{Name: "conv0", OpType: "Conv", Input: []string{"x", w("conv0.w", []int{4, 3, 3, 3}, -0.5, 0.5), w("conv0.b", []int{4}, -1, 1)}, Output: []string{"c0"},
			Attribute: testAttrs(t, map[string]any{"pads": []int{1, 1, 1, 1}})},
		bn("bn0", "c0", 4),
		{Name: "relu", OpType: "Relu", Input: []string{"bn0.out"}, Output: []string{"r0"}},
		{Name: "conv1", OpType: "Conv", Input: []string{"r0", w("conv1.w", []int{6, 2, 3, 3}, -0.5, 0.5)}, Output: []string{"c1"},
			Attribute: testAttrs(t, map[string]any{"group": 2})},
		bn("bn1", "c1", 6),
		{Name: "gap", OpType: "GlobalAveragePool", Input: []string{"bn1.out"}, Output: []string{"p"}},
		{Name: "flat", OpType: "Flatten", Input: []string{"p"}, Output: []string{"f"}},
		{Name: "fc0", OpType: "Gemm", Input: []string{"f", w("fc0.w", []int{5, 6}, -1, 1), w("fc0.b", []int{5}, -1, 1)}, Output: []string{"g0"},
			Attribute: testAttrs(t, map[string]any{"transB": 1})},
		bn("bn2", "g0", 5),
		{Name: "drop", OpType: "Dropout", Input: []string{"bn2.out"}, Output: []string{"d"}},
		{Name: "fc1", OpType: "Gemm", Input: []string{"d", w("fc1.w", []int{5, 3}, -1, 1), w("fc1.b", []int{1}, -1, 1)}, Output: []string{"g1"},
			Attribute: testAttrs(t, map[string]any{"beta": 0.5})},
		bn("bn3", "g1", 3),
		{Name: "id", OpType: "Identity", Input: []string{"bn3.out"}, Output: []string{"y"}},
	}
	return &onnx.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: 13}},
		Graph: &onnx.GraphProto{
			Name: "bn", Node: nodes, Initializer: inits,
			Input:  []*onnx.ValueInfoProto{testValueInfo("x", onnx.Float32, []int{2, 3, 6, 6})},
			Output: []*onnx.ValueInfoProto{testValueInfo("y", onnx.Float32, []int{2, 3})},
		},
	}
}

func runProto(t *testing.T, mp *onnx.ModelProto, feeds map[string]*onnx.Tensor, out string) *onnx.Tensor {
	t.Helper()
	m, err := Build(&onnx.Model{Proto: mp, Path: "test"}, Options{Freeze: true, Outputs: []string{out}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	return res[out]
}

// TestFoldBatchNormAndStrip: folding every BatchNormalization (Conv with
// and without bias, grouped Conv, Gemm with transB 0 and 1, a scalar
// bias and beta) and stripping Dropout and Identity leave the outputs
// within 1e-5 of the original's, keep the output's name, and drop the
// BatchNormalization weights.
func TestFoldBatchNormAndStrip(t *testing.T) {
	src := bnModel(t, 1)
	x := onnx.NewFloat([]int{2, 3, 6, 6}, nil)
	rng := rand.New(rand.NewSource(2))
	for i := range x.F {
		x.F[i] = float32(rng.NormFloat64())
	}
	feeds := map[string]*onnx.Tensor{"x": x}
	want := runProto(t, src, feeds, "y")

	mp := surgery.CloneProto(src)
	if n := surgery.StripInference(mp); n != 2 {
		t.Errorf("stripped %d nodes, want 2 (Dropout, Identity)", n)
	}
	n, err := surgery.FoldBatchNorm(mp)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("folded %d BatchNormalization nodes, want 4", n)
	}
	for _, nd := range mp.Graph.Node {
		if nd.OpType == "BatchNormalization" || nd.OpType == "Dropout" || nd.OpType == "Identity" {
			t.Errorf("node %s (%s) is still there", nd.Name, nd.OpType)
		}
	}
	for _, in := range mp.Graph.Initializer {
		if strings.HasPrefix(in.Name, "bn") && slices.ContainsFunc([]string{".scale", ".beta", ".mean", ".var"}, func(sfx string) bool { return strings.HasSuffix(in.Name, sfx) }) {
			t.Errorf("initializer %s of a folded BatchNormalization is still there", in.Name)
		}
	}
	if len(mp.Graph.Node) != 7 {
		t.Errorf("%d nodes after folding and stripping, want 7", len(mp.Graph.Node))
	}
	onnxtest.AssertClose(t, "folded y", runProto(t, mp, feeds, "y"), want, 1e-5)
	// folding again finds nothing and changes nothing
	if n, err := surgery.FoldBatchNorm(mp); n != 0 || err != nil {
		t.Errorf("second fold: %d, %v", n, err)
	}
}

// TestFoldBatchNormShared: a Conv weight another Conv also reads is
// copied, not changed in place, so the other Conv's output is unchanged;
// a BatchNormalization whose input has another reader is not folded.
func TestFoldBatchNormShared(t *testing.T) {
	src := bnModel(t, 3)
	g := src.Graph
	// conv2 reads conv0's weight and bias too; its output is added to y's
	// graph outputs.
	g.Node = append(g.Node, &onnx.NodeProto{Name: "conv2", OpType: "Conv", Input: []string{"x", "conv0.w", "conv0.b"}, Output: []string{"c2"},
		Attribute: testAttrs(t, map[string]any{"pads": []int{1, 1, 1, 1}})})
	// g0 (Gemm fc0) also goes to a graph output: bn2 cannot fold.
	g.Output = append(g.Output, testValueInfo("c2", onnx.Float32, []int{2, 4, 6, 6}), testValueInfo("g0", onnx.Float32, []int{2, 5}))
	x := onnx.NewFloat([]int{2, 3, 6, 6}, nil)
	for i := range x.F {
		x.F[i] = float32(i%7) - 3
	}
	feeds := map[string]*onnx.Tensor{"x": x}
	mp := surgery.CloneProto(src)
	n, err := surgery.FoldBatchNorm(mp)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("folded %d, want 3 (bn2 feeds from a graph output)", n)
	}
	for _, out := range []string{"y", "c2", "g0"} {
		onnxtest.AssertClose(t, out, runProto(t, mp, feeds, out), runProto(t, src, feeds, out), 1e-5)
	}
}

// TestConvertFoldStripRename: ConvertModel applies strip, fold and renames, and
// the renamed model computes what the source did.
func TestConvertFoldStripRename(t *testing.T) {
	src := &onnx.Model{Proto: bnModel(t, 4), Path: "bn.onnx"}
	mp, res, err := ConvertModel(context.Background(), src, ConvertConfig{Model: "bn.onnx", Out: "out.onnx", FoldBN: true, Strip: true,
		RenameInputs: map[string]string{"x": "image"}, RenameOutputs: map[string]string{"y": "logits"}, Batch: "dynamic"})
	if err != nil {
		t.Fatal(err)
	}
	if res.FoldedBN != 4 || res.Stripped != 2 || res.NodesBefore != 13 || res.Nodes != 7 {
		t.Errorf("result %+v: want 4 folded, 2 stripped, 13 nodes before and 7 after", res)
	}
	if mp.Graph.Input[0].Name != "image" || mp.Graph.Output[0].Name != "logits" {
		t.Errorf("names %q -> %q, want image -> logits", mp.Graph.Input[0].Name, mp.Graph.Output[0].Name)
	}
	x := onnx.NewFloat([]int{2, 3, 6, 6}, nil)
	for i := range x.F {
		x.F[i] = float32(i%5) - 2
	}
	want := runProto(t, src.Proto, map[string]*onnx.Tensor{"x": x}, "y")
	m, err := Build(&onnx.Model{Proto: mp, Path: "out"}, Options{Freeze: true, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Run(map[string]*onnx.Tensor{"image": x})
	if err != nil {
		t.Fatal(err)
	}
	onnxtest.AssertClose(t, "logits", got["logits"], want, 1e-5)
	for _, bad := range []ConvertConfig{
		{RenameInputs: map[string]string{"nope": "a"}},
		{RenameOutputs: map[string]string{"y": "x"}},
	} {
		if _, _, err := ConvertModel(context.Background(), src, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
