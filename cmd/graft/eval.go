package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/graftml/graft/train"
	"github.com/urfave/cli/v2"
)

// inferFlags are the preprocessing overrides eval and predict share.
func inferFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "resize", Usage: "resize the shorter image side to `N` (default: the model's metadata)"},
		&cli.StringFlag{Name: "mean", Usage: "per-channel mean on the [0,1] scale (default: the model's metadata)"},
		&cli.StringFlag{Name: "std", Usage: "per-channel std on the [0,1] scale (default: the model's metadata)"},
		&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per forward pass"},
		jsonFlag, maxMemoryFlag, maxPixelsFlag, quietFlag,
	}
}

func inferConfig(c *cli.Context, model string) (train.InferConfig, error) {
	cfg := train.InferConfig{Model: model, Resize: c.Int("resize"), Batch: c.Int("batch")}
	var err error
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
		Flags: append(inferFlags(),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, Usage: "`DIR`/<class>/* or a folder with a test/ split"},
			&cli.BoolFlag{Name: "strict", Usage: "fail on an image that does not decode"}, reportFlag),
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "MODEL.onnx")
			if err != nil {
				return err
			}
			cfg, err := inferConfig(c, path)
			if err != nil {
				return err
			}
			cfg.Strict = c.Bool("strict")
			res, skipped, err := train.EvalModel(c.Context, cfg, c.String("data"))
			if err != nil {
				return err
			}
			for _, s := range skipped {
				fmt.Fprintf(c.App.ErrWriter, "skipped %s: %v\n", s.Path, s.Err)
			}
			if err := writeEvalReport(c, cfg, res); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, res)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "accuracy %.2f%% (%d images), mean cross-entropy %.4f\n\n", 100*res.Accuracy, res.N, res.Loss)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLASS\tPRECISION\tRECALL\tF1\tSUPPORT")
			for _, s := range res.PerClass {
				fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\n", s.Label, s.Precision, s.Recall, s.F1, s.Support)
			}
			tw.Flush()
			fmt.Fprintln(w, "\nconfusion (rows: true class, columns: predicted)")
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			var head []string
			for i := range res.Confusion {
				head = append(head, fmt.Sprint(i))
			}
			fmt.Fprintf(tw, "\t%s\t\n", strings.Join(head, "\t"))
			for i, row := range res.Confusion {
				var cells []string
				for _, v := range row {
					cells = append(cells, fmt.Sprint(v))
				}
				fmt.Fprintf(tw, "%d %s\t%s\t\n", i, res.PerClass[i].Label, strings.Join(cells, "\t"))
			}
			return tw.Flush()
		},
	}
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "print the top-K classes of each image",
		ArgsUsage: "MODEL.onnx IMAGE...",
		Flags:     append(inferFlags(), &cli.IntFlag{Name: "top", Value: 3, Usage: "show the `K` most likely classes"}),
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return fmt.Errorf("predict: expected MODEL.onnx and at least one IMAGE")
			}
			cfg, err := inferConfig(c, c.Args().First())
			if err != nil {
				return err
			}
			preds, err := train.PredictImages(c.Context, cfg, c.Args().Slice()[1:], c.Int("top"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, preds)
			}
			for _, p := range preds {
				var parts []string
				for _, t := range p.Top {
					parts = append(parts, fmt.Sprintf("%s %.4f", t.Label, t.Prob))
				}
				fmt.Fprintf(c.App.Writer, "%s: %s\n", p.Image, strings.Join(parts, ", "))
			}
			return nil
		},
	}
}
