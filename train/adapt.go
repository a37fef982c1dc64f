package train

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
)

// Defaults of AdaptConfig. They are the settings the README's targets were
// measured with, and the PyTorch baselines in models/ use the same ones.
const (
	DefaultEpochs    = 100
	DefaultBatch     = 16
	DefaultLR        = 1e-2
	DefaultOptimizer = OptimizerAdam
	DefaultSchedule  = ScheduleConstant
	// Fine-tuning defaults (with FinetuneEpochs > 0).
	DefaultUnfreezeLast   = 4
	DefaultBackboneLRMult = 0.1
	DefaultBN             = BNFrozen
)

// AdaptConfig configures Adapt. Model and Data are required; every other
// field's zero value means its documented default. Where zero is the
// default it is also a valid choice: a Seed of 0 is a seed like any
// other, and zero Momentum, WeightDecay, LabelSmoothing, ValSplit,
// Warmup, Patience and FinetuneEpochs mean none.
type AdaptConfig struct {
	Model string // the pretrained ONNX model file
	Data  string // the image folder (see package dataset for its layouts)
	Out   string // the adapted model to write; "" writes nothing
	// Force allows overwriting Out. OverwriteOwn allows it only when Out
	// is a model graft wrote (its metadata says so).
	Force, OverwriteOwn bool

	Cut  string // "" or "auto": the input of the final classifier; else a tensor name
	Head Head   // the zero Head is linear
	Seed int64  // head initialisation, shuffling, the validation split

	// Preprocessing overrides; zero means the model's metadata, else
	// ImageNet's (see dataset.PreprocessFor).
	Resize    int
	Mean, Std []float32
	// Shapes binds symbolic input dimensions by input name (--input-shape):
	// a model whose image input leaves height and width free
	// (x: [N, 3, H, W]) runs at the size given here; see
	// dataset.Overrides.Shapes. The batch given is not used.
	Shapes   map[string][]int
	ValSplit float64 // fraction of each class held out when Data has no val folder
	Strict   bool    // an image that does not decode fails Adapt instead of being skipped

	Optimizer      OptimizerKind // default DefaultOptimizer
	LR             float64       // default DefaultLR
	Momentum       float64       // OptimizerSGD only
	Nesterov       bool          // OptimizerSGD only
	WeightDecay    float64
	Schedule       ScheduleKind // default DefaultSchedule
	Warmup         int          // epochs of linear warmup
	Epochs         int          // head epochs; default DefaultEpochs
	Batch          int          // default DefaultBatch
	LabelSmoothing float64      // in [0, 1)
	Patience       int          // early stop after this many epochs without a better validation loss

	// Backbone training (fine-tuning), after the head, for
	// FinetuneEpochs > 0.
	Trainable      string  // regular expression over initializer or node names
	UnfreezeLast   int     // the last K backbone layers with weights; default DefaultUnfreezeLast when fine-tuning without Trainable
	FinetuneEpochs int     // 0: no fine-tuning
	BackboneLRMult float64 // backbone learning rate relative to the head's; default DefaultBackboneLRMult

	// BN is how the BatchNormalization layers that fine-tune behave;
	// default DefaultBN.
	BN BNMode
	// Augment draws a random resized crop and horizontal flip of every
	// training image each epoch (the feature cache cannot apply then).
	Augment bool

	// The written model: Softmax appends a Softmax so that it outputs
	// probabilities; BatchDim is "" (the base model's batch dimension),
	// "dynamic" or a positive number; OutputName names its output
	// (default "logits", or "probabilities" with Softmax).
	Softmax    bool
	BatchDim   string
	OutputName string

	CacheDir string // persist backbone features here
	// MemoryBudget bounds the bytes fine-tuning keeps in RAM for the
	// tensors it trains from: the outputs of the frozen layers before the
	// first trainable one, or the decoded images when the trainable
	// layers read them. Beyond it they are spilled to a file in CacheDir
	// (else the system's temporary folder), deleted when Adapt returns.
	// 0 means DefaultMemoryBudget. Augmentation keeps its images in RAM.
	MemoryBudget int64
	DryRun       bool // stop after selecting the trainable layers
	// FindLR runs the learning-rate finder on the head (see FindLR) after
	// feature extraction, instead of training; AdaptResult.LRFind holds
	// its curve and suggestion, and nothing is written.
	FindLR bool
	// KeepImages records each validation and test image's prediction in
	// AdaptResult.Val.Images and Test.Images (for a report).
	KeepImages bool
	Log        string // per-epoch metrics file, .csv or .jsonl

	// Checkpoint is a folder where Adapt saves its training state after
	// every epoch, and when ctx is cancelled after the current step (then
	// Adapt returns an error wrapping ctx's and writes no model). The
	// folder is created if need be; one that holds a checkpoint is
	// refused unless Resume is set.
	//
	// Resume continues from Checkpoint's state; the model written is
	// then bit-identical to an uninterrupted run's. A checkpoint of
	// another base model, data set (every image's name, label and
	// content count) or of other settings is refused, naming what
	// differs. What may change on resume: Out, Force, OverwriteOwn,
	// CacheDir, Log, KeepImages, Reporter, Limits, the written model's
	// Softmax, BatchDim and OutputName, and Epochs (while the head stage
	// runs) or FinetuneEpochs (while the head or fine-tune stage runs) to
	// extend a run; never below the epochs done. With the constant
	// schedule and no early stop yet, an extended run equals one given
	// the larger number from the start; other schedules spread over the
	// new number of steps. Resume without a checkpoint in the folder
	// starts from the beginning, with a note. An MLP head with Dropout
	// cannot be checkpointed yet (its masks' generator state is not
	// saved) and is refused.
	Checkpoint string
	Resume     bool

	// Reporter receives progress (nil: none).
	Reporter Reporter
	Limits   onnx.Limits
	// MaxPixels bounds each image's declared width x height (0:
	// dataset.DefaultMaxPixels); larger images are skipped (or, with
	// Strict, refused), read from their header before decoding.
	MaxPixels int64
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
	// Kept is the model Adapt kept, with validation data: the head-only
	// or the fine-tuned one, at its best epoch.
	Kept           *Kept      `json:"kept,omitempty"`
	FeatureSeconds float64    `json:"feature_seconds"`
	TrainSeconds   float64    `json:"train_seconds"`
	Cache          CacheStats `json:"cache"`
	// ExportMaxDiff is the largest difference between the re-imported
	// file's outputs and the in-memory model's, relative to the outputs'
	// largest magnitude.
	ExportMaxDiff float64 `json:"export_max_rel_diff"`
	DryRun        bool    `json:"dry_run,omitempty"`
	// LRFind is the learning-rate finder's result (AdaptConfig.FindLR).
	LRFind *LRFindResult `json:"lr_find,omitempty"`
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
		c.BN = DefaultBN
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.FinetuneEpochs > 0 && c.Trainable == "" && c.UnfreezeLast == 0 {
		c.UnfreezeLast = DefaultUnfreezeLast
	}
}

