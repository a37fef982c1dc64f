package train

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

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
	// Shapes binds symbolic input dimensions by input name (--input-shape):
	// a model whose image input leaves height and width free
	// (x: [N, 3, H, W]) runs at the size given here; see
	// dataset.Overrides.Shapes. The batch given is not used.
	Shapes map[string][]int
	Batch  int  // images per forward pass; default DefaultInferBatch
	Strict bool // an image that does not decode is an error instead of being skipped
	// Labels name the model's outputs, in order, for a model without
	// labels or to rename its own; nil means the model's.
	Labels []string
	Limits onnx.Limits
	// MaxPixels bounds each image's declared width x height (0:
	// dataset.DefaultMaxPixels); larger images are refused from their
	// header, before decoding.
	MaxPixels int64
	// Reporter receives notes on what is assumed and progress (nil:
	// none): one phase, PhaseEval or PhasePredict, counting images
	// decoded and scored.
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
	// features: the model is a feature extractor graft cut (no labels,
	// no head), whose outputs are no classes
	features bool
	batch    int
	models   map[int]*graph.Model
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
	if err := graph.CheckShapes(src, ov.Shapes); err != nil {
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

// preprocessNote says what is assumed of a model that records no
// preprocessing, unless the overrides give mean and std (typ names the
// config type whose fields those are); "" when nothing is assumed.
func preprocessNote(src *onnx.Model, prep *dataset.Preprocess, ov dataset.Overrides, typ string) string {
	if meta, err := src.Preprocessing(); err != nil || meta != nil || ov.Mean != nil && ov.Std != nil {
		return ""
	}
	what := "ImageNet's mean and std"
	if prep.Channels == 1 {
		what = "mean 0 and std 1 (one channel)"
	}
	return fmt.Sprintf("%s records no preprocessing: assuming %s (%s); set %s.Mean and %s.Std if it was trained otherwise",
		src.Path, what, prep, typ, typ)
}

func openClassifier(cfg InferConfig) (*classifier, error) {
	ov := dataset.Overrides{Resize: cfg.Resize, Mean: cfg.Mean, Std: cfg.Std, Shapes: cfg.Shapes}
	src, input, prep, err := openImageModel(cfg.Model, cfg.Limits, ov, cfg.MaxPixels)
	if err != nil {
		return nil, err
	}
	if note := preprocessNote(src, prep, ov, "InferConfig"); note != "" {
		orNop(cfg.Reporter).Note(note)
	}
	labels, err := src.Labels()
	if err != nil {
		return nil, err
	}
	if cfg.Labels != nil {
		labels = cfg.Labels
	}
	g := src.Proto.Graph
	c := &classifier{src: src, input: input, output: g.Output[0].Name, prep: prep, labels: labels, batch: cfg.Batch, models: map[int]*graph.Model{}}
	if c.batch <= 0 {
		c.batch = DefaultInferBatch
	}
	for _, n := range g.Node {
		if len(n.Output) > 0 && n.Output[0] == c.output && n.OpType == "Softmax" {
			c.probs = true
		}
	}
	if info, err := src.Graft(); err == nil && info != nil && info.Cut != "" && len(info.Head) == 0 && cfg.Labels == nil {
		c.features = true
	}
	return c, nil
}

// checkClasses checks the model's outputs can be the classes: as many as
// its labels, or, without labels, as many as the data's classes.
func (c *classifier) checkClasses(outputs int, dataClasses []string, dir string) error {
	if c.features {
		return fmt.Errorf("%s is a feature extractor (graft cut it at %q and gave it no head): its %d outputs are features, not classes; adapt it, or give InferConfig.Labels if they are classes", c.src.Path, c.output, outputs)
	}
	if c.labels != nil {
		if len(c.labels) != outputs {
			return onnx.OptionErrorf("InferConfig.Labels", "%d labels for the %d outputs of %s", len(c.labels), outputs, c.src.Path)
		}
		return nil
	}
	if dataClasses != nil && outputs != len(dataClasses) {
		return fmt.Errorf("%s records no labels and outputs %d classes, but %s has %d class folders (%s); give InferConfig.Labels, the model's class names in output order, and name the folders after them",
			c.src.Path, outputs, dir, len(dataClasses), strings.Join(dataClasses, ", "))
	}
	return nil
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
		if len(t.Shape) != 2 && !c.features {
			return nil, fmt.Errorf("%s: output %q has shape %v; a classifier outputs [N, classes]", c.src.Path, c.output, t.Shape)
		}
		if out == nil {
			out = onnx.NewFloat(append([]int{n}, t.Shape[1:]...), nil)
		}
		copy(out.F[start*(t.Len()/b):], t.F)
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
	// The model's outputs, from its declared shape when it has one, so
	// that a mismatch is reported before any image is read.
	declared := declaredClasses(c.src)
	if declared > 0 {
		if err := c.checkClasses(declared, nil, dir); err != nil {
			return nil, nil, err
		}
	}
	samples, err := dataset.LoadSplitFolder(dir, c.labels)
	if err != nil {
		return nil, nil, err
	}
	classes := c.labels
	var folders []string
	if classes == nil {
		folders = folderNames(samples)
		classes = folders
	}
	if declared > 0 {
		if err := c.checkClasses(declared, folders, dir); err != nil {
			return nil, nil, err
		}
	}
	out, kept, skipped, err := c.scoreSamples(ctx, samples, cfg.Strict, orNop(cfg.Reporter), PhaseEval)
	if err != nil {
		return nil, nil, err
	}
	if len(kept) == 0 {
		return nil, skipped, fmt.Errorf("%s: no image could be read", dir)
	}
	if err := c.checkClasses(out.Shape[1], folders, dir); err != nil {
		return nil, nil, err
	}
	if c.labels == nil {
		notef(orNop(cfg.Reporter), "%s records no labels: taking its %d outputs to be the class folders in sorted order (%s); set InferConfig.Labels if they are not",
			cfg.Model, out.Shape[1], strings.Join(classes, ", "))
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

// declaredClasses is the second dimension of the model's output as
// declared, or 0 when it is not declared.
func declaredClasses(m *onnx.Model) int {
	dims := m.Proto.Graph.Output[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) != 2 {
		return 0
	}
	return int(dims[1].GetDimValue())
}

// folderNames are the class folder names of an evaluation folder, in
// label order.
func folderNames(samples []dataset.Sample) []string {
	var names []string
	for _, s := range samples {
		for len(names) <= s.Label {
			names = append(names, "")
		}
		names[s.Label] = filepath.Base(filepath.Dir(s.Path))
	}
	return names
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

// Prediction is the top-K classes of one image; for a feature extractor,
// the shape of its features instead; for an image that could not be read,
// the error.
type Prediction struct {
	Image    string      `json:"image"`
	Top      []LabelProb `json:"top,omitempty"`
	Features []int       `json:"features,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// PredictImages returns the k most likely classes of each image, in the
// order given; a folder stands for the images under it (recursively, in
// name order). An image that cannot be read gets a Prediction with its
// Error (with InferConfig.Strict, it fails the call). A feature
// extractor's predictions give the feature shape instead of classes. It
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
	paths, err := expandImages(images)
	if err != nil {
		return nil, err
	}
	if n := declaredClasses(c.src); n > 0 && !c.features {
		if err := c.checkClasses(n, nil, ""); err != nil {
			return nil, err
		}
	}
	samples := make([]dataset.Sample, len(paths))
	for i, p := range paths {
		samples[i] = dataset.Sample{Path: p}
	}
	out, _, skipped, err := c.scoreSamples(ctx, samples, cfg.Strict, orNop(cfg.Reporter), PhasePredict)
	if err != nil {
		return nil, err
	}
	failed := map[string]error{}
	for _, s := range skipped {
		failed[s.Path] = s.Err
	}
	if out != nil && !c.features {
		if err := c.checkClasses(out.Shape[1], nil, ""); err != nil {
			return nil, err
		}
	}
	var preds []Prediction
	next := 0
	for _, path := range paths {
		if err, ok := failed[path]; ok {
			preds = append(preds, Prediction{Image: path, Error: err.Error()})
			continue
		}
		i := next
		next++
		if c.features {
			preds = append(preds, Prediction{Image: path, Features: out.Shape[1:]})
			continue
		}
		preds = append(preds, c.top(out, i, path, k))
	}
	return preds, nil
}

// top ranks row i of the scores.
func (c *classifier) top(out *onnx.Tensor, i int, path string, k int) Prediction {
	nc := out.Shape[1]
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
	p := Prediction{Image: path}
	for _, j := range order[:min(k, nc)] {
		lp := LabelProb{Index: j, Prob: probs[j], Label: fmt.Sprint(j)}
		if j < len(c.labels) {
			lp.Label = c.labels[j]
		}
		p.Top = append(p.Top, lp)
	}
	return p
}

// expandImages replaces each folder in paths by the image files under
// it, recursively, in name order; files are kept as given, so that a
// missing one is reported as such.
func expandImages(paths []string) ([]string, error) {
	exts := dataset.ImageExts()
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() {
			out = append(out, p)
			continue
		}
		n := len(out)
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && slices.Contains(exts, strings.ToLower(filepath.Ext(path))) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: no images in this folder (looked for %s)", p, strings.Join(exts, ", "))
		}
	}
	return out, nil
}
