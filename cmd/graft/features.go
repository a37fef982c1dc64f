package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/graftml/graft/train"
	"github.com/urfave/cli/v2"
)

func featuresCommand() *cli.Command {
	return &cli.Command{
		Name:  "features",
		Usage: "run a folder of images (or one shard of it) through a model's backbone: fill the feature cache adapt reads, or write embeddings",
		Description: `Computes what graft adapt computes before training the head: the features at
the cut (pooled when the cut is 4-D), with the same preprocessing, into the same
cache (--cache DIR: adapt --cache DIR then finds every image). --out FILE.npy
also writes the features (N x D float32) and FILE.labels.txt beside it, one
"class<TAB>path" line per row, paths relative to --data.

--shard i/n takes the images whose path relative to --data hashes to i
(FNV-1a 64 of the slash path, mod n): run shards 0/n ... n-1/n on n machines or
processes, each into its own cache folder or one shared folder, then copy the
folders together (cp -r shard*/. cache/): entries are named by the image's
content and never conflict. With --out, each shard writes FILE.shard-i-of-n.npy.

Examples:
   graft features -m resnet18.onnx -d flowers --cache cache
   graft features -m resnet18.onnx -d flowers --cache cache-1 --shard 1/4
   graft features -m resnet18.onnx -d flowers --out flowers.npy`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "pretrained ONNX `MODEL`"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "image folder `DIR` (the layouts adapt reads)"},
			&cli.StringFlag{Name: "cache", Usage: "fill the feature cache in `DIR` (adapt --cache DIR reads it)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "also write the features to `FILE`.npy and the rows' classes and paths to FILE.labels.txt"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing output file"},
			&cli.StringFlag{Name: "shard", Usage: "only shard `i/n` of the images (i from 0): split by a hash of each image's path"},
			&cli.StringFlag{Name: "cut", Value: "auto", Usage: "`auto` (the input of the final classifier) or a TENSOR name"},
			&cli.IntFlag{Name: "resize", Usage: "resize the shorter image side to `N` before the center crop (default: the model's metadata, else its input size)"},
			&cli.StringFlag{Name: "mean", Usage: "per-channel `MEAN` on the [0,1] scale (default: the model's metadata, else ImageNet's)"},
			&cli.StringFlag{Name: "std", Usage: "per-channel `STD` on the [0,1] scale (default: the model's metadata, else ImageNet's)"},
			&cli.BoolFlag{Name: "strict", Usage: "fail on an image that does not decode instead of skipping it"},
			&cli.IntFlag{Name: "batch", Value: train.DefaultInferBatch, Usage: "batch size `N`: images per forward pass"},
			threadsFlag(), inputShapeFlag(),
			quietFlag(), jsonFlag(), maxMemoryFlag(), maxPixelsFlag(),
		},
		Action: func(c *cli.Context) error {
			cfg, err := featuresConfig(c)
			if err != nil {
				return err
			}
			res, err := train.ExtractFeatures(c.Context, cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, res)
			}
			printFeatures(c.App.Writer, res)
			return nil
		},
	}
}

// featuresConfig checks features' flags, before any file is read, and
// maps them to the library's config.
func featuresConfig(c *cli.Context) (train.FeaturesConfig, error) {
	cfg := train.FeaturesConfig{Model: c.String("model"), Data: c.String("data"), CacheDir: c.String("cache"), Out: c.String("out"),
		Force: c.Bool("force"), Cut: c.String("cut"), Resize: c.Int("resize"), Strict: c.Bool("strict"), Batch: c.Int("batch")}
	switch {
	case cfg.Model == "":
		return cfg, usagef(c, "--model is required")
	case cfg.Data == "":
		return cfg, usagef(c, "--data is required")
	case cfg.CacheDir == "" && cfg.Out == "":
		return cfg, usagef(c, "nothing to write: give --cache DIR, --out FILE.npy or both")
	case cfg.Batch < 1:
		return cfg, usagef(c, "--batch %d: must be at least 1", cfg.Batch)
	case cfg.Resize < 0:
		return cfg, usagef(c, "--resize %d: must be positive", cfg.Resize)
	}
	if s := c.String("shard"); s != "" {
		sh, err := train.ParseShard(s)
		if err != nil {
			return cfg, usagef(c, "--shard %v", err)
		}
		cfg.Shard = sh
	}
	if t := c.Int("threads"); t != 0 {
		if t < 1 {
			return cfg, usagef(c, "--threads %d: must be at least 1", t)
		}
		runtime.GOMAXPROCS(t) // the whole process is this one extraction
	}
	var err error
	if cfg.Shapes, err = inputShapes(c); err != nil {
		return cfg, err
	}
	if cfg.Limits, err = limits(c); err != nil {
		return cfg, err
	}
	if cfg.MaxPixels, err = maxPixels(c); err != nil {
		return cfg, err
	}
	if cfg.Mean, err = floatList(c, "mean"); err != nil {
		return cfg, err
	}
	if cfg.Std, err = floatList(c, "std"); err != nil {
		return cfg, err
	}
	cfg.Reporter = reporter(c)
	return cfg, nil
}

func printFeatures(w io.Writer, r *train.FeaturesResult) {
	what := "images"
	if r.Shard != "" {
		what = fmt.Sprintf("images of shard %s (%d in the folder)", r.Shard, r.Total)
	}
	fmt.Fprintf(w, "%d %s: %d features each at %s, %d extracted in %.2fs\n", r.Images, what, r.Dim, r.Cut, r.Extracted, r.Seconds)
	if r.CacheDir != "" {
		fmt.Fprintf(w, "cache: %s (%d hits, %d computed", r.CacheDir, r.Cache.Hits, r.Cache.Misses)
		if r.Cache.Corrupt > 0 {
			fmt.Fprintf(w, ", %d damaged entries rewritten", r.Cache.Corrupt)
		}
		fmt.Fprintln(w, ")")
	}
	if r.Out != "" {
		fmt.Fprintf(w, "wrote %s and %s\n", r.Out, r.Labels)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "skipped %d images:\n", len(r.Skipped))
		printSkipped(w, "  ", r.Skipped)
	}
}