// validate checks the options that do not depend on the model or data,
// before any of them is read: every range, and the combinations that
// make no sense.
func (c *AdaptConfig) validate() error {
	if c.Epochs < 0 {
		return onnx.OptionErrorf("AdaptConfig.Epochs", "must not be negative, got %d", c.Epochs)
	}
	if c.FinetuneEpochs < 0 {
		return onnx.OptionErrorf("AdaptConfig.FinetuneEpochs", "must not be negative, got %d", c.FinetuneEpochs)
	}
	if c.Batch < 1 {
		return onnx.OptionErrorf("AdaptConfig.Batch", "batch size %d must be at least 1", c.Batch)
	}
	if c.MemoryBudget < 0 {
		return onnx.OptionErrorf("AdaptConfig.MemoryBudget", "%d bytes must not be negative", c.MemoryBudget)
	}
	if c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0) {
		return onnx.OptionErrorf("AdaptConfig.WeightDecay", "%g must be 0 or more", c.WeightDecay)
	}
	if c.Momentum < 0 || c.Momentum >= 1 || math.IsNaN(c.Momentum) {
		return onnx.OptionErrorf("AdaptConfig.Momentum", "%g must be in [0, 1)", c.Momentum)
	}
	if c.BackboneLRMult < 0 || math.IsNaN(c.BackboneLRMult) || math.IsInf(c.BackboneLRMult, 0) {
		return onnx.OptionErrorf("AdaptConfig.BackboneLRMult", "%g must be above 0", c.BackboneLRMult)
	}
	if c.Patience < 0 {
		return onnx.OptionErrorf("AdaptConfig.Patience", "must not be negative, got %d", c.Patience)
	}
	if c.ValSplit < 0 || c.ValSplit >= 1 || math.IsNaN(c.ValSplit) {
		return onnx.OptionErrorf("AdaptConfig.ValSplit", "%g must be in [0, 1)", c.ValSplit)
	}
	if c.Warmup < 0 || c.Warmup > c.Epochs || c.FinetuneEpochs > 0 && c.Warmup > c.FinetuneEpochs {
		return onnx.OptionErrorf("AdaptConfig.Warmup", "%d epochs must be between 0 and the epochs of each stage (AdaptConfig.Epochs %d, AdaptConfig.FinetuneEpochs %d)", c.Warmup, c.Epochs, c.FinetuneEpochs)
	}
	if c.BatchDim != "" && c.BatchDim != "dynamic" {
		if n, err := strconv.Atoi(c.BatchDim); err != nil || n < 1 {
			return onnx.OptionErrorf("AdaptConfig.BatchDim", "%q: use dynamic or a positive number", c.BatchDim)
		}
	}
	switch {
	case c.BN != BNFrozen && c.BN != BNTrain:
		return onnx.OptionErrorf("AdaptConfig.BN", "%q: use frozen or train", string(c.BN))
	case c.BN == BNTrain && c.FinetuneEpochs == 0:
		return onnx.OptionErrorf("AdaptConfig.BN", "train applies to fine-tuning; give AdaptConfig.FinetuneEpochs N")
	case c.BN == BNTrain && c.Batch == 1:
		return onnx.OptionErrorf("AdaptConfig.BN", "train needs a batch size of at least 2: batch statistics of one image normalize it away")
	}
	if c.LabelSmoothing < 0 || c.LabelSmoothing >= 1 {
		return onnx.OptionErrorf("AdaptConfig.LabelSmoothing", "%g must be in [0, 1)", c.LabelSmoothing)
	}
	if c.UnfreezeLast < 0 {
		return onnx.OptionErrorf("AdaptConfig.UnfreezeLast", "must not be negative, got %d", c.UnfreezeLast)
	}
	if c.Trainable != "" {
		if _, err := regexp.Compile(c.Trainable); err != nil {
			return onnx.OptionErrorf("AdaptConfig.Trainable", "%w", err)
		}
	}
	if c.Resume && c.Checkpoint == "" {
		return onnx.OptionErrorf("AdaptConfig.Resume", "needs AdaptConfig.Checkpoint, the folder to resume from")
	}
	if c.Checkpoint != "" && len(c.Head.Hidden) > 0 && c.Head.Dropout > 0 {
		return onnx.OptionErrorf("AdaptConfig.Checkpoint", "a head with dropout cannot be checkpointed yet: its masks would not resume exactly")
	}
	if err := c.Head.check("AdaptConfig.Head"); err != nil {
		return err
	}
	if c.LR < 0 || math.IsNaN(c.LR) || math.IsInf(c.LR, 0) {
		return onnx.OptionErrorf("AdaptConfig.LR", "learning rate %g must be positive", c.LR)
	}
	switch c.Schedule {
	case ScheduleConstant, ScheduleCosine, ScheduleStep:
	default:
		return onnx.OptionErrorf("AdaptConfig.Schedule", "unknown schedule %q (constant, cosine or step)", string(c.Schedule))
	}
	return c.optimizer().check("AdaptConfig")
}

