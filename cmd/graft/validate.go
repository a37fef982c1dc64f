package main

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/urfave/cli/v2"
)

// Flag checks. Every command checks all of its flag values, and the
// combinations of them, when it starts, before it reads a model or an
// image: a bad value is a usage error (exit 2) naming the flag as typed,
// never a failure after minutes of work. The library checks its options
// too, but only where it can: some of them it learns about late.

// check runs checks in order and returns the first error.
func check(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// typed is the name a flag was given on the command line, with its
// dashes: --head-epochs for the epochs flag when the user wrote that.
func typed(c *cli.Context, name string) string {
	names := []string{name}
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), name) {
			names = f.Names()
		}
	}
	if args, ok := c.App.Metadata["args"].([]string); ok {
		for _, a := range args {
			if a == "--" {
				break
			}
			n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if strings.HasPrefix(a, "-") && slices.Contains(names, n) {
				return dashes(n)
			}
		}
	}
	return dashes(name)
}

// intAtLeast: the flag, when set or defaulted, is at least min.
func intAtLeast(c *cli.Context, name string, min int) error {
	if v := c.Int(name); v < min {
		return usagef(c, "%s %d: must be at least %d", typed(c, name), v, min)
	}
	return nil
}

// floatIn: lo <= v (or lo < v when loOpen) and v < hi (or v <= hi when
// hiClosed); hi = +Inf for no upper bound.
func floatIn(c *cli.Context, name string, lo float64, loOpen bool, hi float64, hiClosed bool) error {
	v := c.Float64(name)
	ok := !math.IsNaN(v) && !math.IsInf(v, 0) && v >= lo && (!loOpen || v > lo) && (v < hi || hiClosed && v == hi)
	if ok {
		return nil
	}
	var want string
	switch {
	case math.IsInf(hi, 1) && loOpen:
		want = fmt.Sprintf("must be above %g", lo)
	case math.IsInf(hi, 1):
		want = fmt.Sprintf("must be %g or more", lo)
	default:
		l, r := "[", ")"
		if loOpen {
			l = "("
		}
		if hiClosed {
			r = "]"
		}
		want = fmt.Sprintf("must be in %s%g, %g%s", l, lo, hi, r)
	}
	return usagef(c, "%s %g: %s", typed(c, name), v, want)
}

// oneOf: a string flag's value is one of choices; the error lists them.
func oneOf(c *cli.Context, name string, choices ...string) error {
	v := c.String(name)
	if slices.Contains(choices, v) {
		return nil
	}
	msg := fmt.Sprintf("%s %q: use %s or %s", typed(c, name), v, strings.Join(choices[:len(choices)-1], ", "), choices[len(choices)-1])
	if s := nearest(v, choices); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return usagef(c, "%s", msg)
}

// needs: flag name, when given, needs the condition other describes.
func needs(c *cli.Context, name string, ok bool, format string, args ...any) error {
	if c.IsSet(name) && !ok {
		return usagef(c, "%s %s", typed(c, name), fmt.Sprintf(format, args...))
	}
	return nil
}

// batchDim checks --batch-dim: dynamic or a positive number.
func batchDim(c *cli.Context, name string) error {
	v := c.String(name)
	if v == "" || v == "dynamic" {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return usagef(c, "%s %q: use dynamic or a positive number", typed(c, name), v)
	}
	return nil
}

// tensorName checks --output-name: an ONNX tensor name graft can write.
func tensorName(c *cli.Context, name string) error {
	if c.IsSet(name) && strings.TrimSpace(c.String(name)) == "" {
		return usagef(c, "%s: give a name for the output", typed(c, name))
	}
	return nil
}

// normalisation checks --mean and --std: 1 or 3 numbers, std above 0.
func normalisation(c *cli.Context) error {
	for _, name := range []string{"mean", "std"} {
		vs, err := floatList(c, name)
		if err != nil {
			return usagef(c, "%s", err)
		}
		if vs == nil {
			continue
		}
		if len(vs) != 1 && len(vs) != 3 {
			return usagef(c, "%s %s: give 1 or 3 numbers (one per channel)", typed(c, name), c.String(name))
		}
		for _, v := range vs {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || name == "std" && v <= 0 {
				return usagef(c, "%s %s: every value must be a finite number%s", typed(c, name), c.String(name), map[bool]string{true: " above 0"}[name == "std"])
			}
		}
	}
	return nil
}

// maxMemory checks --max-memory.
func maxMemory(c *cli.Context) error {
	if c.Command.Flags == nil || !slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "max-memory") }) {
		return nil
	}
	if _, err := onnx.ParseSize(c.String("max-memory")); err != nil {
		return usagef(c, "%s: %s", typed(c, "max-memory"), err)
	}
	return nil
}

// resize checks --resize, when given.
func resize(c *cli.Context) error {
	if c.IsSet("resize") {
		return intAtLeast(c, "resize", 1)
	}
	return nil
}

