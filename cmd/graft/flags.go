package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
	"github.com/urfave/cli/v2"
)

// Flags several commands share, made anew for each command (tidyHelp
// edits them).
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout (keys snake_case)"}
}

func maxMemoryFlag() cli.Flag {
	return &cli.StringFlag{Name: "max-memory", Value: "4GiB", Usage: "refuse models declaring more tensor data than `SIZE` (e.g. 512MiB, 8GiB)"}
}

func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or notes on stderr"}
}

func threadsFlag() cli.Flag {
	return &cli.IntFlag{Name: "threads", DefaultText: "all", Usage: "cores `N` one computation may use; with several jobs, the cores of each job"}
}

// applyThreads is the Before hook of every command with --threads: the
// kernels of everything the command computes split their work into at
// most that many goroutines (graph.SetThreads).
func applyThreads(c *cli.Context) error {
	t := c.Int("threads")
	if t < 0 || c.IsSet("threads") && t == 0 {
		return usagef(c, "--threads %d: must be at least 1", t)
	}
	graph.SetThreads(t)
	return nil
}

func inputShapeFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "input-shape", Usage: "bind the symbolic dimensions of input `NAME=1x3xHxW` (repeatable), e.g. the height and width of a model declaring [N,3,H,W]; --batch, where given, replaces its first dimension"}
}

// inputShapes reads --input-shape NAME=1x3xHxW values. On a command with
// --batch, a first dimension other than the batch gets a note saying
// --batch wins.
func inputShapes(c *cli.Context) (map[string][]int, error) {
	vals := c.StringSlice("input-shape")
	if len(vals) == 0 {
		return nil, nil
	}
	out := map[string][]int{}
	for _, v := range vals {
		name, dims, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, usagef(c, "--input-shape %q: use NAME=1x3x224x224", v)
		}
		if _, dup := out[name]; dup {
			return nil, usagef(c, "--input-shape %q: input %q has a shape already", v, name)
		}
		var shape []int
		for _, d := range strings.Split(dims, "x") {
			n, err := strconv.Atoi(d)
			if err != nil || n < 1 {
				return nil, usagef(c, "--input-shape %q: %q is not a positive dimension", v, d)
			}
			shape = append(shape, n)
		}
		if hasFlag(c.Command, "batch") && shape[0] != c.Int("batch") && shape[0] != 1 {
			notef(c, "note: --input-shape %s: the batch is --batch %d, not %d", v, c.Int("batch"), shape[0])
		}
		out[name] = shape
	}
	return out, nil
}

func maxPixelsFlag() cli.Flag {
	return &cli.Int64Flag{Name: "max-pixels", Value: dataset.DefaultMaxPixels, Usage: "refuse images whose header declares more than `N` pixels (width x height), before decoding them"}
}

// maxPixels reads --max-pixels.
func maxPixels(c *cli.Context) (int64, error) {
	n := c.Int64("max-pixels")
	if n < 1 {
		return 0, usagef(c, "--max-pixels %d: must be at least 1", n)
	}
	return n, nil
}

// limits maps --max-memory to onnx.Limits.
func limits(c *cli.Context) (onnx.Limits, error) {
	n, err := onnx.ParseSize(c.String("max-memory"))
	if err != nil {
		return onnx.Limits{}, fmt.Errorf("--max-memory: %w", err)
	}
	return onnx.Limits{MaxBytes: n}, nil
}

// oneArg returns the single positional argument a command takes.
func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef(c, "%s: expected one %s argument, got %d", c.Command.Name, what, c.NArg())
	}
	return c.Args().First(), nil
}

// modelArg returns the MODEL.onnx argument of a command that takes one,
// with the --max-memory limit.
func modelArg(c *cli.Context) (string, onnx.Limits, error) {
	path, err := oneArg(c, "MODEL.onnx")
	if err != nil {
		return "", onnx.Limits{}, err
	}
	lim, err := limits(c)
	return path, lim, err
}

// readLabels reads --labels: a comma-separated list, or a FILE of one
// name per line (blank lines and lines starting with # ignored).
func readLabels(s string) ([]string, error) {
	if !strings.Contains(s, ",") {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("%s is neither a file of class names nor a comma-separated list (%v)", s, errors.Unwrap(err))
		}
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		return out, nil
	}
	var out []string
	for _, l := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(l))
	}
	return out, nil
}

// hasFlag tells whether cmd takes the flag named name.
func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}
