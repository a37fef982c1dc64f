package main

import (
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// TestTinyUNet: a U-Net exported by PyTorch at opset 13 (strided Conv
// down, ConvTranspose and bilinear Resize up, Concat skips) runs in graft
// as in ONNX Runtime at batch 1 (the fixture's input; the export fixes
// the batch at 1, which graft run holds to), and convert --batch-dim
// dynamic writes a checker-valid model that graft and ONNX Runtime run
// alike at batch 1 and 3.
func TestTinyUNet(t *testing.T) {
	ort := onnxtest.ORT(t)
	c := fixture(t, "tiny_unet")
	dir := t.TempDir()
	one := filepath.Join(c.Dir, "test_data_set_0", "input_0.pb")
	x1, err := onnx.ReadTensorFile(one)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(3))
	x3 := onnx.NewFloat([]int{3, 3, 8, 8}, nil)
	for i := range x3.F {
		x3.F[i] = float32(r.NormFloat64())
	}
	copy(x3.F, x1.F) // the first image is the fixture's
	x3.Name = "input"
	three := filepath.Join(dir, "input3.pb")
	if err := onnx.WriteTensorFile(three, x3); err != nil {
		t.Fatal(err)
	}

	// compare runs graft on model with the input file in and ONNX Runtime
	// with x (the same tensor), and compares their outputs.
	compare := func(what, model, in string, x *onnx.Tensor) {
		t.Helper()
		od := filepath.Join(dir, what)
		mustGraft(t, "run", model, "--input", in, "--out", od)
		got, err := onnx.ReadTensorFile(filepath.Join(od, "output.pb"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := ort.Run(model, map[string]*onnx.Tensor{"input": x})
		if err != nil {
			t.Fatalf("%s: ONNX Runtime: %v", what, err)
		}
		if len(got.Shape) != 4 || got.Shape[0] != x.Shape[0] || got.Shape[1] != 2 || got.Shape[2] != 8 {
			t.Fatalf("%s: output shape %v", what, got.Shape)
		}
		d := relDiff(t, got, want["output"])
		t.Logf("%s: graft vs ONNX Runtime %.3g of the output magnitude", what, d)
		if d > 1e-5 {
			t.Errorf("%s: graft and ONNX Runtime differ by %.3g of the output magnitude", what, d)
		}
	}
	compare("batch1", c.ModelPath, one, x1)

	conv := filepath.Join(dir, "dynamic.onnx")
	mustGraft(t, "convert", c.ModelPath, "--batch-dim", "dynamic", "--out", conv, "-q")
	if err := onnxtest.Checker(t)(conv); err != nil {
		t.Fatalf("converted model fails the ONNX checker: %v", err)
	}
	cm, err := onnx.ReadFile(conv, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cm.Inputs()[0].GetType().GetTensorType().GetShape().GetDim()[0]; d.GetDimParam() == "" {
		t.Fatalf("converted model's batch dimension is not symbolic: %v", d)
	}
	compare("dynamic_batch1", conv, one, x1)
	compare("dynamic_batch3", conv, three, x3)
}