// checkAdaptFlags is every check adapt makes before it starts.
func checkAdaptFlags(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef(c, "adapt takes no positional arguments (got %q); give the model with --model and the images with --data", c.Args().First())
	}
	if (firstModel(c) == "") != (c.String("data") == "") {
		return usagef(c, "give both --model and --data (or neither, for the shipped sample)")
	}
	sgd := c.String("optimizer") == "sgd"
	finetune := c.Int("finetune-epochs") > 0
	head, headErr := parseHead(c.String("head"), 0)
	if headErr != nil {
		return usagef(c, "%s", headErr)
	}
	return check(
		oneOf(c, "optimizer", "adam", "adamw", "sgd"),
		oneOf(c, "schedule", "constant", "cosine", "step"),
		oneOf(c, "bn", "frozen", "train"),
		intAtLeast(c, "epochs", 1),
		floatIn(c, "lr", 0, true, math.Inf(1), false),
		intAtLeast(c, "batch", 1),
		floatIn(c, "momentum", 0, false, 1, false),
		floatIn(c, "weight-decay", 0, false, math.Inf(1), false),
		floatIn(c, "backbone-lr-mult", 0, true, math.Inf(1), false),
		floatIn(c, "dropout", 0, false, 1, false),
		floatIn(c, "label-smoothing", 0, false, 1, false),
		floatIn(c, "val-split", 0, false, 1, false),
		intAtLeast(c, "warmup", 0),
		intAtLeast(c, "patience", 0),
		intAtLeast(c, "unfreeze-last", 0),
		intAtLeast(c, "finetune-epochs", 0),
		resize(c),
		batchDim(c, "batch-dim"),
		tensorName(c, "output-name"),
		normalisation(c),
		maxMemory(c),
		needs(c, "warmup", c.Int("warmup") <= c.Int("epochs"), "%d: warmup is longer than the %d head epochs (%s)", c.Int("warmup"), c.Int("epochs"), typed(c, "epochs")),
		needs(c, "warmup", !finetune || c.Int("warmup") <= c.Int("finetune-epochs"), "%d: warmup is longer than the %d fine-tuning epochs (--finetune-epochs)", c.Int("warmup"), c.Int("finetune-epochs")),
		needs(c, "momentum", sgd || c.Float64("momentum") == 0, "applies to --optimizer sgd, not %s", c.String("optimizer")),
		needs(c, "nesterov", sgd || !c.Bool("nesterov"), "applies to --optimizer sgd, not %s", c.String("optimizer")),
		needs(c, "nesterov", !c.Bool("nesterov") || c.Float64("momentum") > 0, "needs --momentum above 0"),
		needs(c, "dropout", len(head.Hidden) > 0 || c.Float64("dropout") == 0, "applies to an MLP head (--head mlp:256)"),
		needs(c, "bn", finetune || c.String("bn") != "train", "train applies to fine-tuning; give --finetune-epochs N"),
		needs(c, "bn", c.String("bn") != "train" || c.Int("batch") >= 2, "train needs --batch 2 or more: batch statistics of one image normalize it away"),
		needs(c, "trainable", finetune, "selects backbone weights to fine-tune; give --finetune-epochs N as well"),
		needs(c, "unfreeze-last", finetune, "unfreezes backbone layers to fine-tune; give --finetune-epochs N as well"),
		needs(c, "backbone-lr-mult", finetune, "applies to fine-tuning; give --finetune-epochs N as well"),
		trainablePattern(c),
		logFile(c),
	)
}

func trainablePattern(c *cli.Context) error {
	if s := c.String("trainable"); s != "" {
		if _, err := regexp.Compile(s); err != nil {
			return usagef(c, "%s %q: %v", typed(c, "trainable"), s, err)
		}
	}
	return nil
}

func logFile(c *cli.Context) error {
	if s := c.String("log"); s != "" {
		if ext := strings.ToLower(filepath.Ext(s)); ext != ".csv" && ext != ".jsonl" {
			return usagef(c, "%s %s: use a .csv or .jsonl file", typed(c, "log"), s)
		}
	}
	return nil
}

// checkInferFlags is what eval and predict check before they start.
func checkInferFlags(c *cli.Context) error {
	return check(
		intAtLeast(c, "batch", 1),
		resize(c),
		normalisation(c),
		maxMemory(c),
		labelsFlag(c),
	)
}

// labelsFlag checks --labels a,b,c (a FILE is read when used).
func labelsFlag(c *cli.Context) error {
	if !c.IsSet("labels") {
		return nil
	}
	labels, err := readLabels(c.String("labels"))
	if err != nil {
		return usagef(c, "%s: %v", typed(c, "labels"), err)
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if l == "" {
			return usagef(c, "%s %s: a label is empty", typed(c, "labels"), c.String("labels"))
		}
		if seen[l] {
			return usagef(c, "%s: %q appears twice", typed(c, "labels"), l)
		}
		seen[l] = true
	}
	if len(labels) < 2 {
		return usagef(c, "%s %s: give at least 2 class names", typed(c, "labels"), c.String("labels"))
	}
	return nil
}
