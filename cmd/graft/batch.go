package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/graftml/graft/train/batch"
	"github.com/urfave/cli/v2"
)

// This file is `graft batch MANIFEST.yaml` and the runner that it, `graft
// convert` with several inputs and `graft adapt` with several models
// share: flags, progress, the final table, the report.

func batchCommand() *cli.Command {
	return &cli.Command{
		Name:      "batch",
		Usage:     "run the convert and adapt jobs of a YAML manifest, several at once",
		ArgsUsage: "MANIFEST.yaml",
		Description: `A manifest lists jobs; each has a name, a model, and a convert recipe or
adapt settings (the flags of those commands, in snake_case):

  out_dir: out              # outputs: out_dir/<name>.onnx unless a job gives out
  jobs:
    - name: resnet18-features
      model: resnet18.onnx
      convert: {cut: auto, batch_dim: dynamic, fold_bn: true}
    - name: resnet18-pets
      model: resnet18.onnx
      adapt: {data: photos, epochs: 20}

Paths are relative to the manifest's folder. Unknown keys are errors.

Examples:
   graft batch jobs.yaml
   graft batch jobs.yaml --jobs 2 --threads 1 --report runs
   graft batch jobs.yaml --resume`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "replace outputs that exist"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
			jsonFlag(), maxMemoryFlag(), maxPixelsFlag(),
		}, runnerFlags()...),
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "MANIFEST.yaml")
			if err != nil {
				return err
			}
			lim, err := limits(c)
			if err != nil {
				return err
			}
			px, err := maxPixels(c)
			if err != nil {
				return err
			}
			_, jobs, err := batch.ReadManifest(path, lim, px)
			if err != nil {
				return err
			}
			// output folders are made, as --out-dir is
			for i := range jobs {
				if err := os.MkdirAll(filepath.Dir(jobs[i].Out()), 0o777); err != nil {
					return fmt.Errorf("job %q: %w", jobs[i].Name, err)
				}
			}
			return runBatch(c, jobs)
		},
	}
}

// runnerFlags are the flags of every command that runs several jobs.
func runnerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "jobs", Usage: "run `N` jobs at once (default: cores / --threads; without --threads, one per core for convert jobs, one at a time on all cores with adapt jobs)"},
		threadsFlag(),
		&cli.StringFlag{Name: "report", Usage: "write `DIR`/report.json and DIR/index.html"},
		&cli.BoolFlag{Name: "resume", Usage: "skip jobs whose output exists and verifies; redo the rest"},
		&cli.Float64Flag{Name: "parity-tol", Usage: "fail a job whose output differs from its source by more than `F` (relative) on the unchanged part (default 1e-4)"},
	}
}

