package main

import (
	"fmt"
	"os"

	"github.com/graftml/graft/train/batch"
	"github.com/urfave/cli/v2"
)

// This file is `graft adapt` with several --model flags: each backbone is
// adapted to the same data with the same split and seed, and the batch
// table ends with a leaderboard.

// adaptManyFlags are the flags adapt adds for several models.
func adaptManyFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "out-dir", Usage: "with several --model: write each adapted model to `DIR`/<model name>.onnx"},
	}
	for _, f := range runnerFlags() {
		if f.Names()[0] != "report" { // adapt has --report already: one run's report, or the leaderboard's
			flags = append(flags, f)
		}
	}
	return flags
}

// adaptIsMany tells whether adapt was given several models or --out-dir.
func adaptIsMany(c *cli.Context) bool {
	return len(c.StringSlice("model")) > 1 || c.IsSet("out-dir")
}

// firstModel is the one --model of a single adapt.
func firstModel(c *cli.Context) string {
	if m := c.StringSlice("model"); len(m) > 0 {
		return m[0]
	}
	return ""
}

// adaptMany adapts every --model to --data.
func adaptMany(c *cli.Context) error {
	dir := c.String("out-dir")
	if dir == "" {
		return fmt.Errorf("adapt: %d models need --out-dir DIR (--out names one output)", len(c.StringSlice("model")))
	}
	if c.IsSet("out") {
		return fmt.Errorf("adapt: give --out for one model or --out-dir for several, not both")
	}
	if c.String("data") == "" {
		return fmt.Errorf("adapt: several models need --data")
	}
	if c.Bool("dry-run") {
		return fmt.Errorf("adapt: --dry-run takes one model")
	}
	cfg, err := adaptConfig(c)
	if err != nil {
		return err
	}
	cfg.Reporter = nil
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	var jobs []batch.Job
	for _, m := range c.StringSlice("model") {
		a := cfg
		a.Model, a.Out = m, outName(dir, m)
		jobs = append(jobs, batch.Job{Name: m, Kind: batch.KindAdapt, Adapt: a})
	}
	return runBatch(c, jobs)
}
