package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graftml/graft/train/dataset"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// Defaults of AdaptConfig. They are the settings the README's targets were
// measured with, and the PyTorch baselines in models/ use the same ones.
const (
	DefaultEpochs    = 100
	DefaultBatch     = 16
	DefaultLR        = 1e-2
	DefaultOptimizer = "adam"
	DefaultSchedule  = "constant"
	// Fine-tuning defaults (with FinetuneEpochs > 0).
	DefaultUnfreezeLast   = 4
	DefaultBackboneLRMult = 0.1
)

// AdaptConfig is what `graft adapt` asks for. Zero values mean the
// documented defaults.
type AdaptConfig struct {
	Model string // the pretrained ONNX model
	Data  string // the image folder
	Out   string // the adapted model to write
	// Force allows overwriting Out. OverwriteOwn allows it only when Out
	// is a model graft wrote (its metadata says so).
	Force, OverwriteOwn bool

	Cut     string  // "auto" (default) or a tensor name
	Head    string  // "linear" (default) or "mlp:256[,128]"
	Dropout float64 // MLP head dropout
	Seed    int64

	Resize    int
	Mean, Std []float32
	ValSplit  float64
	Strict    bool

	Optimizer      string
	LR             float64
	Momentum       float64
	Nesterov       bool
	WeightDecay    float64
	Schedule       string
	Warmup         int // epochs of linear warmup
	Epochs         int // head epochs
	Batch          int
	LabelSmoothing float64
	Patience       int

	// Backbone training (fine-tuning).
	Trainable      string // regex over initializer or node names
	UnfreezeLast   int
	FinetuneEpochs int
	BackboneLRMult float64

	// BN is "frozen" (default: running statistics, the inference formula)
	// or "train" (batch statistics and running-statistic updates for the
	// BatchNormalization layers that fine-tune).
	BN string
	// Augment draws a random resized crop and horizontal flip of every
	// training image each epoch (the feature cache cannot apply then).
	Augment bool

	CacheDir string // persist backbone features here
	DryRun   bool
	Log      string // metrics file, .csv or .jsonl

	// Progress receives progress lines (nil: none). ProgressFile, when
	// set, is used instead so a terminal gets a redrawn bar.
	Progress     io.Writer
	ProgressFile *os.File
	Limits       onnx.Limits
}

// AdaptResult is the summary `graft adapt` prints.
type AdaptResult struct {
	Out       string      `json:"out,omitempty"`
	Classes   []string    `json:"classes"`
	Cut       string      `json:"cut"`
	Head      string      `json:"head"`
	Images    ImageCounts `json:"images"`
	Skipped   []string    `json:"skipped,omitempty"`
	Frozen    int64       `json:"frozen_params"`
	Trainable int64       `json:"trainable_params"`
	// TrainableLayers and FrozenLayers list backbone layers (dry run).
	TrainableLayers []surgery.Layer `json:"trainable_layers,omitempty"`
	FrozenLayers    []surgery.Layer `json:"frozen_layers,omitempty"`
	Train           *EvalResult     `json:"train,omitempty"`
	Val             *EvalResult     `json:"val,omitempty"`
	Test            *EvalResult     `json:"test,omitempty"`
	History         []EpochMetrics  `json:"history,omitempty"`
	Stopped         string          `json:"stopped,omitempty"`
	FeatureSeconds  float64         `json:"feature_seconds"`
	TrainSeconds    float64         `json:"train_seconds"`
	Cache           CacheStats      `json:"cache"`
	// ExportMaxDiff is the largest difference between the re-imported
	// file's outputs and the in-memory model's, relative to the outputs'
	// largest magnitude.
	ExportMaxDiff float64 `json:"export_max_rel_diff"`
	DryRun        bool    `json:"dry_run,omitempty"`
}

// ImageCounts counts images per split.
type ImageCounts struct {
	Train int `json:"train"`
	Val   int `json:"val"`
	Test  int `json:"test"`
}

