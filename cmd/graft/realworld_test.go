package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// TestFreeImageSize: a model in a non-PyTorch exporter's shape (weights
// as Constant nodes, input x: [N, 3, H, W]) goes through every command
// that builds a model, at the size --input-shape gives: inspect shows the
// symbols and per-node shapes, run matches ONNX Runtime, convert writes a
// model ONNX Runtime agrees with that keeps H and W symbolic, adapt trains
// a head at the chosen size and records it, so that eval and predict of
// the adapted model need no size.
func TestFreeImageSize(t *testing.T) {
	_, model := onnxtest.ConstClassifier(t)
	dir := t.TempDir()

	// inspect: symbols as declared; node shapes only for a stated size
	out := mustGraft(t, "inspect", model)
	if !strings.Contains(out, "x float32 [N 3 H W]") || !strings.Contains(out, "--input-shape x=") {
		t.Errorf("inspect without a size:\n%s", out)
	}
	var rep graph.Report
	if err := json.Unmarshal([]byte(mustGraft(t, "inspect", model, "--input-shape", "x=2x3x12x10", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.BuildError != "" || !slices.Equal(rep.ShapesAt["x"], []int{2, 3, 12, 10}) || !slices.Equal(rep.Inputs[0].Shape, []string{"N", "3", "H", "W"}) {
		t.Fatalf("inspect --input-shape: %+v", rep)
	}
	for _, n := range rep.Nodes {
		if n.Op == "Conv" && !slices.Equal(n.Shape, []int{2, 4, 12, 10}) {
			t.Errorf("conv output shape %v at 2x3x12x10", n.Shape)
		}
	}
	if out := mustGraft(t, "inspect", model, "--input-shape", "x=2x3x12x10"); !regexp.MustCompile(`shapes at +x \[2 3 12 10\]`).MatchString(out) {
		t.Errorf("inspect text does not say the size:\n%s", out)
	}

	// run: a file of any size; a size alone runs seeded random values
	x := onnx.NewFloat([]int{2, 3, 9, 7}, nil)
	for i := range x.F {
		x.F[i] = float32(i%17) / 17
	}
	xpath := filepath.Join(dir, "x.npy")
	if err := os.WriteFile(xpath, onnx.EncodeNpy(x), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := onnxtest.ORT(t).Run(model, map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "run")
	mustGraft(t, "run", model, "--input", xpath, "--out", outDir)
	got, err := onnx.ReadTensorFile(filepath.Join(outDir, "y.pb"))
	if err != nil {
		t.Fatal(err)
	}
	onnxtest.AssertClose(t, "graft run vs ONNX Runtime", got, want["y"], 1e-5)
	r1 := mustGraft(t, "run", model, "--input-shape", "x=1x3x16x16", "--seed", "3", "--json")
	if r2 := mustGraft(t, "run", model, "--input-shape", "x=1x3x16x16", "--seed", "3", "--json"); r1 != r2 || !strings.Contains(r1, `"shape": [`) {
		t.Errorf("run --input-shape with the same seed differs or is empty:\n%s\n%s", r1, r2)
	}
	if _, errs, code := graft(t, "run", model, "--input", xpath, "--input-shape", "x=2x3x9x8"); code != 1 || !strings.Contains(errs, "not the [2 3 9 8] given for it") {
		t.Errorf("a file against --input-shape: exit %d %q", code, errs)
	}

	// convert: a new head; the written model keeps N, H and W symbolic
	conv := filepath.Join(dir, "head.onnx")
	mustGraft(t, "convert", model, "--cut", "auto", "--head", "3", "--out", conv, "--input-shape", "x=1x3x16x16")
	if err := onnxtest.Checker(t)(conv); err != nil {
		t.Fatal(err)
	}
	cm, err := onnx.ReadFile(conv, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s := onnx.DimNames(cm.Inputs()[0].GetType().GetTensorType().GetShape()); !slices.Equal(s, []string{"N", "3", "H", "W"}) {
		t.Errorf("converted input %v: H and W must stay symbolic", s)
	}

	// adapt at a chosen size; eval and predict take it from the metadata
	data := filepath.Join(dir, "data")
	onnxtest.ColorImages(t, data, 6, 24)
	if _, errs, code := graft(t, "adapt", "--model", model, "--data", data, "--out", filepath.Join(dir, "none.onnx")); code != 1 || !strings.Contains(errs, "--input-shape x=1x3x224x224") || !strings.Contains(errs, "--resize N") {
		t.Errorf("adapt of a free-size model without a size: exit %d %q", code, errs)
	}
	adapted := filepath.Join(dir, "adapted.onnx")
	mustGraft(t, "adapt", "--model", model, "--data", data, "--out", adapted, "--input-shape", "x=1x3x20x20", "--epochs", "30", "-q")
	am, err := onnx.ReadFile(adapted, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pre, err := am.Preprocessing()
	if err != nil || pre == nil || pre.Height != 20 || pre.Width != 20 {
		t.Fatalf("adapted model's preprocessing %+v (%v): want the 20x20 it was trained at", pre, err)
	}
	if s := onnx.DimNames(am.Inputs()[0].GetType().GetTensorType().GetShape()); !slices.Equal(s, []string{"N", "3", "H", "W"}) {
		t.Errorf("adapted input %v: H and W must stay symbolic", s)
	}
	var ev struct {
		Accuracy float64 `json:"accuracy"`
		Images   int     `json:"n"`
	}
	if err := json.Unmarshal([]byte(mustGraft(t, "eval", adapted, "--data", filepath.Join(data, "test"), "--json", "-q")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy < 0.9 {
		t.Errorf("eval of the adapted model at its recorded size: accuracy %.3f on %d images, want >= 0.9 on color classes", ev.Accuracy, ev.Images)
	}
	img := filepath.Join(data, "test", "class2", "00.png")
	if out := mustGraft(t, "predict", adapted, img, "-q"); !strings.Contains(out, "class2") {
		t.Errorf("predict: %s", out)
	}
}
