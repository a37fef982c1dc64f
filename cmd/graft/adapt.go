package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train"
	"github.com/urfave/cli/v2"
)

// sampleOut is where `graft adapt` without --model and --data writes.
const sampleOut = "graft-sample.onnx"

func adaptCommand() *cli.Command {
	return &cli.Command{
		Name:  "adapt",
		Usage: "train a new head (and optionally the last layers) of a pretrained model on a folder of images, and export the adapted model",
		Description: `With no --model and --data, adapts the shipped sample backbone to the shipped
sample task (4 Fashion-MNIST classes it never saw) and writes graft-sample.onnx.

Data: DIR/train/<class>/* with optional DIR/val/<class>/* and DIR/test/<class>/*,
or DIR/<class>/*. Classes are the sorted folder names. With validation images
(val/ or --val-split), adapt keeps the better of the head-only and the
fine-tuned model by validation loss, and says which.

Every flag is checked before any image is read; a bad value exits with status 2.

Examples:
   graft adapt
   graft adapt -m resnet18.onnx -d flowers --val-split 0.2 --out flowers.onnx
   graft adapt -m resnet18.onnx -d flowers --finetune-epochs 5 --softmax --batch-dim dynamic --out flowers.onnx`,
		Flags: adaptFlags(),
		Action: func(c *cli.Context) error {
			if err := checkCheckpointFlags(c); err != nil {
				return err
			}
			if adaptIsMany(c) {
				return adaptMany(c)
			}
			if err := checkAdaptFlags(c); err != nil {
				return err
			}
			cfg, err := adaptConfig(c)
			if err != nil {
				return err
			}
			var baseline *models.Baseline
			sample := cfg.Model == "" && cfg.Data == ""
			switch {
			case sample:
				dir, err := os.MkdirTemp("", "graft-sample-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if cfg.Model, cfg.Data, err = models.Extract(dir); err != nil {
					return err
				}
				if baseline, err = models.LoadBaseline(); err != nil {
					return err
				}
				if cfg.Out == "" {
					cfg.Out, cfg.OverwriteOwn = sampleOut, true
				}
				if !c.Bool("quiet") {
					fmt.Fprintf(c.App.ErrWriter, "adapting the shipped sample backbone (pretrained on 6 Fashion-MNIST classes) to 4 classes it never saw\n")
				}
			case cfg.Out == "" && !cfg.DryRun:
				cfg.Out = "adapted.onnx"
			}
			res, err := train.Adapt(c.Context, cfg)
			if err != nil {
				if _, serr := os.Stat(filepath.Join(cfg.Checkpoint, "checkpoint.json")); cfg.Checkpoint != "" && serr == nil && c.Context.Err() != nil {
					return fmt.Errorf("%w (training state saved in %s: rerun with --resume to continue)", err, cfg.Checkpoint)
				}
				return err
			}
			if err := writeAdaptReport(c, cfg, res); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, struct {
					*train.AdaptResult
					Baseline *models.Baseline `json:"pytorch_baseline,omitempty"`
				}{res, baseline})
			}
			printAdapt(c.App.Writer, res, baseline)
			return nil
		},
	}
}

