package main

import (
	"fmt"
	"strings"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/graph"
	"github.com/urfave/cli/v2"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "rewrite a model: cut it into a feature extractor, replace its classifier, add softmax, change its batch dimension",
		ArgsUsage: "MODEL.onnx | MODEL|DIR|GLOB... --out-dir DIR",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the converted model to `FILE`"},
			&cli.StringFlag{Name: "cut", Usage: "`auto` (the input of the final classifier) or a TENSOR name: keep the graph up to it"},
			&cli.IntFlag{Name: "head", Usage: "replace the classifier with a fresh `N`-class linear head (implies --cut auto)"},
			&cli.StringFlag{Name: "labels", Usage: "comma-separated class names for --head, in output order"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random seed of the head's initialisation"},
			&cli.BoolFlag{Name: "softmax", Usage: "append Softmax so the model outputs probabilities"},
			&cli.StringFlag{Name: "batch", Usage: "`dynamic` or N: make the batch dimension symbolic or fixed"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing output file"},
			jsonFlag, maxMemoryFlag,
		}, convertRecipeFlags()...),
		Action: func(c *cli.Context) error {
			lim, err := limits(c)
			if err != nil {
				return err
			}
			cfg := graph.ConvertConfig{Cut: c.String("cut"), Batch: c.String("batch"), Force: c.Bool("force"), Limits: lim}
			if err := applyRecipeFlags(c, &cfg); err != nil {
				return err
			}
			if c.IsSet("head") {
				cfg.Head = &surgery.HeadSpec{Classes: c.Int("head"), Softmax: c.Bool("softmax"), Seed: c.Int64("seed")}
			} else if c.Bool("softmax") {
				return fmt.Errorf("--softmax goes with --head (a model's own classifier may already end in Softmax)")
			}
			if s := c.String("labels"); s != "" {
				for _, l := range strings.Split(s, ",") {
					cfg.Labels = append(cfg.Labels, strings.TrimSpace(l))
				}
			}
			if convertIsMany(c) {
				return convertMany(c, cfg)
			}
			if cfg.Model, err = oneArg(c, "MODEL.onnx"); err != nil {
				return err
			}
			if cfg.Out = c.String("out"); cfg.Out == "" {
				return fmt.Errorf("convert: give --out FILE.onnx (or --out-dir DIR)")
			}
			res, err := graph.Convert(c.Context, cfg)
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
