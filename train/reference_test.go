package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// The PyTorch references of train/testdata/gen_train.py (see its doc):
// manifest.json describes the parts and cases, <part>/<case>/<weight>.pb
// hold each trainable weight after every optimizer step.
const refDir = "testdata/reference"

type refManifest struct {
	BackboneLRMult float64 `json:"backbone_lr_mult"`
	Cases          []struct {
		Name      string `json:"name"`
		Head      bool   `json:"head"`
		Optimizer struct {
			Kind        OptimizerKind `json:"kind"`
			LR          float64       `json:"lr"`
			WeightDecay float64       `json:"weight_decay"`
			Momentum    float64       `json:"momentum"`
			Nesterov    bool          `json:"nesterov"`
		} `json:"optimizer"`
		Schedule struct {
			Kind        ScheduleKind `json:"kind"`
			WarmupSteps int          `json:"warmup_steps"`
			StepEvery   int          `json:"step_every"`
			Gamma       float64      `json:"gamma"`
		} `json:"schedule"`
		LabelSmoothing float64 `json:"label_smoothing"`
	} `json:"cases"`
	Parts map[string]*refPart `json:"parts"`
}

type refPart struct {
	Model, X, Input, Logits string
	Labels                  []int
	Batch, Epochs           int
	Seed                    int64
	Stage                   string
	Order                   [][]int
	Groups                  []struct {
		Params []string `json:"params"`
		LRMult float64  `json:"lr_mult"`
	}
	Frozen     []string
	Images     []string
	ClassNames []string `json:"class_names"`
}

func loadManifest(t *testing.T) *refManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, "manifest.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 train/testdata/gen_train.py)", err)
	}
	var m refManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// refTol bounds graft's weights after every step against PyTorch's
// float64 trajectory: the largest difference relative to the weight's
// largest magnitude. Measured (graft computes in float32): 1.2e-5 on the
// head with Adam, at one element at step 1, and at most 2.6e-7 everywhere
// else. That element's gradient cancels to about Adam's eps (1e-8) in
// float32, where g/(|g|+eps) turns the gradient's rounding (about 1e-4 of
// it) into a 7e-7 move of a weight whose magnitude is 0.054 (a linear head
// on 512 features starts within 1/sqrt(512)). PyTorch in float32 has the
// same error. The smallest real effect the reference has to see is the
// backbone's update under the LR multiplier, 2.8e-4 on weights of
// magnitude about 0.3 (1e-3 relative), thirty times above refTol.
const refTol = 3e-5

// TestBatchOrderPortable: graft's shuffle is the stream gen_train.py
// re-implements from rng.go's description, for every epoch the references
// use, and a fixed value pins the algorithm itself.
func TestBatchOrderPortable(t *testing.T) {
	m := loadManifest(t)
	for name, p := range m.Parts {
		for e, want := range p.Order {
			if got := BatchOrder(p.Seed, p.Stage, e+1, len(p.Labels)); !slices.Equal(got, want) {
				t.Errorf("%s epoch %d: graft's order %v, the reference's (rng.go's documented stream in Python) %v", name, e+1, got, want)
			}
		}
	}
	if got, want := NewStream(0, "", 0).Uint64(), uint64(0x41e5779b7cf5e194); got != want {
		t.Errorf("NewStream(0, \"\", 0).Uint64() = %#x, want %#x", got, want)
	}
	a, b := BatchOrder(1, "head", 1, 50), BatchOrder(1, "head", 2, 50)
	c := BatchOrder(1, "fine-tune", 1, 50)
	if slices.Equal(a, b) || slices.Equal(a, c) {
		t.Error("epochs or stages share an order")
	}
}

