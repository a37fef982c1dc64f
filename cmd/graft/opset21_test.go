package main

import (
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// opset21Classifier writes a small image classifier at opset 21 (IR 10)
// that uses ops as revised after opset 17: GroupNormalization with
// per-channel scale (21), Gelu (20), Pad with an axes input (18),
// AveragePool with dilations (19), ReduceMean with axes as input (18).
func opset21Classifier(t *testing.T, path string) {
	t.Helper()
	r := rand.New(rand.NewSource(21))
	w := func(name string, shape ...int) *onnx.TensorProto {
		x := onnx.NewFloat(shape, nil)
		for i := range x.F {
			x.F[i] = float32(r.NormFloat64()) * 0.5
		}
		x.Name = name
		return x.ToProto()
	}
	ints := func(name string, v ...int64) *onnx.TensorProto {
		x := onnx.NewInt([]int{len(v)}, v)
		x.Name = name
		return x.ToProto()
	}
	node := func(op string, ins []string, out string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
		return &onnx.NodeProto{OpType: op, Name: op + "/" + out, Input: ins, Output: []string{out}, Attribute: attrs}
	}
	g := &onnx.GraphProto{
		Name:  "opset21",
		Input: []*onnx.ValueInfoProto{onnx.ValueInfo("image", []int{1, 3, 8, 8}, 1, "N")},
		Initializer: []*onnx.TensorProto{
			w("conv.weight", 6, 3, 3, 3), w("conv.bias", 6), w("gn.scale", 6), w("gn.bias", 6),
			ints("pads", 1, 2, 1, 0), ints("pad_axes", 2, 3), ints("mean_axes", 2, 3),
			w("fc.weight", 5, 6), w("fc.bias", 5),
		},
		Node: []*onnx.NodeProto{
			node("Conv", []string{"image", "conv.weight", "conv.bias"}, "c", onnx.IntsAttr("kernel_shape", 3, 3), onnx.IntsAttr("pads", 1, 1, 1, 1)),
			node("GroupNormalization", []string{"c", "gn.scale", "gn.bias"}, "n", onnx.IntAttr("num_groups", 2)),
			node("Gelu", []string{"n"}, "a", &onnx.AttributeProto{Name: "approximate", Type: onnx.AttrString, S: []byte("tanh")}),
			node("Pad", []string{"a", "pads", "", "pad_axes"}, "p", &onnx.AttributeProto{Name: "mode", Type: onnx.AttrString, S: []byte("edge")}),
			node("AveragePool", []string{"p"}, "q", onnx.IntsAttr("kernel_shape", 2, 2), onnx.IntsAttr("dilations", 2, 2)),
			node("ReduceMean", []string{"q", "mean_axes"}, "f", onnx.IntAttr("keepdims", 0)),
			node("Gemm", []string{"f", "fc.weight", "fc.bias"}, "logits", onnx.IntAttr("transB", 1)),
		},
		Output: []*onnx.ValueInfoProto{onnx.ValueInfo("logits", []int{1, 5}, 1, "N")},
	}
	mp := &onnx.ModelProto{IrVersion: 10, ProducerName: "graft test", Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 21}}}
	if err := onnx.WriteFile(path, mp, true); err != nil {
		t.Fatal(err)
	}
}

// TestOpset21Classifier runs an opset-21 model through graft run and
// graft convert --cut auto --head 3, and compares both with ONNX Runtime;
// the converted model keeps opset 21.
func TestOpset21Classifier(t *testing.T) {
	ort := onnxtest.ORT(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "m21.onnx")
	opset21Classifier(t, model)
	x := onnx.NewFloat([]int{1, 3, 8, 8}, nil)
	r := rand.New(rand.NewSource(1))
	for i := range x.F {
		x.F[i] = float32(r.NormFloat64())
	}
	in := filepath.Join(dir, "x.pb")
	x.Name = "image"
	if err := onnx.WriteTensorFile(in, x); err != nil {
		t.Fatal(err)
	}
	feeds := map[string]*onnx.Tensor{"image": x}

	outDir := filepath.Join(dir, "out")
	mustGraft(t, "run", model, "--input", in, "--out", outDir)
	files, _ := filepath.Glob(filepath.Join(outDir, "*.pb"))
	if len(files) != 1 {
		t.Fatalf("graft run --out wrote %v", files)
	}
	got, err := onnx.ReadTensorFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	want, err := ort.Run(model, feeds)
	if err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	onnxtest.AssertClose(t, "graft run vs ONNX Runtime", got, want["logits"], 1e-4)

	head := filepath.Join(dir, "head3.onnx")
	mustGraft(t, "convert", model, "--out", head, "--cut", "auto", "--head", "3")
	hm, err := onnx.ReadFile(head, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if hm.Opset() != 21 || hm.Proto.IrVersion != 10 {
		t.Errorf("converted model imports opset %d, IR version %d; want the model's 21 and 10", hm.Opset(), hm.Proto.IrVersion)
	}
	ref, err := ort.Run(head, feeds)
	if err != nil {
		t.Fatalf("ONNX Runtime on the converted model: %v", err)
	}
	gm, err := graph.Build(hm, graph.Options{Freeze: true})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := gm.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref) != 1 {
		t.Fatalf("converted model has outputs %v; want one", len(ref))
	}
	for name, w := range ref {
		if len(w.Shape) != 2 || w.Shape[1] != 3 {
			t.Errorf("converted output %q has shape %v; want [1 3]", name, w.Shape)
		}
		onnxtest.AssertClose(t, "converted "+name+" graft vs ONNX Runtime", outs[name], w, 1e-4)
	}
}
