package main

import (
	"encoding/json"
	"math"
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
	// `graft adapt` is seed 0, head only: its test accuracy was measured
	// at 84.00% (seeds 0, 1, 2: 84.00, 83.75, 85.00); the gate is their
	// mean minus 2 sample standard deviations, as train's
	// sampleHeadOnlyGate. eval must reproduce adapt's own measurement.
	const evalGate = 0.8425 - 2*0.0066
	if ev.N != 400 || len(ev.PerClass) != 4 || len(ev.Confusion) != 4 || ev.Accuracy < evalGate {
		t.Fatalf("eval: accuracy %.4f (gate %.4f), %+v", ev.Accuracy, evalGate, ev)
	}
	if err := onnxtest.Checker(t)("graft-sample.onnx"); err != nil {
		t.Fatalf("graft adapt wrote a model the ONNX checker rejects: %v", err)
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

// TestAdaptPreprocessingOverrides: --mean, --std and --resize given to
// adapt are what it trains with, what it records in the model's metadata,
// and what eval and predict then use: their results match ONNX Runtime on
// images preprocessed with the overrides, computed here.
func TestAdaptPreprocessingOverrides(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustGraft(t, "adapt", "--model", model, "--data", data, "--out", "o.onnx", "--mean", "0.5", "--std", "0.25", "--resize", "36", "--epochs", "5", "--quiet")
	if err := onnxtest.Checker(t)("o.onnx"); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.ReadFile("o.onnx", onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := m.Preprocessing()
	if err != nil || meta == nil {
		t.Fatalf("preprocessing metadata: %v %v", meta, err)
	}
	if meta.Resize != 36 || len(meta.Mean) != 3 || len(meta.Std) != 3 {
		t.Fatalf("recorded preprocessing %+v, want resize 36 and 3 channels", meta)
	}
	for c := range 3 {
		if meta.Mean[c] != 0.5 || meta.Std[c] != 0.25 {
			t.Fatalf("recorded preprocessing mean %v std %v, want 0.5 and 0.25 (the base model's are 0.3162, 0.3443)", meta.Mean, meta.Std)
		}
	}

	// the overrides applied to the base model: independent of o.onnx's metadata
	base, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	prep, err := dataset.PreprocessFor(base, dataset.Overrides{Resize: 36, Mean: []float32{0.5}, Std: []float32{0.25}})
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	var labels []int
	for k, cls := range []string{"Ankle_boot", "Bag", "Sandal", "Sneaker"} {
		files, _ := filepath.Glob(filepath.Join(data, "test", cls, "*.png"))
		images = append(images, files...)
		for range files {
			labels = append(labels, k)
		}
	}
	samples := make([]dataset.Sample, len(images))
	for i, p := range images {
		samples[i] = dataset.Sample{Path: p}
	}
	x, _, _, err := dataset.LoadTensors(samples, prep, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := onnxtest.ORT(t).Run("o.onnx", map[string]*onnx.Tensor{m.Inputs()[0].Name: onnx.NewFloat(prep.Shape(len(images)), x)})
	if err != nil {
		t.Fatal(err)
	}
	logits := res[m.Proto.Graph.Output[0].Name]
	correct := 0
	probs := make([][]float64, len(images))
	for i := range images {
		row := logits.F[i*4 : i*4+4]
		best, mx := 0, float64(row[0])
		for j, v := range row {
			if float64(v) > mx {
				best, mx = j, float64(v)
			}
		}
		if best == labels[i] {
			correct++
		}
		var sum float64
		probs[i] = make([]float64, 4)
		for j, v := range row {
			probs[i][j] = math.Exp(float64(v) - mx)
			sum += probs[i][j]
		}
		for j := range probs[i] {
			probs[i][j] /= sum
		}
	}
	var ev struct {
		Accuracy float64 `json:"accuracy"`
		N        int     `json:"n"`
	}
	if err := json.Unmarshal([]byte(mustGraft(t, "eval", "o.onnx", "--data", data, "--json")), &ev); err != nil {
		t.Fatal(err)
	}
	if want := float64(correct) / float64(len(images)); ev.N != 400 || math.Abs(ev.Accuracy-want) > 1.5/400 {
		t.Errorf("graft eval: accuracy %.4f of %d images; ONNX Runtime with the overrides gives %.4f", ev.Accuracy, ev.N, want)
	}
	some := images[:40:40]
	var preds []train.Prediction
	if err := json.Unmarshal([]byte(mustGraft(t, append([]string{"predict", "--top", "4", "--json", "o.onnx"}, some...)...)), &preds); err != nil {
		t.Fatal(err)
	}
	for i, p := range preds {
		for _, lp := range p.Top {
			if d := math.Abs(lp.Prob - probs[i][lp.Index]); d > 1e-4 {
				t.Fatalf("%s: predict gives %s %.6f, ONNX Runtime on the overridden preprocessing %.6f", some[i], lp.Label, lp.Prob, probs[i][lp.Index])
			}
		}
	}
}
