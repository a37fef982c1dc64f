package main

import (
	"fmt"
	"strings"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/urfave/cli/v2"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "rewrite a model: cut it into a feature extractor, replace its classifier, add softmax, change its batch dimension or output name",
		ArgsUsage: "MODEL.onnx | MODEL|DIR|GLOB... --out-dir DIR",
		Description: `The input model is never overwritten, nor any existing file without --force.
A feature extractor's output is named "features", a new head's "logits" (or
"probabilities" with --softmax), unless --output-name says otherwise.

Examples:
   graft convert resnet18.onnx --out features.onnx --cut auto --batch-dim dynamic
   graft convert resnet18.onnx --out head7.onnx --head 7 --labels a,b,c,d,e,f,g --softmax
   graft convert adapted.onnx --out deploy.onnx --softmax --batch-dim dynamic --output-name probs
   graft convert models/*.onnx --out-dir features --cut auto --batch-dim dynamic --jobs 2 --report out`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the converted model to `FILE` (one input; several take --out-dir)"},
			&cli.StringFlag{Name: "cut", Usage: "`auto` (the input of the final classifier) or a TENSOR name: keep the graph up to it"},
			&cli.IntFlag{Name: "head", Usage: "replace the classifier with a fresh `N`-class linear head (implies --cut auto)"},
			&cli.StringFlag{Name: "labels", Usage: "class names of the new head, in output order: a comma-separated list or a `FILE` of one per line"},
			&cli.Int64Flag{Name: "seed", Usage: "random `SEED` of the head's initialisation"},
			&cli.BoolFlag{Name: "softmax", Usage: "append Softmax so that the classifier (a new head, or the model's own) outputs probabilities"},
			&cli.StringFlag{Name: "batch-dim", Usage: "`dynamic` or N: make the batch dimension symbolic or fixed"},
			&cli.StringFlag{Name: "batch", Usage: "deprecated: the old name of --batch-dim", Hidden: true},
			&cli.StringFlag{Name: "output-name", Usage: "name of the written model's output `NAME` (features, logits or probabilities)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing output file"},
			quietFlag(), jsonFlag(), maxMemoryFlag(),
		}, convertRecipeFlags()...),
		Action: func(c *cli.Context) error {
			if err := checkConvertFlags(c); err != nil {
				return err
			}
			lim, err := limits(c)
			if err != nil {
				return err
			}
			batch := c.String("batch-dim")
			if c.IsSet("batch") {
				batch = c.String("batch")
				notef(c, "note: --batch on convert is the old name of --batch-dim (--batch is the batch size everywhere else); use --batch-dim %s", batch)
			}
			cfg := graph.ConvertConfig{Out: c.String("out"), Cut: c.String("cut"), Batch: batch, Force: c.Bool("force"), Limits: lim,
				Softmax: c.Bool("softmax"), OutputName: c.String("output-name")}
			if err := applyRecipeFlags(c, &cfg); err != nil {
				return usagef(c, "%v", err)
			}
			if c.IsSet("head") {
				cfg.Head = &surgery.HeadSpec{Classes: c.Int("head"), Seed: c.Int64("seed")}
			}
			if c.IsSet("labels") {
				if cfg.Labels, err = readLabels(c.String("labels")); err != nil {
					return usagef(c, "--labels: %v", err)
				}
			}
			if convertIsMany(c) {
				return convertMany(c, cfg)
			}
			if cfg.Model, err = oneArg(c, "MODEL.onnx"); err != nil {
				return err
			}
			var res *graph.ConvertResult
			err = phase(quietOr(c), "convert", func() (err error) {
				res, err = graph.Convert(c.Context, cfg)
				return err
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, res)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "wrote %s: %d nodes (%d removed, %d added)\n", res.Out, res.Nodes, res.Removed, res.Added)
			if res.Cut != "" {
				fmt.Fprintf(w, "cut at %q\n", res.Cut)
			}
			for _, in := range res.Inputs {
				fmt.Fprintf(w, "input  %s %s [%s]\n", in.Name, in.Type, strings.Join(in.Shape, " "))
			}
			for _, out := range res.Outputs {
				fmt.Fprintf(w, "output %s %s [%s]\n", out.Name, out.Type, strings.Join(out.Shape, " "))
			}
			return nil
		},
	}
}

// checkConvertFlags is every check convert makes before it reads the
// model.
func checkConvertFlags(c *cli.Context) error {
	if c.String("out") == "" && !convertIsMany(c) {
		return usagef(c, "--out: give the file to write (convert never overwrites its input), or --out-dir DIR for several inputs")
	}
	if c.IsSet("batch") && c.IsSet("batch-dim") {
		return usagef(c, "--batch is the old name of --batch-dim; give one of them")
	}
	head := c.IsSet("head")
	if head {
		if err := intAtLeast(c, "head", 2); err != nil {
			return err
		}
	}
	if c.IsSet("labels") {
		if !head {
			return usagef(c, "--labels names the classes of a new head; give --head N (eval and predict take --labels for a model's own classes)")
		}
		if err := labelsFlag(c); err != nil {
			return err
		}
		if labels, _ := readLabels(c.String("labels")); len(labels) != c.Int("head") {
			return usagef(c, "--labels: %d names for a head of %d classes", len(labels), c.Int("head"))
		}
	}
	if c.Bool("softmax") && !head && c.String("cut") != "" {
		return usagef(c, "--softmax applies to a classifier; --cut without --head writes a feature extractor")
	}
	if c.IsSet("seed") && !head {
		return usagef(c, "--seed initialises a new head; give --head N")
	}
	return check(
		batchDim(c, "batch-dim"),
		batchDim(c, "batch"),
		tensorName(c, "output-name"),
		maxMemory(c),
	)
}
