package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/graftml/graft/train"
	"github.com/urfave/cli/v2"
)

// inferFlags are the preprocessing overrides eval and predict share.
func inferFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "labels", Usage: "the model's class names in output order, for a model without labels or to rename its own: a comma-separated list or a `FILE` of one per line"},
		&cli.IntFlag{Name: "resize", Usage: "resize the shorter image side to `N` (default: the model's metadata, else its input size)"},
		&cli.StringFlag{Name: "mean", Usage: "per-channel `MEAN` on the [0,1] scale (default: the model's metadata, else ImageNet's)"},
		&cli.StringFlag{Name: "std", Usage: "per-channel `STD` on the [0,1] scale (default: the model's metadata, else ImageNet's)"},
		&cli.IntFlag{Name: "batch", Value: train.DefaultInferBatch, Usage: "batch size `N`: images per forward pass"},
		&cli.BoolFlag{Name: "strict", Usage: "fail on an image that does not decode instead of skipping it"},
		quietFlag(), jsonFlag(), maxMemoryFlag(), maxPixelsFlag(), threadsFlag(), inputShapeFlag(),
	}
}

func inferConfig(c *cli.Context, model string) (train.InferConfig, error) {
	cfg := train.InferConfig{Model: model, Resize: c.Int("resize"), Batch: c.Int("batch"), Strict: c.Bool("strict"), Reporter: reporter(c)}
	var err error
	if c.IsSet("labels") {
		if cfg.Labels, err = readLabels(c.String("labels")); err != nil {
			return cfg, usagef(c, "--labels: %v", err)
		}
	}
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
	if !c.Bool("quiet") {
		cfg.Reporter = newProgress(c.App.ErrWriter)
	}
	cfg.Std, err = floatList(c, "std")
	return cfg, err
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "measure a classifier's accuracy, per-class precision/recall/F1 and confusion matrix on a labelled image folder",
		ArgsUsage: "MODEL.onnx",
		Description: `Folders are matched to the model's labels by name (spaces may be underscores).
A model without labels must have as many outputs as there are class folders,
taken in sorted order, unless --labels names them.

Examples:
   graft eval adapted.onnx --data flowers
   graft eval resnet18.onnx --data imagenet-val --labels imagenet-classes.txt
   graft eval adapted.onnx --data flowers/test --json`,
		Flags: append(inferFlags(),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "`DIR`/<class>/* or a folder with a test/ split (required)"}, reportFlag()),
		Action: func(c *cli.Context) error {
			if err := check(checkInferFlags(c)); err != nil {
				return err
			}
			if c.String("data") == "" {
				return usagef(c, "eval: give the images to score with --data DIR")
			}
			if c.NArg() != 1 {
				return usagef(c, "eval: expected one MODEL.onnx argument, got %d", c.NArg())
			}
			cfg, err := inferConfig(c, c.Args().First())
			if err != nil {
				return err
			}
			res, skipped, err := train.EvalModel(c.Context, cfg, c.String("data"))
			if err != nil {
				return err
			}
			if !c.Bool("quiet") {
				var names []string
				for _, s := range skipped {
					names = append(names, s.Err.Error())
				}
				printSkipped(c.App.ErrWriter, "skipped ", names)
			}
			if err := writeEvalReport(c, cfg, res); err != nil {
				return err
			}
			if c.Bool("json") {
				var names []string
				for _, s := range skipped {
					names = append(names, s.Err.Error())
				}
				return writeJSON(c.App.Writer, struct {
					*train.EvalResult
					Skipped []string `json:"skipped,omitempty"`
				}{res, names})
			}
			printEval(c.App.Writer, res)
			return nil
		},
	}
}

// printEval prints the scores; with many classes (a 1000-class model on
// a few folders) only the classes that occur or are predicted.
func printEval(w io.Writer, res *train.EvalResult) {
	fmt.Fprintf(w, "accuracy %.2f%% (%d images), mean cross-entropy %.4f\n\n", 100*res.Accuracy, res.N, res.Loss)
	var shown []int
	for i := range res.Confusion {
		predicted := 0
		for j := range res.Confusion {
			predicted += res.Confusion[j][i]
		}
		if len(res.Confusion) <= 20 || res.PerClass[i].Support > 0 || predicted > 0 {
			shown = append(shown, i)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tPRECISION\tRECALL\tF1\tSUPPORT")
	for _, i := range shown {
		s := res.PerClass[i]
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\n", s.Label, s.Precision, s.Recall, s.F1, s.Support)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nconfusion (rows: true class, columns: predicted)")
	if len(shown) < len(res.Confusion) {
		fmt.Fprintf(w, "(the %d of %d classes that occur or are predicted)\n", len(shown), len(res.Confusion))
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	var head []string
	for _, i := range shown {
		head = append(head, fmt.Sprint(i))
	}
	fmt.Fprintf(tw, "\t%s\t\n", strings.Join(head, "\t"))
	for _, i := range shown {
		var cells []string
		for _, j := range shown {
			cells = append(cells, fmt.Sprint(res.Confusion[i][j]))
		}
		fmt.Fprintf(tw, "%d %s\t%s\t\n", i, res.PerClass[i].Label, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "print the top-K classes of each image (or the feature shape, for a feature extractor)",
		ArgsUsage: "MODEL.onnx IMAGE|DIR...",
		Description: `A folder stands for every image under it, recursively. An image that cannot be
read is reported and the others are still predicted; the exit status is then 1.

Examples:
   graft predict adapted.onnx cat.jpg dog.png
   graft predict adapted.onnx photos/ --top 1 --json
   graft predict resnet18.onnx cat.jpg --labels imagenet-classes.txt`,
		Flags: append(inferFlags(), &cli.IntFlag{Name: "top", Value: 3, Usage: "show the `K` most likely classes"}),
		Action: func(c *cli.Context) error {
			if err := check(checkInferFlags(c), intAtLeast(c, "top", 1)); err != nil {
				return err
			}
			if c.NArg() < 2 {
				return usagef(c, "predict: give MODEL.onnx and at least one IMAGE or folder")
			}
			cfg, err := inferConfig(c, c.Args().First())
			if err != nil {
				return err
			}
			preds, err := train.PredictImages(c.Context, cfg, c.Args().Slice()[1:], c.Int("top"))
			if err != nil {
				return err
			}
			var failed []string
			for _, p := range preds {
				if p.Error != "" {
					failed = append(failed, p.Error)
				}
			}
			if c.Bool("json") {
				if err := writeJSON(c.App.Writer, preds); err != nil {
					return err
				}
			} else {
				features := false
				for _, p := range preds {
					switch {
					case p.Error != "":
						fmt.Fprintf(c.App.Writer, "%s: error: %s\n", p.Image, strings.TrimPrefix(p.Error, p.Image+": "))
					case p.Features != nil:
						features = true
						fmt.Fprintf(c.App.Writer, "%s: features %v\n", p.Image, p.Features)
					default:
						var parts []string
						for _, t := range p.Top {
							parts = append(parts, fmt.Sprintf("%s %.4f", t.Label, t.Prob))
						}
						fmt.Fprintf(c.App.Writer, "%s: %s\n", p.Image, strings.Join(parts, ", "))
					}
				}
				if features {
					notef(c, "note: %s is a feature extractor (no classifier): it outputs features, not classes", c.Args().First())
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d images could not be read; the first: %s", len(failed), len(preds), failed[0])
			}
			return nil
		},
	}
}