func adaptFlags() []cli.Flag {
	flags := append([]cli.Flag{
		&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "pretrained ONNX `MODEL` (default: the shipped sample backbone); several: a leaderboard, with --out-dir"},
		&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "image folder `DIR` (default: the shipped sample task)"},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the adapted model to `FILE` (default: adapted.onnx, or graft-sample.onnx for the sample)"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite an existing output file"},
		&cli.BoolFlag{Name: "softmax", Usage: "append Softmax: the written model outputs probabilities"},
		&cli.StringFlag{Name: "batch-dim", Usage: "the written model's batch dimension: `dynamic` or N (default: the base model's)"},
		&cli.StringFlag{Name: "output-name", Usage: "name of the written model's output `NAME` (default: logits, or probabilities with --softmax)"},
		&cli.StringFlag{Name: "cut", Value: "auto", Usage: "`auto` (the input of the final classifier) or a TENSOR name"},
		&cli.StringFlag{Name: "head", Value: "linear", Usage: "`linear` or mlp:256[,128] (ReLU hidden layers)"},
		&cli.Float64Flag{Name: "dropout", Usage: "dropout `P` in [0,1) before each layer after the first of an mlp head"},
		&cli.Int64Flag{Name: "seed", Usage: "random `SEED` (head initialisation, shuffling, splits)"},
		&cli.IntFlag{Name: "resize", Usage: "resize the shorter image side to `N` before the center crop (default: the model's metadata, else its input size)"},
		inputShapeFlag(),
		&cli.StringFlag{Name: "mean", Usage: "per-channel `MEAN` on the [0,1] scale, e.g. 0.485,0.456,0.406 (default: the model's metadata, else ImageNet's)"},
		&cli.StringFlag{Name: "std", Usage: "per-channel `STD` on the [0,1] scale (default: the model's metadata, else ImageNet's)"},
		&cli.Float64Flag{Name: "val-split", Usage: "hold out fraction `F` in [0,1) of each class for validation when there is no val/ folder"},
		&cli.BoolFlag{Name: "strict", Usage: "fail on an image that does not decode instead of skipping it"},
		&cli.StringFlag{Name: "optimizer", Value: string(train.DefaultOptimizer), Usage: "`NAME`: adam, adamw or sgd"},
		&cli.Float64Flag{Name: "lr", Value: train.DefaultLR, Usage: "learning rate `LR` (above 0)"},
		&cli.Float64Flag{Name: "momentum", Usage: "sgd momentum `M` in [0,1)"},
		&cli.BoolFlag{Name: "nesterov", Usage: "sgd Nesterov momentum"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "weight decay `WD` >= 0 (L2 for adam and sgd, decoupled for adamw)"},
		&cli.StringFlag{Name: "schedule", Value: string(train.DefaultSchedule), Usage: "learning-rate schedule `NAME`: constant, cosine or step"},
		&cli.IntFlag{Name: "warmup", Usage: "linear warmup over `N` epochs of each stage"},
		&cli.IntFlag{Name: "epochs", Aliases: []string{"head-epochs"}, Value: train.DefaultEpochs, Usage: "`N` head training epochs, 1 or more (the first stage when fine-tuning)"},
		&cli.IntFlag{Name: "batch", Value: train.DefaultBatch, Usage: "batch size `N`: images per training step"},
		&cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing `EPS` in [0,1)"},
		&cli.IntFlag{Name: "patience", Usage: "stop after `N` epochs without a better validation loss, restoring the best weights (needs validation data)"},
		&cli.StringFlag{Name: "trainable", Usage: "also train backbone weights whose initializer or node name matches `REGEX` (with --finetune-epochs)"},
		&cli.IntFlag{Name: "unfreeze-last", Usage: "also train the last `K` backbone layers with weights (with --finetune-epochs; default: 4)"},
		&cli.IntFlag{Name: "finetune-epochs", Usage: "after the head, train it with the unfrozen backbone layers for `N` epochs"},
		&cli.Float64Flag{Name: "backbone-lr-mult", Value: train.DefaultBackboneLRMult, Usage: "learning rate of backbone weights relative to the head's, `X` > 0"},
		&cli.StringFlag{Name: "bn", Value: string(train.DefaultBN), Usage: "BatchNormalization when fine-tuning, `MODE`: frozen (running statistics) or train (batch statistics, running statistics updated)"},
		&cli.BoolFlag{Name: "augment", Usage: "random resized crop and horizontal flip of training images, drawn anew each epoch (bypasses the feature cache)"},
		&cli.StringFlag{Name: "cache", Usage: "keep backbone features in `DIR` so later runs skip the backbone"},
		&cli.StringFlag{Name: "memory-budget", DefaultText: humanBytes(train.DefaultMemoryBudget), Usage: "RAM fine-tuning may hold for the tensors it trains from (frozen-layer outputs or decoded images), `SIZE` like 512MiB; beyond it they spill to a file in --cache DIR (else the temporary folder)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print the trainable and frozen layers and parameter counts, and stop"},
		&cli.StringFlag{Name: "log", Usage: "write per-epoch metrics to `FILE`.csv or FILE.jsonl"},
		&cli.StringFlag{Name: "checkpoint", Usage: "save the training state in `DIR` every epoch and when interrupted"},
		quietFlag(), jsonFlag(), maxMemoryFlag(), maxPixelsFlag(), reportFlag(), findLRFlag(),
	}, adaptManyFlags()...)
	// --resume comes with the flags for several models; with one it
	// continues the run saved in --checkpoint
	for _, f := range flags {
		if b, ok := f.(*cli.BoolFlag); ok && b.Name == "resume" {
			b.Usage = "with --checkpoint DIR: continue the interrupted run saved there (the model written is the one an uninterrupted run writes); with several models: " + b.Usage
		}
	}
	return flags
}

