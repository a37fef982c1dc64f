package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/urfave/cli/v2"
)

//go:embed ort_bench.js
var ortBenchJS string

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "time a model's forward pass: images/s, latency p50/p90, peak RSS and where the time goes per op type",
		ArgsUsage: "MODEL.onnx",
		Description: `Runs the model on random inputs, first until the heap stops growing, then
timed. --compare-ort runs ONNX Runtime (npm package onnxruntime-node, with
--threads intra-op threads and one inter-op thread) on the same model and
input shape, interleaving rounds of the two, and prints the ratio.

Examples:
   graft bench resnet18.onnx --batch 8
   graft bench mobilenet_v2.onnx --batch 8 --threads 2 --compare-ort --json
   graft bench ocr.onnx --input-shape x=1x3x48x192`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "batch", Value: 1, Usage: "images per forward pass"},
			threadsFlag(),
			inputShapeFlag(),
			&cli.IntFlag{Name: "rounds", Value: 5, Usage: "with --compare-ort: interleaved rounds of each runtime (at least 5)"},
			&cli.BoolFlag{Name: "compare-ort", Usage: "also time ONNX Runtime on the same model and input"},
			&cli.StringFlag{Name: "ort-modules", EnvVars: []string{"GRAFT_ORT_MODULES"}, Usage: "`DIR`: a node_modules folder holding onnxruntime-node (default: ./node_modules, then graft's test copy)"},
			quietFlag(),
			jsonFlag(), maxMemoryFlag(),
		},
		Action: benchAction,
	}
}

// benchReport is bench's result: graft's measurement and, with
// --compare-ort, ONNX Runtime's and the ratio.
type benchReport struct {
	*graph.BenchResult
	ORT *ortBench `json:"ort,omitempty"`
	// Ratio is graft's images/s over ONNX Runtime's (1 = as fast).
	Ratio float64 `json:"ratio_vs_ort,omitempty"`
}

type ortBench struct {
	Version      string        `json:"version"`
	Runs         int           `json:"runs"`
	ImagesPerSec float64       `json:"images_per_sec"`
	P50          time.Duration `json:"p50_ns"`
	P90          time.Duration `json:"p90_ns"`
	PeakRSS      int64         `json:"peak_rss_bytes"`
	GraftP50     time.Duration `json:"graft_interleaved_p50_ns"`
	// Settle is the median wait, after each round of ONNX Runtime, for
	// its process to stop using the CPU before graft's round (settle).
	Settle time.Duration `json:"ort_settle_p50_ns"`
}

func benchAction(c *cli.Context) error {
	path, lim, err := modelArg(c)
	if err != nil {
		return err
	}
	opt := graph.BenchOptions{Batch: c.Int("batch")}
	if opt.Batch < 1 {
		return usagef(c, "--batch %d: must be at least 1", opt.Batch)
	}
	if t := c.Int("threads"); t != 0 {
		if t < 1 {
			return usagef(c, "--threads %d: must be at least 1", t)
		}
		runtime.GOMAXPROCS(t) // the whole process is this one benchmark
	}
	rounds := c.Int("rounds")
	if rounds < 5 {
		return usagef(c, "--rounds %d: at least 5 rounds are needed to compare", rounds)
	}
	if opt.Shapes, err = inputShapes(c); err != nil {
		return err
	}
	src, err := onnx.ReadFile(path, lim)
	if err != nil {
		return err
	}
	ctx := c.Context
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "bench: %s at batch %d on %d threads (%s): warming up\n", path, opt.Batch, runtime.GOMAXPROCS(0), graph.KernelVariant())
	}
	b, err := graph.NewBencher(src, opt)
	if err != nil {
		return err
	}
	res, err := b.Measure(ctx)
	if err != nil {
		return err
	}
	rep := &benchReport{BenchResult: res}
	if c.Bool("compare-ort") {
		if rep.ORT, err = compareORT(ctx, c, src, b, res, rounds); err != nil {
			return err
		}
		// the interleaved runs saw the same machine load
		rep.Ratio = float64(rep.ORT.P50) / float64(rep.ORT.GraftP50)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rep)
	}
	printBench(c.App.Writer, rep)
	return nil
}

