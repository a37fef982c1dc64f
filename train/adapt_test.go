package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx"
)

func sample(t *testing.T) (model, data, dir string) {
	t.Helper()
	dir = t.TempDir()
	model, data, err := extractSample(dir)
	if err != nil {
		t.Fatal(err)
	}
	return model, data, dir
}

func extractSample(dir string) (model, data string, err error) { return models.Extract(dir) }

func readWeights(t *testing.T, path string) map[string][]byte {
	t.Helper()
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, tp := range m.Proto.Graph.Initializer {
		out[tp.Name] = tp.RawData
	}
	return out
}

// TestAdaptDeterministic: the same seed and data give bit-identical
// weights and metrics; another seed does not.
func TestAdaptDeterministic(t *testing.T) {
	model, data, dir := sample(t)
	run := func(name string, seed int64, finetune int) (*AdaptResult, map[string][]byte) {
		out := filepath.Join(dir, name)
		res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: out, Seed: seed, Epochs: 20, FinetuneEpochs: finetune})
		if err != nil {
			t.Fatal(err)
		}
		return res, readWeights(t, out)
	}
	for _, ft := range []int{0, 2} {
		r1, w1 := run("a.onnx", 5, ft)
		r2, w2 := run("b.onnx", 5, ft)
		_, w3 := run("c.onnx", 6, ft)
		for name, b := range w1 {
			if !bytes.Equal(b, w2[name]) {
				t.Errorf("finetune %d: weight %q differs between two runs with the same seed", ft, name)
			}
		}
		for i := range r1.History { // wall time is the one thing allowed to differ
			r1.History[i].Seconds, r2.History[i].Seconds = 0, 0
		}
		h1, _ := json.Marshal(r1.History)
		h2, _ := json.Marshal(r2.History)
		if !bytes.Equal(h1, h2) {
			t.Errorf("finetune %d: metrics differ between runs with the same seed", ft)
		}
		differ := false
		for name, b := range w1 {
			if !bytes.Equal(b, w3[name]) {
				differ = true
			}
		}
		if !differ {
			t.Errorf("finetune %d: another seed gave the same weights", ft)
		}
		os.Remove(filepath.Join(dir, "a.onnx"))
		os.Remove(filepath.Join(dir, "b.onnx"))
		os.Remove(filepath.Join(dir, "c.onnx"))
	}
}

// TestFeatureCache: a second run with other head settings reads every
// feature from the cache and trains the same as without the cache.
func TestFeatureCache(t *testing.T) {
	model, data, dir := sample(t)
	cache := filepath.Join(dir, "cache")
	r1, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, CacheDir: cache, Epochs: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Cache.Hits != 0 || r1.Cache.Misses != 480 {
		t.Fatalf("first run: %+v", r1.Cache)
	}
	r2, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, CacheDir: cache, Epochs: 5, Head: Head{Hidden: []int{32}}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Cache.Hits != 480 || r2.Cache.Misses != 0 {
		t.Fatalf("second run: %+v", r2.Cache)
	}
	r3, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Epochs: 5, Head: Head{Hidden: []int{32}}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Test.Accuracy != r3.Test.Accuracy || r2.History[4].TrainLoss != r3.History[4].TrainLoss {
		t.Fatalf("cached features train differently: %v vs %v", r2.History[4], r3.History[4])
	}
	// another preprocessing is another cache
	r4, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, CacheDir: cache, Epochs: 1, Mean: []float32{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if r4.Cache.Hits != 0 {
		t.Fatalf("changed preprocessing hit the cache: %+v", r4.Cache)
	}
}

// TestEarlyStopRestoresBest: with a validation split and patience, the
// run stops early and its weights are those of the best epoch.
func TestEarlyStopRestoresBest(t *testing.T) {
	model, data, dir := sample(t)
	log := filepath.Join(dir, "m.jsonl")
	res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: filepath.Join(dir, "o.onnx"), ValSplit: 0.25, Patience: 3,
		Epochs: 300, LR: 0.1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if res.Images.Val != 20 || res.Images.Train != 60 {
		t.Fatalf("split: %+v", res.Images)
	}
	if len(res.History) == 300 || !strings.Contains(res.Stopped, "early stop") {
		t.Fatalf("did not stop early: %d epochs, %q", len(res.History), res.Stopped)
	}
	best := res.History[0]
	for _, h := range res.History {
		if h.ValLoss < best.ValLoss {
			best = h
		}
	}
	if d := res.Val.Loss - best.ValLoss; d > 1e-6 || d < -1e-6 {
		t.Fatalf("final validation loss %g, best epoch %d had %g", res.Val.Loss, best.Epoch, best.ValLoss)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(res.History) || !strings.Contains(lines[0], `"val_loss"`) {
		t.Fatalf("log has %d lines for %d epochs: %s", len(lines), len(res.History), lines[0])
	}
}

func TestDryRunAndSelectors(t *testing.T) {
	model, data, _ := sample(t)
	res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, DryRun: true, UnfreezeLast: 2, FinetuneEpochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TrainableLayers) != 2 || len(res.FrozenLayers) == 0 || res.Trainable <= 516 || res.Frozen == 0 {
		t.Fatalf("dry run: %d trainable layers, %d frozen, %d/%d params", len(res.TrainableLayers), len(res.FrozenLayers), res.Trainable, res.Frozen)
	}
	if res.Train != nil {
		t.Fatal("dry run trained")
	}
	var oe *onnx.OptionError
	if _, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, UnfreezeLast: 2}); !errors.As(err, &oe) || oe.Option != "AdaptConfig.FinetuneEpochs" {
		t.Fatalf("backbone selected without fine-tuning epochs: %v", err)
	}
	src, _ := onnx.ReadFile(model, onnx.Limits{})
	layers := surgery.Layers(src.Proto, "")
	sel, err := surgery.SelectTrainable(layers, "features\\.7", 0)
	if err != nil || len(sel) == 0 {
		t.Fatalf("regex selection: %v %v", sel, err)
	}
}

