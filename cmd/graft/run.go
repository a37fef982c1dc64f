package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a model on input tensors and print (and optionally save) its outputs",
		ArgsUsage: "MODEL.onnx",
		Description: `Examples:
   graft run model.onnx --input input_0.pb
   graft run model.onnx --input image=x.npy --out outputs/ --json`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "input", Usage: "`NAME=FILE` or FILE: a TensorProto (.pb) or NumPy (.npy) file; a FILE without a name binds to the next unbound model input"},
			&cli.StringFlag{Name: "out", Usage: "write each output to `DIR`/<output name>.pb"},
			inputShapeFlag(),
			&cli.Int64Flag{Name: "seed", Usage: "random `SEED` of the values of inputs given only by --input-shape"},
			quietFlag(), jsonFlag(), maxMemoryFlag(), threadsFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := maxMemory(c); err != nil {
				return err
			}
			path, lim, err := modelArg(c)
			if err != nil {
				return err
			}
			shapes, err := inputShapes(c)
			if err != nil {
				return err
			}
			res, err := graph.RunFiles(c.Context, graph.RunConfig{Model: path, Inputs: c.StringSlice("input"), OutDir: c.String("out"), Limits: lim, Shapes: shapes, Seed: c.Int64("seed")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, runJSON(res))
			}
			printOutputs(c.App.Writer, res)
			return nil
		},
	}
}

type outputJSON struct {
	Name   string    `json:"name"`
	Type   string    `json:"type"`
	Shape  []int     `json:"shape"`
	First  []float64 `json:"first"`
	File   string    `json:"file,omitempty"`
	Argmax int       `json:"argmax"`
}

const shown = 8

func runJSON(res *graph.RunResult) []outputJSON {
	var out []outputJSON
	for i, t := range res.Outputs {
		o := outputJSON{Name: t.Name, Type: t.DType.String(), Shape: t.Shape, First: firstValues(t, shown), Argmax: argmax(t)}
		if o.Shape == nil {
			o.Shape = []int{}
		}
		if i < len(res.Files) {
			o.File = res.Files[i]
		}
		out = append(out, o)
	}
	return out
}

func printOutputs(w io.Writer, res *graph.RunResult) {
	for i, t := range res.Outputs {
		var vals []string
		for _, v := range firstValues(t, shown) {
			vals = append(vals, fmt.Sprintf("%.6g", v))
		}
		more := ""
		if t.Len() > shown {
			more = " ..."
		}
		fmt.Fprintf(w, "%s %s %v: %s%s\n", t.Name, t.DType, t.Shape, strings.Join(vals, " "), more)
		if i < len(res.Files) {
			fmt.Fprintf(w, "  written to %s\n", res.Files[i])
		}
	}
}

func firstValues(t *onnx.Tensor, n int) []float64 {
	out := []float64{}
	for i := 0; i < t.Len() && i < n; i++ {
		if t.DType == onnx.Int64 {
			out = append(out, float64(t.I[i]))
		} else {
			out = append(out, float64(t.F[i]))
		}
	}
	return out
}

func argmax(t *onnx.Tensor) int {
	best := -1
	for i, v := range t.F {
		if best < 0 || v > t.F[best] {
			best = i
		}
	}
	return best
}