func (c *AdaptConfig) defaults() {
	if c.Cut == "" {
		c.Cut = "auto"
	}
	if c.Head == "" {
		c.Head = "linear"
	}
	if c.Optimizer == "" {
		c.Optimizer = DefaultOptimizer
	}
	if c.LR == 0 {
		c.LR = DefaultLR
	}
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if c.Epochs == 0 {
		c.Epochs = DefaultEpochs
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.BackboneLRMult == 0 {
		c.BackboneLRMult = DefaultBackboneLRMult
	}
	if c.BN == "" {
		c.BN = "frozen"
	}
	if c.FinetuneEpochs > 0 && c.Trainable == "" && c.UnfreezeLast == 0 {
		c.UnfreezeLast = DefaultUnfreezeLast
	}
}

// ParseHead reads "linear" or "mlp:256[,128]".
func ParseHead(s string, classes int, dropout float64, seed int64) (surgery.HeadSpec, error) {
	spec := surgery.HeadSpec{Classes: classes, Seed: seed, Dropout: float32(dropout)}
	switch {
	case s == "linear":
		if dropout != 0 {
			return spec, fmt.Errorf("--dropout applies to an mlp head (--head mlp:256)")
		}
	case strings.HasPrefix(s, "mlp:"):
		for _, p := range strings.Split(strings.TrimPrefix(s, "mlp:"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 {
				return spec, fmt.Errorf("--head %s: hidden sizes must be positive numbers, like mlp:256,128", s)
			}
			spec.Hidden = append(spec.Hidden, n)
		}
	default:
		return spec, fmt.Errorf("--head %q: use linear or mlp:SIZE[,SIZE...]", s)
	}
	return spec, spec.Validate()
}

// Adapt runs transfer learning: it cuts the model's classifier off,
// attaches a new head for the data's classes, trains it (and the selected
// backbone layers), evaluates, and writes the adapted model.
func Adapt(cfg AdaptConfig) (*AdaptResult, error) {
	cfg.defaults()
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	if cfg.Out != "" && !cfg.DryRun {
		if err := checkAdaptOut(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Epochs < 0 || cfg.FinetuneEpochs < 0 {
		return nil, fmt.Errorf("--epochs and --finetune-epochs must not be negative")
	}
	switch {
	case cfg.BN != "frozen" && cfg.BN != "train":
		return nil, fmt.Errorf("--bn %q: use frozen or train", cfg.BN)
	case cfg.BN == "train" && cfg.FinetuneEpochs == 0:
		return nil, fmt.Errorf("--bn train applies to fine-tuning; give --finetune-epochs N")
	case cfg.BN == "train" && cfg.Batch == 1:
		return nil, fmt.Errorf("--bn train needs a batch size of at least 2: batch statistics of one image normalize it away")
	}
	if cfg.LabelSmoothing < 0 || cfg.LabelSmoothing >= 1 {
		return nil, fmt.Errorf("--label-smoothing %g must be in [0, 1)", cfg.LabelSmoothing)
	}
	src, input, prep, err := openImageModel(cfg.Model, cfg.Limits, dataset.Overrides{Resize: cfg.Resize, Mean: cfg.Mean, Std: cfg.Std})
	if err != nil {
		return nil, err
	}
	ds, err := dataset.LoadDataset(dataset.DataConfig{Dir: cfg.Data, ValSplit: cfg.ValSplit, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	if cfg.Strict && len(ds.Skipped) > 0 {
		return nil, fmt.Errorf("--strict: %v", ds.Skipped[0].Err)
	}
	res := &AdaptResult{Out: cfg.Out, Classes: ds.Classes, Head: cfg.Head, DryRun: cfg.DryRun}
	for _, s := range ds.Skipped {
		res.Skipped = append(res.Skipped, s.Err.Error())
	}
	spec, err := ParseHead(cfg.Head, len(ds.Classes), cfg.Dropout, cfg.Seed)
	if err != nil {
		return nil, err
	}
	cut, err := surgery.ResolveCut(src, cfg.Cut)
	if err != nil {
		return nil, err
	}
	res.Cut = cut
	// The images' size binds symbolic input dimensions (x: [N, 3, H, W]).
	probe, err := graph.Build(src, graph.Options{Freeze: true, Outputs: []string{cut}, Shapes: map[string][]int{input: prep.Shape(1)}})
	if err != nil {
		return nil, err
	}
	cutShape, _ := probe.Shape(cut)

	adapted := surgery.CloneProto(src.Proto)
	if err := surgery.CutAt(adapted, cut); err != nil {
		return nil, err
	}
	head, err := surgery.AttachHead(adapted, cut, cutShape, spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Model, err)
	}
	layers := surgery.Layers(adapted, cut)
	backbone, err := surgery.SelectTrainable(layers, cfg.Trainable, cfg.UnfreezeLast)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		if slices.ContainsFunc(l.Params, func(p string) bool { return slices.Contains(backbone, p) }) {
			res.TrainableLayers = append(res.TrainableLayers, l)
		} else {
			res.FrozenLayers = append(res.FrozenLayers, l)
		}
	}
	sizes := paramSizes(adapted)
	for name, n := range sizes {
		if slices.Contains(head.Params, name) || slices.Contains(backbone, name) {
			res.Trainable += n
		} else {
			res.Frozen += n
		}
	}
	if len(backbone) > 0 && cfg.FinetuneEpochs == 0 {
		return nil, fmt.Errorf("--trainable/--unfreeze-last select %d backbone weights but --finetune-epochs is 0; give --finetune-epochs N to train them after the head", len(backbone))
	}
	res.Images = ImageCounts{Train: len(ds.Train), Val: len(ds.Val), Test: len(ds.Test)}
	if cfg.DryRun {
		return res, nil
	}

	adaptedModel := &onnx.Model{Proto: adapted, Path: cfg.Model}
	var logHook *MetricsLog
	if cfg.Log != "" {
		if logHook, err = NewMetricsLog(cfg.Log, "head"); err != nil {
			return nil, err
		}
		defer logHook.Close()
	}
	weights := map[string]*onnx.Tensor{}
	var final *Net
	var finalEx map[string]*Examples
	var prefix *Extractor // computes final's input from images, if it is not the images
	var images map[string]*Examples
	var t1 time.Time
	if !cfg.Augment {
		// Stage 1: the head, on backbone features computed once per image.
		// Fine-tuning needs the images themselves later: without a feature
		// cache, decode them once and take the features from them.
		if cfg.FinetuneEpochs > 0 && cfg.CacheDir == "" {
			if images, err = loadImages(cfg, ds, prep, res, logf); err != nil {
				return nil, err
			}
		}
		feats, err := headFeatures(cfg, src, adaptedModel, input, cut, head, ds, prep, images, res, logf)
		if err != nil {
			return nil, err
		}
		headProto, err := surgery.SubModel(adapted, head.Features, []int{1, head.FeatureDim}, head.Logits)
		if err != nil {
			return nil, err
		}
		net, err := NewNet(&onnx.Model{Proto: headProto, Path: cfg.Model + " (head)"}, head.Features, head.Logits, head.Params, cfg.Seed)
		if err != nil {
			return nil, err
		}
		t1 = time.Now()
		fit, err := runStage(net, cfg, cfg.Epochs, nil, feats["train"], feats["val"], len(ds.Classes), "head", logHook)
		if err != nil {
			return nil, err
		}
		res.History, res.Stopped = fit.History, fit.Stopped
		for _, p := range head.Params {
			weights[p] = net.Weights[p]
		}
		final, finalEx = net, feats
		prefix = &Extractor{Src: adaptedModel, Input: input, Features: head.Features, Batch: 32, Dim: head.FeatureDim, shape: []int{head.FeatureDim}}
	} else {
		// Augmented images change every epoch: no feature cache, the
		// head trains through the whole network.
		t0 := time.Now()
		if images, err = loadImages(cfg, ds, prep, res, logf); err != nil {
			return nil, err
		}
		res.FeatureSeconds = time.Since(t0).Seconds()
		t1 = time.Now()
		fit, pre, ex, err := imageStage(cfg, adaptedModel, input, head.Logits, head.Params, nil, cfg.Epochs, nil, images, logHook, len(ds.Classes), "head", logf)
		if err != nil {
			return nil, err
		}
		res.History, res.Stopped = fit.History, fit.Stopped
		for _, p := range head.Params {
			weights[p] = fit.Net.Weights[p]
		}
		final, finalEx, prefix = fit.Net, ex, pre
	}

	// Stage 2: fine-tune the selected backbone layers with the head.
	if cfg.FinetuneEpochs > 0 {
		if images == nil {
			if images, err = loadImages(cfg, ds, prep, nil, logf); err != nil {
				return nil, err
			}
		}
		trainable := append(slices.Clone(head.Params), backbone...)
		scale := make([]float64, len(trainable))
		for i := range scale {
			scale[i] = 1
			if i >= len(head.Params) {
				scale[i] = cfg.BackboneLRMult
			}
		}
		ft, pre, ex, err := imageStage(cfg, adaptedModel, input, head.Logits, trainable, weights, cfg.FinetuneEpochs, scale, images, logHook, len(ds.Classes), "fine-tune", logf)
		if err != nil {
			return nil, err
		}
		res.History = append(res.History, ft.History...)
		if ft.Stopped != "" {
			res.Stopped = ft.Stopped
		}
		for name, t := range ft.Net.Weights {
			weights[name] = t // trained weights and updated BN statistics
		}
		final, finalEx, prefix = ft.Net, ex, pre
	}
	res.TrainSeconds = time.Since(t1).Seconds()

	for name, ex := range finalEx {
		if ex == nil || ex.Len() == 0 {
			continue
		}
		if ex.Clean != nil { // score the images, not their last augmentation
			ex = &Examples{X: ex.Clean, Shape: ex.Shape, Labels: ex.Labels}
		}
		ev, err := Evaluate(final, ex, cfg.Batch, len(ds.Classes))
		if err != nil {
			return nil, err
		}
		for k := range ev.PerClass {
			ev.PerClass[k].Label = ds.Classes[k]
		}
		switch name {
		case "train":
			res.Train = ev
		case "val":
			res.Val = ev
		case "test":
			res.Test = ev
		}
	}
	if cfg.Out == "" {
		return res, nil
	}
	if _, err := surgery.UpdateWeights(adapted, weights); err != nil {
		return nil, err
	}
	if err := graph.SetOutputsFor(adapted, cfg.Model, map[string][]int{input: prep.Shape(1)}); err != nil {
		return nil, err
	}
	if err := writeMetadata(adapted, src, cfg, res, prep, spec); err != nil {
		return nil, err
	}
	// Write to a temporary name, check the file reproduces the in-memory
	// model, then move it into place.
	tmp := cfg.Out + ".graft-tmp"
	if err := onnx.WriteFile(tmp, adapted, true); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	diff, err := verifyExport(tmp, input, final, prefix, ds, prep, cfg)
	if err != nil {
		return nil, fmt.Errorf("checking the written model: %w", err)
	}
	res.ExportMaxDiff = diff
	if diff > 1e-4 {
		return nil, fmt.Errorf("the written model's outputs differ from the trained model's by %.3g of their magnitude (limit 1e-4); not writing %s", diff, cfg.Out)
	}
	if err := os.Rename(tmp, cfg.Out); err != nil {
		return nil, err
	}
	logf("wrote %s (re-imported outputs match within %.2g of their magnitude)", cfg.Out, diff)
	return res, nil
}

func countAll(m map[string]*Examples) int {
	n := 0
	for _, e := range m {
		if e != nil {
			n += e.Len()
		}
	}
	return n
}

func paramSizes(mp *onnx.ModelProto) map[string]int64 {
	out := map[string]int64{}
	for _, t := range mp.Graph.Initializer {
		if t.DataType != 1 && t.DataType != 10 && t.DataType != 11 {
			continue
		}
		n := int64(1)
		for _, d := range t.Dims {
			n *= d
		}
		out[t.Name] = n
	}
	return out
}

// runStage trains net for epochs with the configured optimizer.
func runStage(net *Net, cfg AdaptConfig, epochs int, lrScale []float64, train, val *Examples, classes int, label string, log *MetricsLog) (*Fit, error) {
	opt, err := NewOptimizer(cfg.Optimizer, cfg.WeightDecay, cfg.Momentum, cfg.Nesterov)
	if err != nil {
		return nil, err
	}
	steps := (train.Len() + cfg.Batch - 1) / cfg.Batch
	sched, err := NewSchedule(cfg.Schedule, cfg.LR, steps*epochs, steps*cfg.Warmup, 0, 0)
	if err != nil {
		return nil, err
	}
	hooks := []Hook{&EarlyStop{Patience: cfg.Patience}}
	if cfg.ProgressFile != nil {
		hooks = append(hooks, NewProgress(cfg.ProgressFile, label))
	} else if cfg.Progress != nil {
		hooks = append(hooks, &Progress{W: cfg.Progress, Label: label})
	}
	if log != nil {
		log.SetStage(label)
		hooks = append(hooks, log)
	}
	return Run(net, Config{Epochs: epochs, Batch: cfg.Batch, Optimizer: opt, Schedule: sched, LRScale: lrScale,
		LabelSmoothing: cfg.LabelSmoothing, Seed: cfg.Seed, Classes: classes, Hooks: hooks}, train, val)
}

// headFeatures runs every image through the backbone once (or reads its
// features from the cache) for head training. When images holds the
// preprocessed images already, it computes the features from them.
func headFeatures(cfg AdaptConfig, src, adapted *onnx.Model, input, cut string, head *surgery.Head, ds *dataset.Dataset, prep *dataset.Preprocess, images map[string]*Examples, res *AdaptResult, logf func(string, ...any)) (map[string]*Examples, error) {
	t0 := time.Now()
	ext := &Extractor{Src: adapted, Input: input, Features: head.Features, Batch: 32, Dim: head.FeatureDim}
	var cache *FeatureCache
	if cfg.CacheDir != "" {
		var err error
		if cache, err = OpenFeatureCache(cfg.CacheDir, FileHashBytes(src.Raw), cut, prep); err != nil {
			return nil, err
		}
	}
	feats := map[string]*Examples{}
	for name, im := range images {
		f, err := ext.Run(im.X, im.Len(), im.Shape)
		if err != nil {
			return nil, err
		}
		feats[name] = &Examples{X: f, Shape: []int{head.FeatureDim}, Labels: im.Labels}
		res.Cache.Misses += im.Len()
	}
	for _, split := range splits(ds) {
		if images != nil {
			break
		}
		ex, sk, err := Features(ext, split.samples, prep, cache, cfg.Strict, &res.Cache)
		if err != nil {
			return nil, err
		}
		for _, s := range sk {
			res.Skipped = append(res.Skipped, s.Err.Error())
			logf("skipped %s: %v", s.Path, s.Err)
		}
		feats[split.name] = ex
	}
	res.FeatureSeconds = time.Since(t0).Seconds()
	if feats["train"] == nil || feats["train"].Len() == 0 {
		return nil, fmt.Errorf("%s: no training image could be read", cfg.Data)
	}
	logf("features: %d images through the backbone in %.2fs (cache: %d hits, %d misses)", countAll(feats), res.FeatureSeconds, res.Cache.Hits, res.Cache.Misses)
	return feats, nil
}

type split struct {
	name    string
	samples []dataset.Sample
}

func splits(ds *dataset.Dataset) []split {
	var out []split
	for _, s := range []split{{"train", ds.Train}, {"val", ds.Val}, {"test", ds.Test}} {
		if len(s.samples) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// loadImages preprocesses every image for training through the whole
// network. With cfg.Augment the training split re-draws a random resized
// crop and flip of each image every epoch, seeded by cfg.Seed.
func loadImages(cfg AdaptConfig, ds *dataset.Dataset, prep *dataset.Preprocess, res *AdaptResult, logf func(string, ...any)) (map[string]*Examples, error) {
	images := map[string]*Examples{}
	for _, sp := range splits(ds) {
		data, kept, skipped, err := dataset.LoadTensors(sp.samples, prep, 0, cfg.Strict)
		if err != nil {
			return nil, err
		}
		for _, s := range skipped {
			if res != nil {
				res.Skipped = append(res.Skipped, s.Err.Error())
			}
			logf("skipped %s: %v", s.Path, s.Err)
		}
		ex := &Examples{X: data, Shape: prep.Shape(1)[1:]}
		for _, s := range kept {
			ex.Labels = append(ex.Labels, s.Label)
		}
		if sp.name == "train" && cfg.Augment {
			ex.Clean = slices.Clone(data)
			ex.Refresh = augmenter(ex, kept, prep, cfg.Seed)
		}
		images[sp.name] = ex
	}
	if images["train"] == nil || images["train"].Len() == 0 {
		return nil, fmt.Errorf("%s: no training image could be read", cfg.Data)
	}
	return images, nil
}

// augmenter returns an Examples.Refresh that writes a fresh augmentation
// of every training image into ex.X (see dataset.Preprocess.AugmentSamples).
func augmenter(ex *Examples, samples []dataset.Sample, prep *dataset.Preprocess, seed int64) func(epoch int) error {
	return func(epoch int) error {
		return prep.AugmentSamples(samples, seed, epoch, ex.X)
	}
}

// imageStage trains the given weights of the adapted model on images,
// starting from the weights in start (others as in the model).
//
// Without augmentation the frozen layers before the first trainable one
// compute the same values for an image every epoch: when they end in one
// tensor, they run once per image and training starts from that tensor.
// The returned Extractor then maps images to the net's input (nil when
// the net takes images), and the returned examples are what the net
// reads.
func imageStage(cfg AdaptConfig, adapted *onnx.Model, input, logits string, trainable []string, start map[string]*onnx.Tensor, epochs int, lrScale []float64, images map[string]*Examples, log *MetricsLog, classes int, label string, logf func(string, ...any)) (*Fit, *Extractor, map[string]*Examples, error) {
	src, netInput, ex := adapted, input, images
	var prefix *Extractor
	if !cfg.Augment {
		if p, sub, err := frozenPrefix(adapted, input, logits, trainable, cfg.Batch); err != nil {
			logf("%s: frozen layers run every step: %v", label, err)
		} else if p != nil {
			t0 := time.Now()
			ex = map[string]*Examples{}
			for name, e := range images {
				f, err := p.Run(e.X, e.Len(), e.Shape)
				if err != nil {
					return nil, nil, nil, err
				}
				ex[name] = &Examples{X: f, Shape: p.shape, Labels: e.Labels}
			}
			logf("%s: frozen layers up to %q ran once per image (%.2fs)", label, p.Features, time.Since(t0).Seconds())
			src, netInput, prefix = sub, p.Features, p
		}
	}
	net, err := NewNet(src, netInput, logits, trainable, cfg.Seed)
	if err != nil {
		return nil, nil, nil, err
	}
	net.BNTrain = cfg.BN == "train"
	for name, t := range start {
		if w, ok := net.Weights[name]; ok {
			copy(w.F, t.F)
		}
	}
	fit, err := runStage(net, cfg, epochs, lrScale, ex["train"], ex["val"], classes, label, log)
	return fit, prefix, ex, err
}

// frozenPrefix splits the model where its frozen layers end, when they
// end in one tensor: an Extractor computing that tensor from images, and
// the model from that tensor to the logits. It returns nil when the
// trainable part reads the images directly.
func frozenPrefix(adapted *onnx.Model, input, logits string, trainable []string, batch int) (*Extractor, *onnx.Model, error) {
	front := surgery.Frontier(adapted.Proto, trainable)
	if len(front) != 1 {
		return nil, nil, fmt.Errorf("the trainable layers read %d tensors of the frozen ones (%s)", len(front), strings.Join(front, ", "))
	}
	if front[0] == input {
		return nil, nil, nil
	}
	probe, err := graph.Build(adapted, graph.Options{Freeze: true, Outputs: []string{front[0]}})
	if err != nil {
		return nil, nil, err
	}
	shape, _ := probe.Shape(front[0])
	if len(shape) == 0 || shape[0] != 1 {
		return nil, nil, fmt.Errorf("tensor %q has shape %v at batch 1", front[0], shape)
	}
	sub, err := surgery.SubModel(adapted.Proto, front[0], shape, logits)
	if err != nil {
		return nil, nil, err
	}
	ext := &Extractor{Src: adapted, Input: input, Features: front[0], Batch: max(batch, 16), Dim: onnx.NumElems(shape[1:]), shape: shape[1:]}
	return ext, &onnx.Model{Proto: sub, Path: adapted.Path}, nil
}

// verifyExport re-imports the written model and compares its outputs with
// the in-memory model's on up to 8 test (or train) images. It returns the
// largest absolute difference relative to the largest output magnitude.
func verifyExport(path, input string, net *Net, prefix *Extractor, ds *dataset.Dataset, prep *dataset.Preprocess, cfg AdaptConfig) (float64, error) {
	samples := ds.Test
	if len(samples) == 0 {
		samples = ds.Train
	}
	samples = samples[:min(8, len(samples))]
	data, kept, _, err := dataset.LoadTensors(samples, prep, 0, false)
	if err != nil {
		return 0, err
	}
	if len(kept) == 0 {
		return 0, fmt.Errorf("no image to check with")
	}
	m, err := onnx.ReadFile(path, cfg.Limits)
	if err != nil {
		return 0, err
	}
	gm, err := graph.Build(m, graph.Options{Shapes: map[string][]int{input: prep.Shape(len(kept))}, Freeze: true})
	if err != nil {
		return 0, err
	}
	out, err := gm.Run(map[string]*onnx.Tensor{input: onnx.NewFloat(prep.Shape(len(kept)), data)})
	if err != nil {
		return 0, err
	}
	got := out[gm.Outputs[0].Name]
	// the in-memory model's logits on the same images
	ex := &Examples{X: data, Shape: prep.Shape(1)[1:], Labels: make([]int, len(kept))}
	if prefix != nil { // the in-memory frozen layers first
		f, err := prefix.Run(data, len(kept), ex.Shape)
		if err != nil {
			return 0, err
		}
		ex = &Examples{X: f, Shape: prefix.shape, Labels: ex.Labels}
	}
	want, err := net.Predict(ex, cfg.Batch)
	if err != nil {
		return 0, err
	}
	if got.Len() != want.Len() {
		return 0, fmt.Errorf("written model gives shape %v, in-memory %v", got.Shape, want.Shape)
	}
	var maxDiff, maxMag float64
	for i := range want.F {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got.F[i]-want.F[i])))
		maxMag = math.Max(maxMag, math.Abs(float64(want.F[i])))
	}
	return maxDiff / math.Max(maxMag, 1e-12), nil
}

func writeMetadata(mp *onnx.ModelProto, src *onnx.Model, cfg AdaptConfig, res *AdaptResult, prep *dataset.Preprocess, spec surgery.HeadSpec) error {
	labels, _ := json.Marshal(res.Classes)
	surgery.SetMetadata(mp, onnx.KeyLabels, string(labels))
	pm, err := prep.Metadata()
	if err != nil {
		return err
	}
	pj, _ := json.Marshal(pm)
	surgery.SetMetadata(mp, onnx.KeyPreprocessing, string(pj))
	training := map[string]any{
		"optimizer": cfg.Optimizer, "lr": cfg.LR, "epochs": cfg.Epochs, "batch": cfg.Batch, "schedule": cfg.Schedule,
		"seed": cfg.Seed, "images": res.Images, "finetune_epochs": cfg.FinetuneEpochs,
	}
	if cfg.FinetuneEpochs > 0 {
		training["backbone_lr_mult"] = cfg.BackboneLRMult
		training["trainable_layers"] = len(res.TrainableLayers)
	}
	if res.Val != nil {
		training["val_accuracy"] = res.Val.Accuracy
	}
	if res.Test != nil {
		training["test_accuracy"] = res.Test.Accuracy
	}
	info := onnx.GraftInfo{Version: onnx.GraftVersion(), BaseSHA256: FileHashBytes(src.Raw), Cut: res.Cut, FrozenParams: res.Frozen, TrainableParams: res.Trainable}
	info.Head, _ = json.Marshal(spec)
	info.Training, _ = json.Marshal(training)
	gj, _ := json.Marshal(info)
	surgery.SetMetadata(mp, onnx.KeyGraft, string(gj))
	return nil
}

// checkAdaptOut refuses a missing folder, the input model, and an existing
// file unless Force (or OverwriteOwn and the file is graft's own).
func checkAdaptOut(cfg AdaptConfig) error {
	force := cfg.Force
	if !force && cfg.OverwriteOwn {
		if m, err := onnx.ReadFile(cfg.Out, cfg.Limits); err == nil {
			if g, err := m.Graft(); err == nil && g != nil {
				force = true
			}
		} else if _, statErr := os.Stat(cfg.Out); statErr == nil {
			return fmt.Errorf("%s: exists and is not a model graft wrote; not overwriting it (use --out to choose another file, or --force)", cfg.Out)
		}
	}
	if abs, err := filepath.Abs(cfg.Out); err == nil {
		if in, err := filepath.Abs(cfg.Model); err == nil && abs == in && !cfg.Force {
			return fmt.Errorf("%s: is the input model; refusing to overwrite it (use --force)", cfg.Out)
		}
	}
	return onnx.CheckOutPath(cfg.Model, cfg.Out, force)
}