// adaptConfig maps adapt's flags to the library's config, parsing the
// string forms of the head, optimizer, schedule and BN mode.
func adaptConfig(c *cli.Context) (train.AdaptConfig, error) {
	cfg := train.AdaptConfig{
		Model: firstModel(c), Data: c.String("data"), Out: c.String("out"), Force: c.Bool("force"),
		Cut: c.String("cut"), Seed: c.Int64("seed"),
		Resize: c.Int("resize"), ValSplit: c.Float64("val-split"), Strict: c.Bool("strict"),
		LR: c.Float64("lr"), Momentum: c.Float64("momentum"), Nesterov: c.Bool("nesterov"),
		WeightDecay: c.Float64("weight-decay"), Warmup: c.Int("warmup"),
		Epochs: c.Int("epochs"), Batch: c.Int("batch"), LabelSmoothing: c.Float64("label-smoothing"), Patience: c.Int("patience"),
		Trainable: c.String("trainable"), UnfreezeLast: c.Int("unfreeze-last"), FinetuneEpochs: c.Int("finetune-epochs"),
		BackboneLRMult: c.Float64("backbone-lr-mult"), Augment: c.Bool("augment"), CacheDir: c.String("cache"), DryRun: c.Bool("dry-run"), Log: c.String("log"),
		Softmax: c.Bool("softmax"), BatchDim: c.String("batch-dim"), OutputName: c.String("output-name"),
		Checkpoint: c.String("checkpoint"), Resume: c.Bool("resume"),
	}
	var err error
	if cfg.Shapes, err = inputShapes(c); err != nil {
		return cfg, err
	}
	if cfg.Limits, err = limits(c); err != nil {
		return cfg, err
	}
	if c.IsSet("memory-budget") {
		if cfg.MemoryBudget, err = onnx.ParseSize(c.String("memory-budget")); err != nil {
			return cfg, usagef(c, "--memory-budget: %v", err)
		}
	}
	if cfg.MaxPixels, err = maxPixels(c); err != nil {
		return cfg, err
	}
	if cfg.Head, err = parseHead(c.String("head"), c.Float64("dropout")); err != nil {
		return cfg, err
	}
	if cfg.Optimizer, err = parseChoice(c, "optimizer", train.OptimizerAdam, train.OptimizerAdamW, train.OptimizerSGD); err != nil {
		return cfg, err
	}
	if cfg.Schedule, err = parseChoice(c, "schedule", train.ScheduleConstant, train.ScheduleCosine, train.ScheduleStep); err != nil {
		return cfg, err
	}
	if cfg.BN, err = parseChoice(c, "bn", train.BNFrozen, train.BNTrain); err != nil {
		return cfg, err
	}
	if cfg.Mean, err = floatList(c, "mean"); err != nil {
		return cfg, err
	}
	if cfg.Std, err = floatList(c, "std"); err != nil {
		return cfg, err
	}
	cfg.Reporter = reporter(c)
	cfg.FindLR, cfg.KeepImages = c.Bool("find-lr"), c.String("report") != ""
	return cfg, nil
}

// checkCheckpointFlags: --resume needs --checkpoint, which takes one
// model and applies to training.
func checkCheckpointFlags(c *cli.Context) error {
	if !c.IsSet("checkpoint") {
		if c.Bool("resume") {
			return usagef(c, "--resume needs --checkpoint DIR, the folder the interrupted run saved its state in")
		}
		return nil
	}
	switch {
	case c.String("checkpoint") == "":
		return usagef(c, "--checkpoint needs a folder")
	case adaptIsMany(c):
		return usagef(c, "--checkpoint applies to one model; with several, use graft batch --resume")
	case c.Bool("dry-run") || c.Bool("find-lr"):
		return usagef(c, "--checkpoint applies to training, not --dry-run or --find-lr")
	}
	return nil
}