// ortModules finds the node_modules folder holding onnxruntime-node.
func ortModules(c *cli.Context) (string, error) {
	cands := []string{c.String("ort-modules")}
	if cands[0] == "" {
		cands = []string{"node_modules"}
		if _, file, _, ok := runtime.Caller(0); ok {
			cands = append(cands, filepath.Join(filepath.Dir(file), "..", "..", "onnx", "onnxtest", "testdata", "ort", "node_modules"))
		}
	}
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "onnxruntime-node", "package.json")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("--compare-ort: no onnxruntime-node found (looked in %s); install it with `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0` and give its node_modules folder with --ort-modules", strings.Join(cands, ", "))
}

// compareORT interleaves rounds of graft and ONNX Runtime on the same
// model and input shapes: each round times 3 runs of each, so that both
// see the same machine load.
func compareORT(ctx context.Context, c *cli.Context, src *onnx.Model, b *graph.Bencher, res *graph.BenchResult, rounds int) (*ortBench, error) {
	mods, err := ortModules(c)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("--compare-ort: %w (install Node.js)", err)
	}
	model, err := filepath.Abs(src.Path)
	if err != nil {
		return nil, err
	}
	if res.Rebatched {
		// ONNX Runtime checks inputs against the declared fixed batch: it
		// gets a copy whose batch is dynamic, as graft ran it
		dir, err := os.MkdirTemp("", "graft-bench-")
		if err != nil {
			return nil, fmt.Errorf("--compare-ort: %w", err)
		}
		defer os.RemoveAll(dir)
		mp := surgery.CloneProto(src.Proto)
		if err := surgery.SetBatch(mp, "dynamic"); err != nil {
			return nil, fmt.Errorf("--compare-ort: making the batch dynamic for ONNX Runtime: %w", err)
		}
		model = filepath.Join(dir, "model.onnx")
		if err := onnx.WriteFile(model, mp, false); err != nil {
			return nil, fmt.Errorf("--compare-ort: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, node, "-e", ortBenchJS)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	cmd.Stderr = c.App.ErrWriter
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--compare-ort: starting node: %w", err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	inputs := map[string][]string{}
	for _, in := range res.Inputs {
		inputs[in.Name] = in.Shape
	}
	dims := map[string][]int{}
	for name, s := range inputs {
		for _, d := range s {
			n, _ := strconv.Atoi(d)
			dims[name] = append(dims[name], n)
		}
	}
	threads := runtime.GOMAXPROCS(0)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	ask := func(warmup, runs int) (*ortReply, error) {
		req, _ := json.Marshal(map[string]any{"model": model, "threads": threads, "inputs": dims, "warmup": warmup, "runs": runs})
		if _, err := stdin.Write(append(req, '\n')); err != nil {
			return nil, fmt.Errorf("--compare-ort: %w", err)
		}
		if !sc.Scan() {
			return nil, fmt.Errorf("--compare-ort: ONNX Runtime stopped: %v", sc.Err())
		}
		var r ortReply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("--compare-ort: %w", err)
		}
		if r.Error != "" {
			return nil, fmt.Errorf("--compare-ort: ONNX Runtime: %s", r.Error)
		}
		return &r, nil
	}
	// ONNX Runtime warms up like graft: a few runs before timing
	if _, err := ask(max(res.WarmupRuns, 3), 1); err != nil {
		return nil, err
	}
	var gt, ot, st []time.Duration
	var last *ortReply
	for range rounds {
		for range 3 {
			t0 := time.Now()
			if err := b.Run(); err != nil {
				return nil, err
			}
			gt = append(gt, time.Since(t0))
		}
		r, err := ask(0, 3)
		if err != nil {
			return nil, err
		}
		st = append(st, settle(cmd.Process.Pid))
		for _, ms := range r.TimesMS {
			ot = append(ot, time.Duration(ms*float64(time.Millisecond)))
		}
		last = r
	}
	slices.Sort(gt)
	slices.Sort(ot)
	o := &ortBench{Version: last.Version, Runs: len(ot), P50: ot[len(ot)/2], P90: ot[min(len(ot)-1, len(ot)*9/10)], PeakRSS: last.MaxRSSKB << 10, GraftP50: gt[len(gt)/2]}
	slices.Sort(st)
	o.Settle = st[len(st)/2]
	o.ImagesPerSec = float64(res.Batch) / o.P50.Seconds()
	return o, nil
}

type ortReply struct {
	TimesMS  []float64 `json:"times_ms"`
	MaxRSSKB int64     `json:"max_rss_kb"`
	Version  string    `json:"version"`
	Error    string    `json:"error"`
}

func printBench(w io.Writer, r *benchReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", r.Model)
	for _, in := range r.Inputs {
		fmt.Fprintf(tw, "input\t%s [%s]\n", in.Name, strings.Join(in.Shape, " "))
	}
	if r.Rebatched {
		fmt.Fprintf(tw, "batch\t%d (the model declares another fixed batch; run at %d, as feature extraction runs it)\n", r.Batch, r.Batch)
	}
	fmt.Fprintf(tw, "threads\t%d (%s)\n", r.Threads, r.Kernels)
	fmt.Fprintf(tw, "runs\t%d after %d warm-up runs\n", r.Runs, r.WarmupRuns)
	fmt.Fprintf(tw, "graft\t%.1f images/s, p50 %s, p90 %s, peak RSS %s\n", r.ImagesPerSec, ms(r.P50), ms(r.P90), humanBytes(r.PeakRSS))
	if o := r.ORT; o != nil {
		fmt.Fprintf(tw, "onnxruntime %s\t%.1f images/s, p50 %s, p90 %s, peak RSS %s\n", o.Version, o.ImagesPerSec, ms(o.P50), ms(o.P90), humanBytes(o.PeakRSS))
		fmt.Fprintf(tw, "ratio\t%.2fx ONNX Runtime's speed (interleaved medians: graft %s, ORT %s)\n", r.Ratio, ms(o.GraftP50), ms(o.P50))
		fmt.Fprintf(tw, "\t(after each ORT round graft waited %s, the median, for node to go idle)\n", ms(o.Settle))
	}
	tw.Flush()
	fmt.Fprintln(w, "\ntime per op type (one run):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, op := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d nodes\t%s\t%.1f%%\t\n", op.Op, op.Nodes, ms(op.Time), 100*op.Fraction)
	}
	tw.Flush()
}

