package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a model: inputs, outputs, ops, parameters, nodes and the suggested cut point",
		ArgsUsage: "MODEL.onnx",
		Description: `Examples:
   graft inspect resnet18.onnx
   graft inspect resnet18.onnx --json | jq .cut`,
		Flags: []cli.Flag{inputShapeFlag(), quietFlag(), jsonFlag(), maxMemoryFlag()},
		Action: func(c *cli.Context) error {
			if err := maxMemory(c); err != nil {
				return err
			}
			path, lim, err := modelArg(c)
			if err != nil {
				return err
			}
			m, err := onnx.ReadFile(path, lim)
			if err != nil {
				return err
			}
			shapes, err := inputShapes(c)
			if err != nil {
				return err
			}
			r := graph.Inspect(m, graph.Options{Shapes: shapes})
			if c.Bool("json") {
				return writeJSON(c.App.Writer, r)
			}
			return printReport(c.App.Writer, r)
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printReport(w io.Writer, r *graph.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", r.File)
	fmt.Fprintf(tw, "producer\t%s\n", r.Producer)
	var opsets []string
	for d, v := range r.Opsets {
		opsets = append(opsets, fmt.Sprintf("%s %d", d, v))
	}
	fmt.Fprintf(tw, "IR version\t%d\n", r.IRVersion)
	fmt.Fprintf(tw, "opsets\t%s\n", strings.Join(opsets, ", "))
	for _, in := range r.Inputs {
		fmt.Fprintf(tw, "input\t%s %s [%s]\n", in.Name, in.Type, strings.Join(in.Shape, " "))
	}
	for _, out := range r.Outputs {
		fmt.Fprintf(tw, "output\t%s %s [%s]\n", out.Name, out.Type, strings.Join(out.Shape, " "))
	}
	fmt.Fprintf(tw, "parameters\t%d (%s)\n", r.Params, humanBytes(r.ParamBytes))
	var hist []string
	for _, op := range graph.OpNames(r.Ops) {
		hist = append(hist, fmt.Sprintf("%s %d", op, r.Ops[op]))
	}
	fmt.Fprintf(tw, "ops\t%s\n", strings.Join(hist, ", "))
	if len(r.Unsupported) > 0 {
		fmt.Fprintf(tw, "unsupported\t%s\n", strings.Join(r.Unsupported, ", "))
	}
	if r.Cut != nil {
		fmt.Fprintf(tw, "cut\t%q (input of %s %q; a new head replaces %s)\n", r.Cut.Tensor, r.Cut.Kind, r.Cut.Classifier, plural(len(r.Cut.Removed), "node"))
	} else {
		fmt.Fprintf(tw, "cut\tnone found: %s\n", r.CutError)
	}
	for _, k := range sortedKeys(r.Metadata) {
		fmt.Fprintf(tw, "metadata %s\t%s\n", k, r.Metadata[k])
	}
	if r.BuildError != "" {
		fmt.Fprintf(tw, "shapes\tunknown: %s\n", r.BuildError)
	}
	for _, name := range sortedKeys(r.ShapesAt) {
		fmt.Fprintf(tw, "shapes at\t%s %v\n", name, r.ShapesAt[name])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOP\tOUTPUT\tSHAPE\tPARAMS")
	for _, n := range r.Nodes {
		shape := "?"
		if n.Shape != nil {
			shape = fmt.Sprint(n.Shape)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", n.Name, n.Op, n.Output, shape, n.Params)
	}
	return tw.Flush()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
