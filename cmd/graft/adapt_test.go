package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/train/dataset"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/train"
)

// TestAdaptSample runs the README's first command, `graft adapt` with no
// flags, then eval and predict on its output, and checks ONNX Runtime
// agrees with predict on every sample test image.
func TestAdaptSample(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	out, errs, code := graft(t, "adapt")
	if code != 0 {
		t.Fatalf("graft adapt: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"test ", "chance       25.00%", "PyTorch", "wrote        graft-sample.onnx"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "head 500/500 steps done") || !strings.Contains(errs, "epoch 100/100") {
		t.Errorf("no progress on stderr:\n%s", errs)
	}
	// a second run overwrites graft's own file; a foreign file is kept
	mustGraft(t, "adapt", "--quiet")
	os.WriteFile("graft-sample.onnx", []byte("user data"), 0o644)
	if _, errs, code := graft(t, "adapt", "--quiet"); code != 1 || !strings.Contains(errs, "not a model graft wrote") {
		t.Fatalf("foreign graft-sample.onnx: exit %d %s", code, errs)
	}
	if b, _ := os.ReadFile("graft-sample.onnx"); string(b) != "user data" {
		t.Fatal("graft overwrote a file it did not write")
	}
	os.Remove("graft-sample.onnx")
	mustGraft(t, "adapt", "--quiet")

	_, data, err := models.Extract(work)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Accuracy  float64 `json:"accuracy"`
		N         int     `json:"n"`
		PerClass  []any   `json:"per_class"`
		Confusion [][]int `json:"confusion"`
	}
	if err := json.Unmarshal([]byte(mustGraft(t, "eval", "graft-sample.onnx", "--data", data, "--json")), &ev); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustGraft(t, "eval", "--json", "--data", data, "graft-sample.onnx")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.N != 400 || len(ev.PerClass) != 4 || len(ev.Confusion) != 4 || ev.Accuracy < 0.5 {
		t.Fatalf("eval: %+v", ev)
	}

	var images []string
	for _, cls := range []string{"Ankle_boot", "Bag", "Sandal", "Sneaker"} {
		m, _ := filepath.Glob(filepath.Join(data, "test", cls, "*.png"))
		images = append(images, m...)
	}
	var preds []train.Prediction
	// flags before the arguments here, after them for eval above
	args := append([]string{"predict", "--top", "1", "--json", "graft-sample.onnx"}, images...)
	if err := json.Unmarshal([]byte(mustGraft(t, args...)), &preds); err != nil {
		t.Fatal(err)
	}
	if len(preds) != 400 {
		t.Fatalf("%d predictions", len(preds))
	}

	ort := onnxtest.ORT(t)
	m, err := onnx.ReadFile("graft-sample.onnx", onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	prep, err := dataset.PreprocessFor(m, dataset.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]dataset.Sample, len(images))
	for i, p := range images {
		samples[i] = dataset.Sample{Path: p}
	}
	x, _, _, err := dataset.LoadTensors(samples, prep, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	in := m.Inputs()[0].Name
	res, err := ort.Run("graft-sample.onnx", map[string]*onnx.Tensor{in: onnx.NewFloat(prep.Shape(len(images)), x)})
	if err != nil {
		t.Fatal(err)
	}
	logits := res[m.Proto.Graph.Output[0].Name]
	labels, _ := m.Labels()
	for i, p := range preds {
		row := logits.F[i*4 : i*4+4]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if labels[best] != p.Top[0].Label {
			t.Errorf("%s: ONNX Runtime says %s, graft predict says %s", images[i], labels[best], p.Top[0].Label)
		}
	}
}

func TestAdaptBadInput(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(filepath.Join(empty, "cat"), 0o755)
	os.MkdirAll(filepath.Join(empty, "dog"), 0o755)
	os.WriteFile(filepath.Join(empty, "dog", "a.png"), []byte("x"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"adapt", "--model", model, "--data", filepath.Join(dir, "nope")}, "nope"},
		{[]string{"adapt", "--model", model, "--data", empty}, "cat"},
		{[]string{"adapt", "--model", model, "--data", data, "--cut", "nope"}, `no tensor named "nope"`},
		{[]string{"adapt", "--model", model, "--data", data, "--out", filepath.Join(dir, "missing", "a.onnx")}, "does not exist"},
		{[]string{"adapt", "--model", model}, "give both --model and --data"},
		{[]string{"adapt", "--model", model, "--data", data, "--head", "tree"}, "--head"},
		{[]string{"adapt", "--model", model, "--data", data, "--unfreeze-last", "999", "--finetune-epochs", "1"}, "only"},
		{[]string{"adapt", "--model", model, "--data", data, "--trainable", "^zzz$", "--finetune-epochs", "1"}, "selects no weight"},
		{[]string{"adapt", "--model", model, "--data", data, "--optimizer", "sgd", "--lr", "1e38", "--epochs", "3"}, "lower --lr"},
	}
	for _, tc := range cases {
		_, errs, code := graft(t, tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("graft %s: exit %d, stderr %q; want %q", strings.Join(tc.args[1:], " "), code, errs, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "adapted.onnx")); err == nil {
		t.Error("a failed adapt left adapted.onnx")
	}
}