// settle waits until the process pid stops using the CPU, and returns
// how long that took. ONNX Runtime's intra-op thread keeps spinning for
// work after a run (its default, allow_spinning; measured: 21-27 ms of
// CPU on one thread after each run, none with spinning off), and graft's
// round right after would pay for it: graft's batch-1 mobilenet_v2 runs
// took 10.0 ms against 5.3 alone, and 5.9 after a 50 ms pause. ONNX
// Runtime keeps its default; graft waits. Idle means under 10% of a core over
// three 2 ms polls in a row of the process's CPU clock (cpuTime, Linux);
// elsewhere it waits 50 ms. It gives up after 1 s.
func settle(pid int) time.Duration {
	return settleOn(func() (time.Duration, bool) { return cpuTime(pid) }, realClock{})
}

// clock is the time settleOn waits in: the real one, or a test's.
type clock interface {
	Now() time.Time
	Sleep(time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// settleOn is settle over the CPU clock cpu of the process watched.
func settleOn(cpu func() (time.Duration, bool), c clock) time.Duration {
	t0 := c.Now()
	last, ok := cpu()
	if !ok {
		c.Sleep(50 * time.Millisecond)
		return c.Now().Sub(t0)
	}
	const poll = 2 * time.Millisecond
	for quiet := 0; quiet < 3 && c.Now().Sub(t0) < time.Second; {
		c.Sleep(poll)
		now, ok := cpu()
		if !ok {
			break
		}
		if now-last < poll/10 {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	return c.Now().Sub(t0)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
