package main

import (
	"fmt"
	"io"

	"github.com/graftml/graft/train"
	"github.com/graftml/graft/train/report"
	"github.com/urfave/cli/v2"
)

func reportFlag() cli.Flag {
	return &cli.StringFlag{Name: "report", Usage: "write `DIR`/report.html, DIR/report.json and their PNGs: curves, confusion heat map, per-class scores, the worst mistakes, settings"}
}

func findLRFlag() cli.Flag {
	return &cli.BoolFlag{Name: "find-lr", Usage: "run the learning-rate finder on the head (an exponentially rising rate on the backbone features), print the suggested rate and stop"}
}

// quietOr is the command's progress display, or nil with --quiet.
func quietOr(c *cli.Context) *progress {
	if c.Bool("quiet") {
		return nil
	}
	return newProgress(c.App.ErrWriter)
}

// writeAdaptReport writes adapt's --report, if asked for.
func writeAdaptReport(c *cli.Context, cfg train.AdaptConfig, res *train.AdaptResult) error {
	dir := c.String("report")
	if dir == "" {
		return nil
	}
	r, err := report.FromAdapt(cfg, res)
	if err != nil {
		return err
	}
	return writeReport(c, r, dir)
}

// writeEvalReport writes eval's --report, if asked for.
func writeEvalReport(c *cli.Context, cfg train.InferConfig, res *train.EvalResult) error {
	dir := c.String("report")
	if dir == "" {
		return nil
	}
	r, err := report.FromEval(cfg, c.String("data"), res)
	if err != nil {
		return err
	}
	return writeReport(c, r, dir)
}

func writeReport(c *cli.Context, r *report.Report, dir string) error {
	if err := r.Write(dir); err != nil {
		return err
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "report: %s/%s\n", dir, report.HTMLFile)
	}
	return nil
}

// printLRFind prints the learning-rate finder's suggestion.
func printLRFind(w io.Writer, f *train.LRFindResult) {
	fmt.Fprintf(w, "lr finder    %d steps from %.2g to %.2g", len(f.LR), f.LR[0], f.LR[len(f.LR)-1])
	if f.Stopped != "" {
		fmt.Fprintf(w, " (stopped: %s)", f.Stopped)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "lowest loss  at learning rate %.3g\n", f.MinLossLR)
	fmt.Fprintf(w, "suggested    --lr %.2g (fastai's valley rule: where the loss falls steadily, well before it diverges)\n", f.Suggested)
}