func TestLabelSmoothingTargets(t *testing.T) {
	tg := onnx.NewFloat([]int{2, 4}, nil)
	fillTargets(tg, []int{0, 1}, []int{2, 0}, 4, 0.1)
	want := []float32{0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025, 0.025}
	for i, v := range tg.F {
		if d := v - want[i]; d > 1e-7 || d < -1e-7 {
			t.Fatalf("targets %v, want %v", tg.F, want)
		}
	}
}

// Sample-task gates: graft's test accuracy with its defaults, measured for
// seeds 0, 1 and 2 (Run's portable shuffle, December, `go test ./train`):
//
//	head only:                       84.00, 83.75, 85.00  mean 84.25, sd 0.66
//	two-stage (FinetuneEpochs 10):   86.00, 87.00, 86.25  mean 86.42, sd 0.52
//
// (sd: the sample standard deviation of the three). A gate is the mean
// minus 2 sd. Training is deterministic, so seed 0 gives exactly its
// measured value here; the margin is for other CPUs' float rounding and
// for deliberate changes that move a few of the 400 images, while a bug
// that costs a point and a half fails. The README's table shows the same
// runs beside PyTorch's (models/baseline.json).
const (
	sampleHeadOnlyGate = 0.8425 - 2*0.0066 // 0.8293
	sampleTwoStageGate = 0.8642 - 2*0.0052 // 0.8538
)

// TestSampleAccuracy is the shipped sample task end to end, with graft's
// defaults and seed 0, head only and two-stage, against the gates above;
// it logs PyTorch's baseline beside them.
func TestSampleAccuracy(t *testing.T) {
	bl, err := models.LoadBaseline()
	if err != nil {
		t.Fatal(err)
	}
	model, data, _ := sample(t)
	for _, c := range []struct {
		name     string
		finetune int
		gate     float64
		pytorch  float64
	}{{"head-only", 0, sampleHeadOnlyGate, bl.HeadOnly.Mean}, {"two-stage", 10, sampleTwoStageGate, bl.TwoStage.Mean}} {
		res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, FinetuneEpochs: c.finetune})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: test accuracy %.4f (gate %.4f), PyTorch's mean over 3 seeds %.4f", c.name, res.Test.Accuracy, c.gate, c.pytorch)
		if res.Test.Accuracy < c.gate {
			t.Errorf("%s: test accuracy %.4f is below %.4f, the mean minus 2 sd of graft's three measured seeds", c.name, res.Test.Accuracy, c.gate)
		}
	}
}

// TestCorruptImages: an image that does not decode is reported by path
// and skipped, wherever it is; --strict makes it an error.
func TestCorruptImages(t *testing.T) {
	model, data, dir := sample(t)
	good, err := os.ReadFile(filepath.Join(data, "test", "Bag", "000.png"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(data, "test", "Bag", "zz-truncated.png")
	os.WriteFile(bad, good[:len(good)/2], 0o644)
	notImage := filepath.Join(data, "train", "Sandal", "notes.png")
	os.WriteFile(notImage, []byte("not an image"), 0o644)
	res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: filepath.Join(dir, "o.onnx"), Epochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 2 || !strings.Contains(strings.Join(res.Skipped, "\n"), "zz-truncated.png") || !strings.Contains(strings.Join(res.Skipped, "\n"), "notes.png") {
		t.Fatalf("skipped: %q", res.Skipped)
	}
	if res.Test.N != 400 || res.Train.N != 80 {
		t.Fatalf("evaluated %d test and %d train images", res.Test.N, res.Train.N)
	}
	for _, p := range []string{notImage, bad} {
		_, err = Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Epochs: 1, Strict: true})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Fatalf("--strict: %v, want an error naming %s", err, p)
		}
		os.Remove(p)
	}
}
