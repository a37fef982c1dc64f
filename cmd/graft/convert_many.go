package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/train/batch"
	"github.com/urfave/cli/v2"
)

// This file is `graft convert` with several inputs (MODEL, DIR or GLOB
// arguments and --out-dir), and the recipe flags it adds to convert.

// convertRecipeFlags are convert's recipe flags beyond cut, head and
// batch, and the flags of several inputs.
func convertRecipeFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "out-dir", Usage: "write each input's output to `DIR`/<input name>.onnx (several inputs)"},
		&cli.BoolFlag{Name: "fold-bn", Usage: "fold BatchNormalization into the Conv or Gemm before it (inference)"},
		&cli.BoolFlag{Name: "strip", Usage: "remove Dropout and Identity nodes"},
		inputShapeFlag(),
		&cli.StringSliceFlag{Name: "rename-input", Usage: "rename graph input `OLD=NEW` (repeatable)"},
		&cli.StringSliceFlag{Name: "rename-output", Usage: "rename graph output `OLD=NEW` (repeatable)"},
	}, runnerFlags()...)
}

// convertIsMany tells whether convert was given several inputs, a folder
// or glob, or --out-dir.
func convertIsMany(c *cli.Context) bool {
	if c.IsSet("out-dir") || c.NArg() != 1 {
		return c.NArg() > 0
	}
	a := c.Args().First()
	if strings.ContainsAny(a, "*?[") {
		return true
	}
	st, err := os.Stat(a)
	return err == nil && st.IsDir()
}

// applyRecipeFlags adds --batch-dim, --fold-bn, --strip and the renames
// to cfg.
func applyRecipeFlags(c *cli.Context, cfg *graph.ConvertConfig) error {
	cfg.FoldBN, cfg.Strip = c.Bool("fold-bn"), c.Bool("strip")
	var err error
	if cfg.Shapes, err = inputShapes(c); err != nil {
		return err
	}
	if cfg.RenameInputs, err = renames(c, "rename-input"); err != nil {
		return err
	}
	cfg.RenameOutputs, err = renames(c, "rename-output")
	return err
}

func renames(c *cli.Context, flag string) (map[string]string, error) {
	var m map[string]string
	for _, s := range c.StringSlice(flag) {
		old, nw, ok := strings.Cut(s, "=")
		if !ok || old == "" || nw == "" {
			return nil, fmt.Errorf("--%s %q: use OLD=NEW", flag, s)
		}
		if m == nil {
			m = map[string]string{}
		}
		if _, dup := m[old]; dup {
			return nil, fmt.Errorf("--%s: %q is renamed twice", flag, old)
		}
		m[old] = nw
	}
	return m, nil
}

// expandInputs turns MODEL, DIR and GLOB arguments into model files: a
// folder gives its *.onnx files (not recursively), a glob its matches.
// A glob or folder that matches nothing is an error naming it.
func expandInputs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			m, _ := filepath.Glob(filepath.Join(a, "*.onnx"))
			if len(m) == 0 {
				return nil, fmt.Errorf("folder %s holds no .onnx file", a)
			}
			slices.Sort(m)
			out = append(out, m...)
			continue
		} else if err == nil {
			out = append(out, a)
			continue
		}
		if strings.ContainsAny(a, "*?[") {
			m, err := filepath.Glob(a)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", a, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("%q matches no file", a)
			}
			slices.Sort(m)
			out = append(out, m...)
			continue
		}
		out = append(out, a) // missing: Check names it
	}
	return out, nil
}

// outName is DIR/<input name without .onnx>.onnx.
func outName(dir, in string) string {
	base := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	return filepath.Join(dir, base+".onnx")
}

// convertMany applies one recipe to every input.
func convertMany(c *cli.Context, recipe graph.ConvertConfig) error {
	dir := c.String("out-dir")
	if dir == "" {
		return fmt.Errorf("convert: %d inputs need --out-dir DIR (--out names one output)", c.NArg())
	}
	if c.IsSet("out") {
		return fmt.Errorf("convert: give --out for one input or --out-dir for several, not both")
	}
	inputs, err := expandInputs(c.Args().Slice())
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	var jobs []batch.Job
	for _, in := range inputs {
		cfg := recipe
		cfg.Model, cfg.Out = in, outName(dir, in)
		jobs = append(jobs, batch.Job{Name: in, Kind: batch.KindConvert, Convert: cfg})
	}
	return runBatch(c, jobs)
}
