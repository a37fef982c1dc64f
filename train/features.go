package train

import (
	"context"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train/dataset"
)

// Shard is one of Count parts of a data folder's images: shard Index
// holds the images whose path relative to the folder (with slashes)
// hashes to Index (ShardOf). The zero Shard is the whole folder.
//
// The hash depends on nothing but the image's own path, so adding or
// removing images never moves another image to a different shard, and
// every process computes the same split without talking to the others.
type Shard struct {
	Index, Count int
}

// ParseShard reads "i/n": shard i (from 0) of n.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	n, err2 := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%q: use i/n, shard i (from 0) of n, e.g. 0/4", s)
	}
	sh := Shard{Index: i, Count: n}
	if n < 1 {
		return Shard{}, fmt.Errorf("%d/%d: the shard index must be in 0..n-1 and n at least 1", i, n)
	}
	return sh, sh.check()
}

func (s Shard) check() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("%d/%d: the shard index must be in 0..n-1 and n at least 1", s.Index, s.Count)
	}
	return nil
}

// String reads "i/n", or "" for the whole folder.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Holds says whether the image at rel (its path relative to the data
// folder) belongs to the shard.
func (s Shard) Holds(rel string) bool {
	return s.Count <= 1 || ShardOf(rel, s.Count) == s.Index
}

// ShardOf is the shard, of n, of the image at rel, its path relative to
// the data folder: FNV-1a 64 of the path with forward slashes, mod n.
func ShardOf(rel string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(filepath.ToSlash(rel)))
	return int(h.Sum64() % uint64(n))
}

// OutPath is the features file of the shard: out itself for the whole
// folder, else out with ".shard-I-of-N" before its extension
// (emb.npy: emb.shard-0-of-3.npy).
func (s Shard) OutPath(out string) string {
	if s.Count == 0 || out == "" {
		return out
	}
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s.shard-%d-of-%d%s", strings.TrimSuffix(out, ext), s.Index, s.Count, ext)
}

// LabelsPath is the labels file written beside a features file:
// FILE.npy: FILE.labels.txt.
func LabelsPath(npy string) string {
	return strings.TrimSuffix(npy, filepath.Ext(npy)) + ".labels.txt"
}

// FeaturesConfig configures ExtractFeatures. Model and Data are required,
// and CacheDir or Out (or both); the cut and preprocessing options mean
// what they mean in AdaptConfig, so a cache filled here is the one Adapt
// reads with the same options.
type FeaturesConfig struct {
	Model    string
	Data     string
	CacheDir string // the feature cache to fill (AdaptConfig.CacheDir)
	// Out, when set, is a .npy file for the features (N x D float32, in
	// the data set's order: train, val, test, each sorted by path), with
	// LabelsPath(Out) beside it: one "class<TAB>path" line per row, the
	// path relative to Data with slashes. With a Shard, the shard's
	// number goes into both names (Shard.OutPath).
	Out   string
	Force bool // allow replacing Out and its labels file

	Cut       string // "" or "auto": the input of the final classifier
	Resize    int
	Mean, Std []float32
	// Shapes binds symbolic input dimensions by input name (--input-shape):
	// a model whose image input leaves height and width free
	// (x: [N, 3, H, W]) runs at the size given here; see
	// dataset.Overrides.Shapes. The batch given is not used.
	Shapes map[string][]int
	Strict bool // an image that does not decode fails the call
	// Shard restricts the call to one shard of the images; the zero
	// Shard is all of them.
	Shard Shard
	Batch int // images per forward pass; 0 means 32

	Reporter  Reporter
	Limits    onnx.Limits
	MaxPixels int64
}

// FeaturesResult is what `graft features` prints.
type FeaturesResult struct {
	Cut   string `json:"cut"`
	Dim   int    `json:"dim"`
	Shard string `json:"shard,omitempty"` // "i/n"
	// Images is how many images the shard holds, of Total in the folder;
	// Extracted how many of them have features (the others were skipped).
	Images    int        `json:"images"`
	Total     int        `json:"total"`
	Extracted int        `json:"extracted"`
	Skipped   []string   `json:"skipped,omitempty"`
	Cache     CacheStats `json:"cache"`
	// CacheDir is the cache's folder for this model, cut and
	// preprocessing (under FeaturesConfig.CacheDir).
	CacheDir string  `json:"cache_dir,omitempty"`
	Out      string  `json:"out,omitempty"`
	Labels   string  `json:"labels,omitempty"`
	Seconds  float64 `json:"seconds"`
}

