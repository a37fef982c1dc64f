package train

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/graftml/graft/train/dataset"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// InferConfig is what EvalModel and PredictImages share: a model,
// preprocessing overrides and a batch size. Zero fields mean their
// defaults.
type InferConfig struct {
	Model string
	// Preprocessing overrides; zero means the model's metadata (see
	// dataset.PreprocessFor).
	Resize int
	Mean   []float32
	Std    []float32
	Batch  int  // images per forward pass; default 32
	Strict bool // an image that does not decode is an error instead of being skipped
	Limits onnx.Limits
	// MaxPixels bounds each image's declared width x height (0:
	// dataset.DefaultMaxPixels); larger images are refused from their
	// header, before decoding.
	MaxPixels int64
	// Reporter receives progress (nil: none): one phase, PhaseEval or
	// PhasePredict, counting images decoded and scored.
	Reporter Reporter
}

// classifier is a model ready to classify preprocessed images.
type classifier struct {
	src    *onnx.Model
	input  string
	output string
	prep   *dataset.Preprocess
	labels []string
	probs  bool // the output already holds probabilities
	batch  int
	models map[int]*graph.Model
}

// openImageModel reads a model with one image input, checks graft can
// build it, and works out its preprocessing.
func openImageModel(path string, lim onnx.Limits, ov dataset.Overrides, maxPixels int64) (*onnx.Model, string, *dataset.Preprocess, error) {
	src, err := onnx.ReadFile(path, lim)
	if err != nil {
		return nil, "", nil, err
	}
	if err := graph.CheckOps(src); err != nil {
		return nil, "", nil, err
	}
	ins := src.Inputs()
	if len(ins) != 1 {
		return nil, "", nil, fmt.Errorf("%s: graft works with models of one image input; this one has %d inputs", path, len(ins))
	}
	prep, err := dataset.PreprocessFor(src, ov)
	if err != nil {
		return nil, "", nil, err
	}
	prep.MaxPixels = maxPixels
	return src, ins[0].Name, prep, nil
}

func openClassifier(cfg InferConfig) (*classifier, error) {
	src, input, prep, err := openImageModel(cfg.Model, cfg.Limits, dataset.Overrides{Resize: cfg.Resize, Mean: cfg.Mean, Std: cfg.Std}, cfg.MaxPixels)
	if err != nil {
		return nil, err
	}
	labels, err := src.Labels()
	if err != nil {
		return nil, err
	}
	g := src.Proto.Graph
	c := &classifier{src: src, input: input, output: g.Output[0].Name, prep: prep, labels: labels, batch: cfg.Batch, models: map[int]*graph.Model{}}
	if c.batch <= 0 {
		c.batch = 32
	}
	for _, n := range g.Node {
		if len(n.Output) > 0 && n.Output[0] == c.output && n.OpType == "Softmax" {
			c.probs = true
		}
	}
	return c, nil
}

// scores runs the model over n preprocessed images, in batches, checking
// ctx between them.
func (c *classifier) scores(ctx context.Context, data []float32, n int) (*onnx.Tensor, error) {
	size := c.prep.Size()
	var out *onnx.Tensor
	for start := 0; start < n; start += c.batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: image %d of %d: %w", c.src.Path, start+1, n, err)
		}
		b := min(c.batch, n-start)
		m, ok := c.models[b]
		if !ok {
			var err error
			m, err = graph.Build(c.src, graph.Options{Shapes: map[string][]int{c.input: c.prep.Shape(b)}, Outputs: []string{c.output}, Freeze: true})
			if err != nil {
				return nil, err
			}
			c.models[b] = m
		}
		res, err := m.Run(map[string]*onnx.Tensor{c.input: onnx.NewFloat(c.prep.Shape(b), data[start*size:(start+b)*size])})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.src.Path, err)
		}
		t := res[c.output]
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("%s: output %q has shape %v; a classifier outputs [N, classes]", c.src.Path, c.output, t.Shape)
		}
		if out == nil {
			out = onnx.NewFloat([]int{n, t.Shape[1]}, nil)
		}
		copy(out.F[start*t.Shape[1]:], t.F)
	}
	return out, nil
}