// parseHead reads --head: "linear" or "mlp:256[,128]".
func parseHead(s string, dropout float64) (train.Head, error) {
	h := train.Head{Dropout: dropout}
	switch {
	case s == "linear":
	case strings.HasPrefix(s, "mlp:"):
		for _, p := range strings.Split(strings.TrimPrefix(s, "mlp:"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 {
				return h, fmt.Errorf("--head %s: hidden sizes must be positive numbers, like mlp:256,128", s)
			}
			h.Hidden = append(h.Hidden, n)
		}
	default:
		return h, fmt.Errorf("--head %q: use linear or mlp:SIZE[,SIZE...]", s)
	}
	return h, nil
}

// parseChoice reads a flag whose value is one of a few names.
func parseChoice[T ~string](c *cli.Context, flag string, choices ...T) (T, error) {
	v := T(c.String(flag))
	if slices.Contains(choices, v) {
		return v, nil
	}
	names := make([]string, len(choices))
	for i, ch := range choices {
		names[i] = string(ch)
	}
	return v, fmt.Errorf("--%s %q: use %s or %s", flag, string(v), strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

func floatList(c *cli.Context, name string) ([]float32, error) {
	s := c.String(name)
	if s == "" {
		return nil, nil
	}
	var out []float32
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a number", name, p)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

func printAdapt(w io.Writer, r *train.AdaptResult, bl *models.Baseline) {
	fmt.Fprintf(w, "classes      %d: %s\n", len(r.Classes), strings.Join(r.Classes, ", "))
	fmt.Fprintf(w, "cut          %q, head %s\n", r.Cut, r.Head)
	fmt.Fprintf(w, "images       train %d, val %d, test %d", r.Images.Train, r.Images.Val, r.Images.Test)
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, " (%d skipped)", len(r.Skipped))
	}
	fmt.Fprintln(w)
	printSkipped(w, "skipped      ", r.Skipped)
	fmt.Fprintf(w, "parameters   %d trainable, %d frozen\n", r.Trainable, r.Frozen)
	if r.LRFind != nil {
		printLRFind(w, r.LRFind)
		return
	}
	if r.DryRun {
		fmt.Fprintf(w, "trainable backbone layers (%d):\n", len(r.TrainableLayers))
		for _, l := range r.TrainableLayers {
			fmt.Fprintf(w, "  %-40s %-20s %d\n", l.Node, l.Op, l.NumParams)
		}
		fmt.Fprintf(w, "frozen backbone layers: %d\n", len(r.FrozenLayers))
		fmt.Fprintln(w, "dry run: nothing trained")
		return
	}
	fmt.Fprintf(w, "time         %.2fs backbone features (cache: %d hits, %d misses), %.2fs training\n", r.FeatureSeconds, r.Cache.Hits, r.Cache.Misses, r.TrainSeconds)
	if r.Cache.Corrupt > 0 {
		fmt.Fprintf(w, "cache        %d damaged or stale entries recomputed (first: %s)\n", r.Cache.Corrupt, r.Cache.FirstCorrupt)
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, "stopped      %s\n", r.Stopped)
	}
	if r.Kept != nil {
		fmt.Fprintf(w, "kept         %s\n", r.Kept)
	}
	for _, s := range []struct {
		name string
		ev   *train.EvalResult
	}{{"train", r.Train}, {"val", r.Val}, {"test", r.Test}} {
		if s.ev != nil {
			fmt.Fprintf(w, "%-12s %.2f%% accuracy (%d images)\n", s.name, 100*s.ev.Accuracy, s.ev.N)
		}
	}
	if r.Val == nil && r.Test == nil {
		fmt.Fprintln(w, "             training accuracy only: no validation or test images (try --val-split 0.2)")
	}
	if r.Test != nil {
		fmt.Fprintf(w, "chance       %.2f%%\n", 100/float64(len(r.Classes)))
	}
	if bl != nil {
		fmt.Fprintf(w, "PyTorch      head-only baseline %.2f%% ± %.2f (3 seeds), two-stage fine-tuning %.2f%% ± %.2f\n",
			100*bl.HeadOnly.Mean, 100*bl.HeadOnly.Std, 100*bl.TwoStage.Mean, 100*bl.TwoStage.Std)
	}
	if r.Out != "" {
		fmt.Fprintf(w, "wrote        %s (re-imported outputs within %.2g of the trained model's)\n", r.Out, r.ExportMaxDiff)
	}
}