// TestTrainingMatchesPyTorch trains the reference's head (on the sample's
// backbone features) and fine-tunes its tiny conv net (backbone layer at
// the LR multiplier) through NewNet and Run, and compares every trainable
// weight with PyTorch's after every optimizer step, for Adam, AdamW and
// SGD with momentum, with and without schedules and label smoothing.
func TestTrainingMatchesPyTorch(t *testing.T) {
	m := loadManifest(t)
	for _, part := range []string{"head", "finetune"} {
		p := m.Parts[part]
		src, err := onnx.ReadFile(filepath.Join(refDir, p.Model), onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		x, err := onnx.ReadTensorFile(filepath.Join(refDir, p.X))
		if err != nil {
			t.Fatal(err)
		}
		ex := &Examples{X: x.F, Shape: x.Shape[1:], Labels: p.Labels}
		var trainable []string
		var scale []float64
		for _, g := range p.Groups {
			for _, name := range g.Params {
				trainable = append(trainable, name)
				scale = append(scale, g.LRMult)
			}
		}
		// every initializer of the net is either trained or listed frozen
		for name := range src.Initializers() {
			if !slices.Contains(trainable, name) && !slices.Contains(p.Frozen, name) {
				t.Fatalf("%s: initializer %q is neither trainable nor frozen in the reference", part, name)
			}
		}
		for _, c := range m.Cases {
			if part == "head" && !c.Head {
				continue
			}
			t.Run(part+"/"+c.Name, func(t *testing.T) {
				want := map[string]*onnx.Tensor{}
				for _, name := range trainable {
					w, err := onnx.ReadTensorFile(filepath.Join(refDir, part, c.Name, name+".pb"))
					if err != nil {
						t.Fatal(err)
					}
					want[name] = w
				}
				net, err := NewNet(src, p.Input, p.Logits, trainable, 0)
				if err != nil {
					t.Fatal(err)
				}
				initial := map[string][]float32{}
				for name, w := range net.Weights {
					initial[name] = slices.Clone(w.F)
				}
				steps := (ex.Len() + p.Batch - 1) / p.Batch
				opt, err := NewOptimizer(OptimizerConfig{Kind: c.Optimizer.Kind, WeightDecay: c.Optimizer.WeightDecay,
					Momentum: c.Optimizer.Momentum, Nesterov: c.Optimizer.Nesterov})
				if err != nil {
					t.Fatal(err)
				}
				sched, err := NewSchedule(c.Schedule.Kind, c.Optimizer.LR, steps*p.Epochs, c.Schedule.WarmupSteps, c.Schedule.StepEvery, c.Schedule.Gamma)
				if err != nil {
					t.Fatal(err)
				}
				check := &stepCheck{t: t, net: net, want: want, trainable: trainable}
				_, err = Run(context.Background(), net, Config{Epochs: p.Epochs, Batch: p.Batch, Optimizer: opt, Schedule: sched, LRScale: scale,
					LabelSmoothing: c.LabelSmoothing, Seed: p.Seed, Stage: p.Stage, Hooks: []Hook{check}}, ex, nil)
				if err != nil {
					t.Fatal(err)
				}
				if check.steps != steps*p.Epochs {
					t.Fatalf("%d steps, the reference has %d", check.steps, steps*p.Epochs)
				}
				t.Logf("%d steps: worst difference from PyTorch %.2g of the weight's magnitude (%s)", check.steps, check.worst, check.where)
				for name, w := range net.Weights {
					moved := !slices.Equal(w.F, initial[name])
					if moved != slices.Contains(trainable, name) {
						t.Errorf("weight %q: changed %v, trainable %v", name, moved, slices.Contains(trainable, name))
					}
				}
			})
		}
	}
}

// stepCheck compares the net's trainable weights with the reference after
// every step.
type stepCheck struct {
	t         *testing.T
	net       *Net
	want      map[string]*onnx.Tensor
	trainable []string
	steps     int
	worst     float64
	where     string
}

func (c *stepCheck) OnStep(s StepInfo) {
	c.steps++
	k := c.steps
	for _, name := range c.trainable {
		w, ref := c.net.Weights[name].F, c.want[name]
		n := len(w)
		if ref.Shape[0] <= k || len(ref.F) != ref.Shape[0]*n {
			c.t.Fatalf("step %d: reference for %q has shape %v, the weight %d values", k, name, ref.Shape, n)
		}
		row := ref.F[k*n : (k+1)*n]
		var diff, mag float64
		at := 0
		for i := range w {
			mag = math.Max(mag, math.Abs(float64(row[i])))
			if d := math.Abs(float64(w[i] - row[i])); d > diff {
				diff, at = d, i
			}
		}
		rel := diff / math.Max(mag, 1e-12)
		if rel > c.worst {
			c.worst, c.where = rel, fmt.Sprintf("%s, step %d", name, k)
		}
		if rel > refTol {
			c.t.Fatalf("epoch %d step %d (lr %g): %q differs from PyTorch by %.3g at %d (graft %.8g, PyTorch %.8g): %.2g of its magnitude %.3g, limit %g",
				s.Epoch, s.Step, s.LR, name, diff, at, w[at], row[at], rel, mag, refTol)
		}
	}
}

func (c *stepCheck) OnEpoch(*Fit, EpochMetrics) error { return nil }
func (c *stepCheck) OnEnd(*Fit) error                 { return nil }

// TestReferenceFeatures: graft's backbone features of the reference's
// images agree with those gen_train.py computed with the recipe's torch
// evaluator of models/backbone.onnx, so the head reference trains on what
// graft itself would give it.
func TestReferenceFeatures(t *testing.T) {
	m := loadManifest(t)
	p := m.Parts["head"]
	want, err := onnx.ReadTensorFile(filepath.Join(refDir, p.X))
	if err != nil {
		t.Fatal(err)
	}
	model, data, _ := sample(t)
	src, input, prep, err := openImageModel(model, onnx.Limits{}, dataset.Overrides{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var samples []dataset.Sample
	for _, img := range p.Images {
		samples = append(samples, dataset.Sample{Path: filepath.Join(data, "train", filepath.FromSlash(img))})
	}
	x, kept, _, err := dataset.LoadTensors(samples, prep, 0, true)
	if err != nil || len(kept) != len(samples) {
		t.Fatalf("%d of %d images: %v", len(kept), len(samples), err)
	}
	cut := "/Flatten_output_0"
	ext := &Extractor{Src: src, Input: input, Features: cut, Dim: want.Shape[1]}
	f, err := ext.Run(context.Background(), x, len(samples), prep.Shape(1)[1:])
	if err != nil {
		t.Fatal(err)
	}
	got := onnx.NewFloat(want.Shape, f)
	d := compareRel(got.F, want.F)
	t.Logf("features: %.2g of their magnitude from the torch evaluation", d)
	if d > 1e-5 {
		t.Fatalf("graft's features differ from torch's by %.3g of their magnitude (limit 1e-5)", d)
	}
}

func compareRel(got, want []float32) float64 {
	var diff, mag float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
		mag = math.Max(mag, math.Abs(float64(want[i])))
	}
	return diff / math.Max(mag, 1e-12)
}

// TestAdaptTrainsEveryHeadParam: every initializer of the head Adapt
// attaches is one it trains, and one epoch moves every one of them from
// its initial value in the written model.
func TestAdaptTrainsEveryHeadParam(t *testing.T) {
	model, data, dir := sample(t)
	for _, head := range []Head{{}, {Hidden: []int{8}}} {
		out := filepath.Join(dir, head.String()+".onnx")
		cfg := AdaptConfig{Model: model, Data: data, Out: out, Epochs: 1, Head: head, Seed: 3}
		a, err := newAdaptation(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []func() error{a.load, a.resolveCut, a.attachHead} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		base := a.src.Initializers()
		initial := map[string]*onnx.Tensor{}
		for _, tp := range a.adapted.Proto.Graph.Initializer {
			if _, ok := base[tp.Name]; ok {
				continue
			}
			if !slices.Contains(a.head.Params, tp.Name) {
				t.Errorf("%s head: initializer %q is not among the trained parameters %v", head, tp.Name, a.head.Params)
			}
			initial[tp.Name], err = onnx.TensorFromProto(tp)
			if err != nil {
				t.Fatal(err)
			}
		}
		a.close()
		if len(initial) != len(a.head.Params) {
			t.Fatalf("%s head: %d new initializers, %d trained parameters", head, len(initial), len(a.head.Params))
		}
		if _, err := Adapt(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		written := initializers(t, out)
		for name, w0 := range initial {
			w, err := onnx.TensorFromProto(written[name])
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(w.F, w0.F) {
				t.Errorf("%s head: %q did not change in an epoch of training", head, name)
			}
		}
	}
}

// TestAdaptBackboneLRMult: fine-tuning moves the backbone in proportion
// to AdaptConfig.BackboneLRMult (Adam's steps are about lr x mult each).
func TestAdaptBackboneLRMult(t *testing.T) {
	model, data, dir := sample(t)
	base := initializers(t, model)
	moved := func(mult float64) (float64, string) {
		out := filepath.Join(dir, fmt.Sprintf("m%g.onnx", mult))
		res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: out, Epochs: 2, FinetuneEpochs: 1, UnfreezeLast: 1, BackboneLRMult: mult})
		if err != nil {
			t.Fatal(err)
		}
		after := initializers(t, out)
		var most float64
		var which string
		for _, l := range res.TrainableLayers {
			for _, p := range l.Params {
				w0, _ := onnx.TensorFromProto(base[p])
				w1, _ := onnx.TensorFromProto(after[p])
				for i := range w0.F {
					if d := math.Abs(float64(w1.F[i] - w0.F[i])); d > most {
						most, which = d, p
					}
				}
			}
		}
		return most, which
	}
	hi, p := moved(0.1)
	lo, _ := moved(0.01)
	t.Logf("largest backbone change (%s): %.3g at multiplier 0.1, %.3g at 0.01", p, hi, lo)
	// 5 Adam steps of at most about lr x mult = 1e-3 each
	if hi > 0.01 || hi < 1e-4 || lo == 0 || hi/lo < 5 || hi/lo > 20 {
		t.Fatalf("backbone changes %.3g (x0.1) and %.3g (x0.01): want about 5e-3 and a ratio near 10", hi, lo)
	}
}