// EvalModel scores a model on a labelled image folder (DIR/<class>/*, or
// a folder with a test/ split), with the preprocessing the model records.
// It checks ctx between batches.
func EvalModel(ctx context.Context, cfg InferConfig, dir string) (*EvalResult, []dataset.Skipped, error) {
	c, err := openClassifier(cfg)
	if err != nil {
		return nil, nil, err
	}
	samples, err := dataset.LoadSplitFolder(dir, c.labels)
	if err != nil {
		return nil, nil, err
	}
	classes := c.labels
	if classes == nil {
		classes = folderClasses(samples)
	}
	out, kept, skipped, err := c.scoreSamples(ctx, samples, cfg.Strict, orNop(cfg.Reporter), PhaseEval)
	if err != nil {
		return nil, nil, err
	}
	if len(kept) == 0 {
		return nil, skipped, fmt.Errorf("%s: no image could be read", dir)
	}
	if out.Shape[1] < len(classes) {
		return nil, nil, fmt.Errorf("%s: the model outputs %d classes, the data has %d", cfg.Model, out.Shape[1], len(classes))
	}
	labels := make([]int, len(kept))
	paths := make([]string, len(kept))
	for i, s := range kept {
		labels[i], paths[i] = s.Label, s.Path
	}
	if c.probs {
		out = logOf(out)
	}
	res := Score(out, labels, classes, out.Shape[1])
	res.Images = ImagePredictions(out, labels, paths, classes)
	return res, skipped, nil
}

func folderClasses(samples []dataset.Sample) []string {
	n := 0
	for _, s := range samples {
		n = max(n, s.Label+1)
	}
	return make([]string, n)
}

// logOf turns probabilities into log-probabilities, so Score's softmax
// gives them back.
func logOf(t *onnx.Tensor) *onnx.Tensor {
	out := onnx.NewFloat(t.Shape, nil)
	for i, v := range t.F {
		out.F[i] = float32(math.Log(math.Max(float64(v), 1e-30)))
	}
	return out
}

// LabelProb is one ranked class.
type LabelProb struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Prob  float64 `json:"prob"`
}

// Prediction is the top-K classes of one image.
type Prediction struct {
	Image string      `json:"image"`
	Top   []LabelProb `json:"top"`
}

// PredictImages returns the k most likely classes of each image. It
// checks ctx between batches.
func PredictImages(ctx context.Context, cfg InferConfig, images []string, k int) ([]Prediction, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("no images given")
	}
	if k < 1 {
		return nil, onnx.OptionErrorf("PredictImages.k", "%d: must be at least 1", k)
	}
	c, err := openClassifier(cfg)
	if err != nil {
		return nil, err
	}
	samples := make([]dataset.Sample, len(images))
	for i, p := range images {
		samples[i] = dataset.Sample{Path: p}
	}
	out, kept, _, err := c.scoreSamples(ctx, samples, true, orNop(cfg.Reporter), PhasePredict)
	if err != nil {
		return nil, err
	}
	nc := out.Shape[1]
	var preds []Prediction
	for i, s := range kept {
		row := out.F[i*nc : (i+1)*nc]
		probs := make([]float64, nc)
		if c.probs {
			for j, v := range row {
				probs[j] = float64(v)
			}
		} else {
			lse := graph.LogSumExp(row)
			for j, v := range row {
				probs[j] = math.Exp(float64(v) - lse)
			}
		}
		order := make([]int, nc)
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
		p := Prediction{Image: s.Path}
		for _, j := range order[:min(k, nc)] {
			lp := LabelProb{Index: j, Prob: probs[j], Label: fmt.Sprint(j)}
			if j < len(c.labels) {
				lp.Label = c.labels[j]
			}
			p.Top = append(p.Top, lp)
		}
		preds = append(preds, p)
	}
	return preds, nil
}