func (c *FeaturesConfig) validate() error {
	switch {
	case c.Model == "":
		return onnx.OptionErrorf("FeaturesConfig.Model", "a model is required")
	case c.Data == "":
		return onnx.OptionErrorf("FeaturesConfig.Data", "an image folder is required")
	case c.CacheDir == "" && c.Out == "":
		return onnx.OptionErrorf("FeaturesConfig.CacheDir", "give a cache folder to fill, or FeaturesConfig.Out for a .npy file, or both")
	case c.Batch < 0:
		return onnx.OptionErrorf("FeaturesConfig.Batch", "batch size %d must be at least 1", c.Batch)
	}
	if err := c.Shard.check(); err != nil {
		return onnx.OptionErrorf("FeaturesConfig.Shard", "%w", err)
	}
	if c.Out != "" {
		if !strings.EqualFold(filepath.Ext(c.Out), ".npy") {
			return onnx.OptionErrorf("FeaturesConfig.Out", "%s: the features file must end in .npy", c.Out)
		}
		out := c.Shard.OutPath(c.Out)
		for _, p := range []string{out, LabelsPath(out)} {
			if err := onnx.CheckOutPath(c.Model, p, c.Force); err != nil {
				return err
			}
		}
	}
	return nil
}

// ExtractFeatures computes the backbone features of a data folder's
// images (of one shard of them), as Adapt does before training the head:
// the same cut, preprocessing and feature cache, so that Adapt with
// AdaptConfig.CacheDir finds every image it extracted. Caches that
// shards filled in separate folders merge by copying the folders into
// one: entries are named by content and never conflict.
func ExtractFeatures(ctx context.Context, cfg FeaturesConfig) (*FeaturesResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	rep := orNop(cfg.Reporter)
	a := &adaptation{ctx: ctx, rep: rep, res: &AdaptResult{}, cfg: AdaptConfig{Model: cfg.Model, Data: cfg.Data, Cut: cfg.Cut, Resize: cfg.Resize, Mean: cfg.Mean, Std: cfg.Std, Shapes: cfg.Shapes,
		Strict: cfg.Strict, CacheDir: cfg.CacheDir, Limits: cfg.Limits, MaxPixels: cfg.MaxPixels}}
	a.cfg.defaults()
	ov := dataset.Overrides{Resize: cfg.Resize, Mean: cfg.Mean, Std: cfg.Std, Shapes: cfg.Shapes}
	var err error
	a.src, a.input, a.prep, err = openImageModel(cfg.Model, cfg.Limits, ov, cfg.MaxPixels)
	if err != nil {
		return nil, err
	}
	if note := preprocessNote(a.src, a.prep, ov, "FeaturesConfig"); note != "" {
		rep.Note(note)
	}
	if a.ds, err = dataset.LoadDataset(dataset.DataConfig{Dir: cfg.Data, MaxPixels: cfg.MaxPixels}); err != nil {
		return nil, err
	}
	if cfg.Strict && len(a.ds.Skipped) > 0 {
		return nil, &onnx.OptionError{Option: "FeaturesConfig.Strict", Err: a.ds.Skipped[0].Err}
	}
	if err := a.resolveCut(); err != nil {
		return nil, err
	}
	// the head Adapt attaches computes the features (pooled when the cut
	// is 4-D); its classifier is never run here
	a.spec = surgery.HeadSpec{Classes: max(2, len(a.ds.Classes))}
	if err := a.attachHead(); err != nil {
		return nil, err
	}
	h := a.head
	res := &FeaturesResult{Cut: a.cut, Dim: h.FeatureDim, Shard: cfg.Shard.String()}

	rel := func(p string) string {
		r, err := filepath.Rel(cfg.Data, p)
		if err != nil {
			return filepath.ToSlash(p)
		}
		return filepath.ToSlash(r)
	}
	var samples []dataset.Sample
	for _, sp := range splits(a.ds) {
		res.Total += len(sp.samples)
		for _, s := range sp.samples {
			if cfg.Shard.Holds(rel(s.Path)) {
				samples = append(samples, s)
			}
		}
	}
	for _, s := range a.ds.Skipped {
		res.Total++
		if cfg.Shard.Holds(rel(s.Path)) {
			res.Skipped = append(res.Skipped, s.Err.Error())
			notef(rep, "skipped %s: %v", s.Path, s.Err)
		}
	}
	res.Images = len(samples) + len(res.Skipped)
	if cfg.Shard.Count > 1 {
		if len(samples) == 0 {
			notef(rep, "shard %s holds none of the %d images in %s: nothing to extract", cfg.Shard, res.Total, cfg.Data)
		} else {
			notef(rep, "shard %s: %d of the %d images in %s", cfg.Shard, res.Images, res.Total, cfg.Data)
		}
	}

	var cache *FeatureCache
	if cfg.CacheDir != "" {
		if cache, err = OpenFeatureCache(cfg.CacheDir, FileHashBytes(a.src.Raw), a.cut, a.prep); err != nil {
			return nil, &onnx.OptionError{Option: "FeaturesConfig.CacheDir", Err: err}
		}
		res.CacheDir = cache.Dir()
	}
	ext := &Extractor{Src: a.adapted, Input: a.input, Features: h.Features, Batch: cfg.Batch, Dim: h.FeatureDim}
	rep.PhaseStart(PhaseFeatures, len(samples))
	ex, sk, err := Features(ctx, ext, samples, a.prep, FeatureOptions{Cache: cache, Strict: cfg.Strict, Stats: &res.Cache,
		Progress: func(done int) { progress(rep, PhaseFeatures, done) }})
	rep.PhaseEnd(PhaseFeatures, time.Since(t0))
	if err != nil {
		return nil, err
	}
	for _, s := range sk {
		res.Skipped = append(res.Skipped, s.Err.Error())
		notef(rep, "skipped %s: %v", s.Path, s.Err)
	}
	res.Extracted = ex.Len()
	if c := res.Cache; c.Corrupt > 0 {
		notef(rep, "feature cache: %d damaged or stale entries (first: %s) were recomputed and rewritten", c.Corrupt, c.FirstCorrupt)
	}
	if cfg.Out != "" {
		res.Out = cfg.Shard.OutPath(cfg.Out)
		res.Labels = LabelsPath(res.Out)
		var labels strings.Builder
		for i, p := range ex.Paths {
			fmt.Fprintf(&labels, "%s\t%s\n", a.ds.Classes[ex.Labels[i]], rel(p))
		}
		npy := onnx.EncodeNpy(onnx.NewFloat([]int{ex.Len(), h.FeatureDim}, ex.X))
		if err := onnx.WriteAtomic(res.Out, npy, cfg.Force); err != nil {
			return nil, err
		}
		if err := onnx.WriteAtomic(res.Labels, []byte(labels.String()), cfg.Force); err != nil {
			return nil, err
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	return res, nil
}

// noteCache says when AdaptConfig.CacheDir cannot serve the whole run:
// augmented images change every epoch, and fine-tuning trains layers
// before the cut, whose inputs the cache does not hold.
func (a *adaptation) noteCache() {
	if a.cfg.CacheDir == "" {
		return
	}
	if a.cfg.Augment {
		notef(a.rep, "AdaptConfig.CacheDir %s is not used: with AdaptConfig.Augment every training image changes each epoch, so its backbone features cannot be cached; every image goes through the whole network", a.cfg.CacheDir)
		return
	}
	if a.cfg.FinetuneEpochs > 0 {
		notef(a.rep, "AdaptConfig.CacheDir %s serves the head stage only: it holds features at the cut (%s), and fine-tuning trains layers before it, so every image is decoded again and goes through the backbone", a.cfg.CacheDir, a.cut)
	}
}