// runBatch runs jobs with the runner flags, prints progress on stderr
// and the table (or JSON) on stdout, and writes --report. It returns an
// error when a job did not succeed, so the exit status is 1.
func runBatch(c *cli.Context, jobs []batch.Job) error {
	if c.Int("jobs") < 0 {
		return fmt.Errorf("--jobs %d: must be at least 1", c.Int("jobs"))
	}
	if c.Int("threads") < 0 {
		return fmt.Errorf("--threads %d: must be at least 1", c.Int("threads"))
	}
	if tol := c.Float64("parity-tol"); tol < 0 {
		return fmt.Errorf("--parity-tol %g: must not be negative", tol)
	} else if tol > 0 {
		for i := range jobs {
			if jobs[i].ParityTol == 0 {
				jobs[i].ParityTol = tol
			}
		}
	}
	cfg := batch.Config{Jobs: jobs, Parallel: c.Int("jobs"), Threads: c.Int("threads"), Force: c.Bool("force"), Resume: c.Bool("resume")}
	if !c.Bool("quiet") {
		cfg.Progress = newBatchProgress(c.App.ErrWriter, len(jobs))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := batch.Run(ctx, cfg)
	if res == nil {
		return err
	}
	if dir := c.String("report"); dir != "" {
		if rerr := batch.WriteReport(dir, res); rerr != nil {
			return rerr
		}
	}
	if c.Bool("json") {
		if jerr := writeJSON(c.App.Writer, res); jerr != nil {
			return jerr
		}
	} else {
		printBatch(c.App.Writer, res)
	}
	if err != nil {
		return fmt.Errorf("interrupted: %d jobs done, %d cancelled (finished outputs are in place; rerun with --resume): %w", res.OK+res.Resumed, res.Canceled, err)
	}
	if !res.Succeeded() {
		return fmt.Errorf("%d of %d jobs failed (see the table)", res.Failed, len(res.Jobs))
	}
	return nil
}

// printBatch prints the table of jobs and, for adapt jobs, the
// leaderboard.
func printBatch(w io.Writer, res *batch.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATUS\tOPS\tPARAMS\tWALL\tPARITY\tOUTPUT / ERROR")
	for _, r := range res.Jobs {
		what := r.Out
		if r.Error != "" {
			what = r.Error
		}
		ops := "-"
		if r.OpsAfter > 0 {
			ops = fmt.Sprintf("%d->%d", r.OpsBefore, r.OpsAfter)
		}
		parity := "-"
		if len(r.ParityOn) > 0 {
			parity = fmt.Sprintf("%.2g", r.Parity)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2fs\t%s\t%s\n", r.Name, r.Status, ops, r.Params, r.Seconds, parity, oneLine(what))
	}
	tw.Flush()
	if board := batch.Leaderboard(res); len(board) > 0 {
		fmt.Fprintln(w, "\nleaderboard (same data, split and seed):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tJOB\tVAL ACC\tTEST ACC\tPARAMS\tFEATURES/S\tTRAINING\tFILE")
		for i, r := range board {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%.1f\t%.2fs\t%.1f MB\n", i+1, r.Name, pct(r.ValAccuracy), pct(r.TestAccuracy), r.Params, r.FeaturesPerSec, r.TrainSeconds, float64(r.FileBytes)/1e6)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n%d ok, %d resumed, %d failed, %d cancelled; %d at a time; %.2fs\n", res.OK, res.Resumed, res.Failed, res.Canceled, res.Parallel, res.Seconds)
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100**p)
}

func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", "; ")
}

// batchProgress prints a line when a job starts, notes of its progress
// (at most one every few seconds per job, except the last), and, when it
// ends, its status with the overall count.
type batchProgress struct {
	mu    sync.Mutex
	w     io.Writer
	total int
	done  int
	fail  int
	last  map[int]time.Time
}

func newBatchProgress(w io.Writer, total int) *batchProgress {
	return &batchProgress{w: w, total: total, last: map[int]time.Time{}}
}

func (p *batchProgress) JobStart(i int, j *batch.Job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%d/%d] %s: %s %s\n", p.done, p.total, j.Name, j.Kind, j.Model())
}

func (p *batchProgress) JobNote(i int, j *batch.Job, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last[i]) < 2*time.Second {
		return
	}
	p.last[i] = time.Now()
	fmt.Fprintf(p.w, "[%d/%d] %s: %s\n", p.done, p.total, j.Name, msg)
}

func (p *batchProgress) JobDone(i int, j *batch.Job, r *batch.JobResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if r.Status == batch.StatusFailed {
		p.fail++
	}
	line := fmt.Sprintf("[%d/%d] %s: %s in %.2fs", p.done, p.total, j.Name, r.Status, r.Seconds)
	if r.Error != "" {
		line += ": " + oneLine(r.Error)
	} else if len(r.ParityOn) > 0 {
		line += fmt.Sprintf(", parity %.2g", r.Parity)
	}
	if p.fail > 0 {
		line += fmt.Sprintf(" (%d failed so far)", p.fail)
	}
	fmt.Fprintln(p.w, line)
}

// interrupted reports whether err is a cancellation (SIGINT, SIGTERM).
func interrupted(err error) bool {
	return errors.Is(err, context.Canceled)
}