func (c *AdaptConfig) optimizer() OptimizerConfig {
	return OptimizerConfig{Kind: c.Optimizer, WeightDecay: c.WeightDecay, Momentum: c.Momentum, Nesterov: c.Nesterov}
}

// Adapt runs transfer learning: it cuts the model's classifier off,
// attaches a new head for the data's classes, trains it (and the selected
// backbone layers), evaluates, and writes the adapted model. It checks
// ctx between batches and returns its error, wrapped, once it is done.
//
// Bad options are *onnx.OptionError; a model graft cannot read or run
// gives the errors of onnx.ReadFile and graph.CheckOps
// (*onnx.FormatError, *graph.UnsupportedOpsError, *graph.NodeError); a
// data set it cannot use gives the errors of dataset.LoadDataset; a
// diverged run wraps ErrDiverged.
func Adapt(ctx context.Context, cfg AdaptConfig) (*AdaptResult, error) {
	a, err := newAdaptation(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer a.close()
	steps := []func() error{a.load, a.resolveCut, a.attachHead, a.selectTrainable}
	switch {
	case a.cfg.FindLR && !a.cfg.DryRun:
		steps = append(steps, a.findLR)
	case !a.cfg.DryRun:
		steps = append(steps, a.openCheckpoint, a.openLog, a.trainHead, a.fineTune, a.evaluate, a.export, a.verify)
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("adapting %s: %w", a.cfg.Model, err)
		}
		if err := step(); err != nil {
			return nil, err
		}
	}
	return a.res, nil
}
