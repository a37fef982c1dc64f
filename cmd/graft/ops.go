package main

import (
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/graftml/graft/graph"
	"github.com/urfave/cli/v2"
)

func opsCommand() *cli.Command {
	return &cli.Command{
		Name:  "ops",
		Usage: "list the ONNX ops graft supports, with opset ranges and whether each has a gradient",
		Description: `Examples:
   graft ops
   graft ops --json`,
		Flags: []cli.Flag{quietFlag(), jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef(c, "ops takes no arguments (got %q)", c.Args().First())
			}
			ops := graph.Ops()
			if c.Bool("json") {
				return writeJSON(c.App.Writer, ops)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OP\tFAMILY\tOPSETS\tGRADIENT")
			for _, o := range ops {
				g := "no"
				if o.Gradient {
					g = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d-%d\t%s\n", o.Op, o.Family, o.MinOpset, o.MaxOpset, g)
			}
			fmt.Fprintf(tw, "\n%d ops\n", len(ops))
			return tw.Flush()
		},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
