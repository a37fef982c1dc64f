package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train"
	"github.com/graftml/graft/train/dataset"
)

// sampleImages is n test images of the sample task, one class after the
// other.
func sampleImages(t *testing.T, data string, n int) []string {
	t.Helper()
	var images []string
	for _, cls := range []string{"Ankle_boot", "Bag", "Sandal", "Sneaker"} {
		m, _ := filepath.Glob(filepath.Join(data, "test", cls, "*.png"))
		images = append(images, m[:2]...)
	}
	return images[:n]
}

// ortOutputs runs a written model in ONNX Runtime on the images, after
// the ONNX checker has passed it, and returns its only output by name.
func ortOutputs(t *testing.T, path string, images []string) map[string]*onnx.Tensor {
	t.Helper()
	if err := onnxtest.Checker(t)(path); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.ReadFile(path, onnx.Limits{})
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
	res, err := onnxtest.ORT(t).Run(path, map[string]*onnx.Tensor{m.Inputs()[0].Name: onnx.NewFloat(prep.Shape(len(images)), x)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkProbabilities: rows of [N, C] sum to 1.
func checkProbabilities(t *testing.T, what string, p *onnx.Tensor, n int) {
	t.Helper()
	if len(p.Shape) != 2 || p.Shape[0] != n {
		t.Fatalf("%s: shape %v, want [%d C]", what, p.Shape, n)
	}
	c := p.Shape[1]
	for i := 0; i < n; i++ {
		sum := 0.0
		for _, v := range p.F[i*c : (i+1)*c] {
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Fatalf("%s: row %d sums to %g", what, i, sum)
		}
	}
}

// TestAdaptKeepsHeadOnly: fine-tuning made to hurt (a huge backbone
// learning rate) ends worse on validation than the head alone; adapt
// keeps the head-only model and says so. The written model, with
// --softmax --batch-dim dynamic --output-name, runs in ONNX Runtime at
// another batch size and agrees with graft predict.
func TestAdaptKeepsHeadOnly(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "deploy.onnx")
	stdout, stderr, code := graft(t, "adapt", "--model", model, "--data", data, "--out", out, "--epochs", "5", "--val-split", "0.25",
		"--finetune-epochs", "2", "--backbone-lr-mult", "1000", "--softmax", "--batch-dim", "dynamic", "--output-name", "probs", "--json")
	if code != 0 {
		t.Fatalf("adapt: exit %d\n%s", code, stderr)
	}
	var res train.AdaptResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Kept == nil || res.Kept.Stage != train.PhaseHead || res.Kept.Epoch < 1 {
		t.Fatalf("kept %+v, want the head-only model", res.Kept)
	}
	var ftBest float64 = math.Inf(1)
	for _, m := range res.History {
		if m.Stage == train.PhaseFineTune {
			ftBest = math.Min(ftBest, m.ValLoss)
		}
	}
	if !(res.Kept.ValLoss < ftBest) || res.Val == nil || math.Abs(res.Val.Loss-res.Kept.ValLoss) > 1e-3 {
		t.Fatalf("kept validation loss %g, fine-tuning's best %g, final val %+v", res.Kept.ValLoss, ftBest, res.Val)
	}
	if !strings.Contains(stderr, "kept the head-only model of head epoch") || !strings.Contains(stderr, "fine-tuning did not improve the validation loss") {
		t.Errorf("adapt does not say which model it kept:\n%s", stderr)
	}
	if !strings.Contains(stdout, `"cache": {`) || !strings.Contains(stdout, `"hits"`) {
		t.Errorf("JSON keys are not snake_case: %s", stdout)
	}

	images := sampleImages(t, data, 3)
	probs := ortOutputs(t, out, images)["probs"]
	if probs == nil {
		t.Fatalf("ONNX Runtime: no output named probs")
	}
	checkProbabilities(t, "adapted --softmax", probs, 3)
	var preds []train.Prediction
	if err := json.Unmarshal([]byte(mustGraft(t, append([]string{"predict", out, "--top", "1", "--json"}, images...)...)), &preds); err != nil {
		t.Fatal(err)
	}
	for i, p := range preds {
		if want := float64(probs.F[i*4+p.Top[0].Index]); math.Abs(p.Top[0].Prob-want) > 1e-4 {
			t.Errorf("%s: predict says %s %.5f, ONNX Runtime %.5f", images[i], p.Top[0].Label, p.Top[0].Prob, want)
		}
	}
}

// TestConvertDeployable: --softmax on a model's own classifier,
// --batch-dim with --batch as a deprecated alias, --output-name, and a
// cut's output named "features" whatever the model called it.
func TestConvertDeployable(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	images := sampleImages(t, data, 2)

	probsFile := filepath.Join(dir, "probs.onnx")
	mustGraft(t, "convert", model, "--out", probsFile, "--softmax", "--batch-dim", "dynamic", "--output-name", "scores")
	checkProbabilities(t, "convert --softmax", ortOutputs(t, probsFile, images)["scores"], 2)
	if _, errs, code := graft(t, "convert", probsFile, "--out", filepath.Join(dir, "twice.onnx"), "--softmax"); code != 1 || !strings.Contains(errs, "already comes out of Softmax") {
		t.Errorf("softmax twice: exit %d %s", code, errs)
	}

	feats := filepath.Join(dir, "features.onnx")
	_, errs, code := graft(t, "convert", model, "--out", feats, "--cut", "auto", "--batch", "2")
	if code != 0 || !strings.Contains(errs, "--batch on convert is the old name of --batch-dim") {
		t.Fatalf("convert --batch: exit %d, stderr %q", code, errs)
	}
	res := ortOutputs(t, feats, images)
	if f := res["features"]; f == nil || len(f.Shape) != 2 || f.Shape[0] != 2 {
		t.Fatalf("feature extractor outputs %v, want features [2 C]", res)
	}

	// predict says a feature extractor is one, eval refuses it
	out, errs, code := graft(t, "predict", feats, images[0])
	if code != 0 || !strings.Contains(out, "features [512]") || !strings.Contains(errs, "is a feature extractor") {
		t.Errorf("predict on a feature extractor: exit %d, %q, %q", code, out, errs)
	}
	if _, errs, code := graft(t, "eval", feats, "--data", data); code != 1 || !strings.Contains(errs, "is a feature extractor") {
		t.Errorf("eval on a feature extractor: exit %d, %q", code, errs)
	}
}

// TestLabels: eval refuses a model whose outputs cannot be the folder's
// classes, takes --labels for a model without labels, and predict takes
// folders and goes on past bad files.
func TestLabels(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(data, "test")
	head5 := filepath.Join(dir, "head5.onnx")
	head4 := filepath.Join(dir, "head4.onnx")
	mustGraft(t, "convert", model, "--out", head5, "--head", "5")
	mustGraft(t, "convert", model, "--out", head4, "--head", "4")

	_, errs, code := graft(t, "eval", head5, "--data", test)
	if code != 1 || !strings.Contains(errs, "records no labels and outputs 5 classes, but") || !strings.Contains(errs, "has 4 class folders") || !strings.Contains(errs, "give --labels") {
		t.Errorf("eval of 5 outputs on 4 folders: exit %d, %q", code, errs)
	}
	// the base model's own labels are other classes
	if _, errs, code := graft(t, "eval", model, "--data", test); code != 1 || !strings.Contains(errs, "is not one of the model's labels") {
		t.Errorf("eval with other labels: exit %d, %q", code, errs)
	}
	out, errs, code := graft(t, "eval", head4, "--data", test)
	if code != 0 || !strings.Contains(errs, "records no labels: taking its 4 outputs to be the class folders in sorted order (Ankle_boot, Bag, Sandal, Sneaker); set --labels") {
		t.Errorf("eval without labels: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "Sneaker") {
		t.Errorf("eval without labels does not name the classes:\n%s", out)
	}
	labels := filepath.Join(dir, "labels.txt")
	os.WriteFile(labels, []byte("Ankle boot\nBag\nSandal\nSneaker\n"), 0o644)
	if out, errs, code := graft(t, "eval", head4, "--data", test, "--labels", labels, "-q"); code != 0 || errs != "" || !strings.Contains(out, "Ankle boot") {
		t.Errorf("eval --labels FILE: exit %d, %q, %q", code, out, errs)
	}
	if _, errs, code := graft(t, "eval", head4, "--data", test, "--labels", "a,b,c"); code != 1 || !strings.Contains(errs, "--labels: 3 labels for the 4 outputs") {
		t.Errorf("eval --labels of the wrong length: exit %d, %q", code, errs)
	}

	// predict: a folder, recursively, and bad files reported at the end
	imgs := filepath.Join(dir, "imgs")
	os.MkdirAll(filepath.Join(imgs, "deeper"), 0o755)
	for i, p := range sampleImages(t, data, 2) {
		b, _ := os.ReadFile(p)
		os.WriteFile(filepath.Join(imgs, []string{"a.png", "deeper/b.png"}[i]), b, 0o644)
	}
	os.WriteFile(filepath.Join(imgs, "corrupt.png"), []byte("not a png"), 0o644)
	missing := filepath.Join(dir, "missing.png")
	out, errs, code = graft(t, "predict", head4, imgs, missing, "--labels", "w,x,y,z", "--top", "1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 4 || !strings.Contains(errs, "2 of 4 images could not be read") {
		t.Fatalf("predict with bad files: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	for _, want := range []string{"a.png: ", "deeper/b.png: ", "corrupt.png: error: ", "missing.png: error: "} {
		if !strings.Contains(out, want) {
			t.Errorf("predict output lacks %q:\n%s", want, out)
		}
	}
}

// TestNotes: what adapt assumes is said on stderr, one line each, and
// skipped files are named in the text output too.
func TestNotes(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	// a model without preprocessing metadata
	m, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	surgery.RemoveMetadata(m.Proto, onnx.KeyPreprocessing)
	bare := filepath.Join(dir, "bare.onnx")
	if err := onnx.WriteFile(bare, m.Proto, false); err != nil {
		t.Fatal(err)
	}
	// train/ and val/ (the sample's test images), and train/ alone
	withVal := filepath.Join(dir, "withval")
	os.MkdirAll(withVal, 0o755)
	os.Symlink(filepath.Join(data, "train"), filepath.Join(withVal, "train"))
	os.Symlink(filepath.Join(data, "test"), filepath.Join(withVal, "val"))
	trainOnly := filepath.Join(dir, "trainonly")
	os.MkdirAll(filepath.Join(trainOnly, "train"), 0o755)
	classes, _ := filepath.Glob(filepath.Join(data, "train", "*"))
	for i, c := range classes {
		dst := filepath.Join(trainOnly, "train", filepath.Base(c))
		os.MkdirAll(dst, 0o755)
		files, _ := filepath.Glob(filepath.Join(c, "*.png"))
		for _, f := range files[:5] {
			b, _ := os.ReadFile(f)
			os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
		}
		if i < 2 {
			for j := 0; j < 4; j++ {
				os.WriteFile(filepath.Join(dst, "corrupt"+string(rune('a'+j))+".png"), []byte("\x89PNG\r\n\x1a\nbroken"), 0o644)
			}
		}
	}

	_, errs, code := graft(t, "adapt", "--model", bare, "--data", data, "--dry-run")
	if code != 0 || !strings.Contains(errs, "records no preprocessing: assuming ImageNet's mean and std") || !strings.Contains(errs, "set --mean and --std") {
		t.Errorf("no preprocessing metadata: exit %d, stderr %q", code, errs)
	}
	_, errs, code = graft(t, "adapt", "--model", model, "--data", withVal, "--dry-run", "--val-split", "0.2")
	if code != 0 || !strings.Contains(errs, "--val-split 0.2 ignored: ") || !strings.Contains(errs, "has a validation folder") {
		t.Errorf("val-split with val/: exit %d, stderr %q", code, errs)
	}
	out, errs, code := graft(t, "adapt", "--model", model, "--data", trainOnly, "--epochs", "2", "--patience", "3", "--out", filepath.Join(dir, "o.onnx"))
	if code != 0 {
		t.Fatalf("adapt on train/ only: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"--patience 3 ignored: early stopping needs validation images", "only training accuracy is reported", "--val-split 0.2"} {
		if strings.Count(errs, want) != 1 {
			t.Errorf("stderr does not say %q once:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, "training accuracy only") || !strings.Contains(out, "corrupta.png") || !strings.Contains(out, "and 3 more") {
		t.Errorf("summary does not name the skipped files or say it has training accuracy only:\n%s", out)
	}
	if _, errs, _ := graft(t, "adapt", "-q", "--model", bare, "--data", trainOnly, "--dry-run"); errs != "" {
		t.Errorf("-q printed %q", errs)
	}
}
