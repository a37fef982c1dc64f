package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train"
)

// Kind is what a job does.
type Kind string

// The kinds of job.
const (
	KindConvert Kind = "convert"
	KindAdapt   Kind = "adapt"
)

// DefaultParityTol is the parity tolerance of a job that sets none: the
// largest difference between source and output over the unchanged part,
// relative to the source's largest magnitude there. Cutting, new heads
// and batch changes compute the same arithmetic (differences come from
// summation order at another batch size); folding BatchNormalization
// changes the rounding by about 1e-6.
const DefaultParityTol = 1e-4

// Job is one unit of work.
type Job struct {
	Name string // unique in the batch; names the job in messages
	Kind Kind
	// Convert is the recipe of a convert job; its Model and Out are the
	// job's input and output.
	Convert graph.ConvertConfig
	// Adapt is the configuration of an adapt job; its Model and Out are the
	// job's input and output. Its Reporter is replaced by the batch's.
	Adapt train.AdaptConfig
	// ParityTol is the job's parity tolerance (0: DefaultParityTol).
	ParityTol float64
}

// Model is the job's input model.
func (j *Job) Model() string {
	if j.Kind == KindAdapt {
		return j.Adapt.Model
	}
	return j.Convert.Model
}

// Out is the job's output model.
func (j *Job) Out() string {
	if j.Kind == KindAdapt {
		return j.Adapt.Out
	}
	return j.Convert.Out
}

// Config configures Run.
type Config struct {
	Jobs []Job
	// Parallel is the number of jobs run at once (0: DefaultParallel).
	Parallel int
	// Threads is the number of cores each job uses: its kernels split
	// their work into at most Threads goroutines (graph.SetThreads, for
	// the duration of Run). It sets the default of Parallel; 0 means the
	// cores divided by the jobs run at once.
	Threads int
	// Force allows replacing outputs that exist; Resume verifies them and
	// redoes only those that do not verify.
	Force, Resume bool
	// Seed draws the parity batch (the same for every job).
	Seed int64
	// Progress receives the jobs' progress (nil: none).
	Progress Progress
}

// Progress receives what the jobs do. Calls come from the jobs'
// goroutines, possibly at once.
type Progress interface {
	JobStart(i int, j *Job)
	// JobNote is a line of a job's progress (a phase, an epoch).
	JobNote(i int, j *Job, msg string)
	JobDone(i int, j *Job, r *JobResult)
}

// Status is how a job ended.
type Status string

// Job statuses.
const (
	StatusOK        Status = "ok"        // done and verified
	StatusResumed   Status = "resumed"   // the output existed and verified; not redone
	StatusFailed    Status = "failed"    // see Error
	StatusCancelled Status = "cancelled" // the batch was cancelled first
)

// JobResult is the record of one job.
type JobResult struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Model  string `json:"model"`
	Out    string `json:"out"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	// OpsBefore and OpsAfter count the source's and the output's nodes.
	OpsBefore int   `json:"ops_before"`
	OpsAfter  int   `json:"ops_after"`
	Params    int64 `json:"params"`
	FileBytes int64 `json:"file_bytes"`
	// Seconds is the job's wall time.
	Seconds float64 `json:"seconds"`
	// Parity is the largest difference between source and output over
	// ParityOn, relative to the source's magnitude there; ParityTol the
	// limit it was held to; ParityBatch the random batch's size.
	Parity      float64  `json:"parity"`
	ParityOn    []string `json:"parity_on,omitempty"`
	ParityTol   float64  `json:"parity_tol"`
	ParityBatch int      `json:"parity_batch,omitempty"`
	// Convert is a convert job's result.
	Convert *graph.ConvertResult `json:"convert,omitempty"`
	// Adapt is an adapt job's result, and its figures for the
	// leaderboard.
	Adapt          *train.AdaptResult `json:"adapt,omitempty"`
	ValAccuracy    *float64           `json:"val_accuracy,omitempty"`
	TestAccuracy   *float64           `json:"test_accuracy,omitempty"`
	FeaturesPerSec float64            `json:"features_per_sec,omitempty"`
	TrainSeconds   float64            `json:"train_seconds,omitempty"`

	err error
}

// Err is the job's error (nil unless it failed or was cancelled).
func (r *JobResult) Err() error { return r.err }

// Result is the record of a batch.
type Result struct {
	Jobs     []*JobResult `json:"jobs"`
	OK       int          `json:"ok"`
	Resumed  int          `json:"resumed"`
	Failed   int          `json:"failed"`
	Canceled int          `json:"cancelled"`
	Parallel int          `json:"parallel"`
	Threads  int          `json:"threads"`
	Seconds  float64      `json:"seconds"`
}

// Succeeded reports whether every job is done (ok or resumed).
func (r *Result) Succeeded() bool { return r.Failed == 0 && r.Canceled == 0 }

// DefaultParallel is the number of jobs run at once when Config.Parallel
// is 0: with threads given, the cores divided by them (at least 1);
// otherwise one job per core for a batch of convert jobs and one job at a
// time, on every core, when it holds adapt jobs. BenchmarkBatchJobs on
// this project's 2-core machine, three rounds each in one run, medians:
// four real exports converted took 0.44 s as two one-thread jobs at once
// and 0.69 s one two-thread job at a time (converting is mostly reading,
// editing and writing, which one job does on one core); a leaderboard of
// two backbones (squeezenet1_1 and resnet18 adapted to one folder) took
// 7.8 s and 7.1 s (their forward passes use both cores, and side by side
// the faster job leaves a core idle once it is done).
func DefaultParallel(threads int, jobs []Job) int {
	cores := runtime.NumCPU()
	if threads > 0 {
		return max(1, cores/threads)
	}
	for _, j := range jobs {
		if j.Kind == KindAdapt {
			return 1
		}
	}
	return cores
}

// JobError is the error of a job, naming it.
type JobError struct {
	Job string
	Err error
}

func (e *JobError) Error() string { return fmt.Sprintf("job %q: %v", e.Job, e.Err) }
func (e *JobError) Unwrap() error { return e.Err }

// Check validates the jobs before any work: names are unique and set,
// kinds known, models exist, outputs are distinct (after cleaning the
// paths and resolving symbolic links of their folders), no output is an
// input, every output folder exists and can be written, and an existing
// output is allowed (Force or Resume). It returns every problem found,
// joined, each a *JobError.
func Check(cfg *Config) error {
	var errs []error
	bad := func(j *Job, format string, args ...any) {
		errs = append(errs, &JobError{Job: j.Name, Err: fmt.Errorf(format, args...)})
	}
	names := map[string]bool{}
	outs := map[string]string{}
	inputs := map[string]string{}
	for i := range cfg.Jobs {
		j := &cfg.Jobs[i]
		if in := j.Model(); in != "" {
			if k, err := canonical(in); err == nil {
				inputs[k] = j.Name
			}
		}
	}
	writable := map[string]error{}
	for i := range cfg.Jobs {
		j := &cfg.Jobs[i]
		if j.Name == "" {
			j.Name = fmt.Sprintf("job %d", i+1)
		}
		if names[j.Name] {
			bad(j, "two jobs have this name")
		}
		names[j.Name] = true
		if j.Kind != KindConvert && j.Kind != KindAdapt {
			bad(j, "unknown kind %q (convert or adapt)", j.Kind)
			continue
		}
		in, out := j.Model(), j.Out()
		if in == "" {
			bad(j, "no model")
		} else if st, err := os.Stat(in); err != nil {
			bad(j, "model %s: %v", in, errors.Unwrap(err))
		} else if st.IsDir() {
			bad(j, "model %s is a folder", in)
		}
		if j.Kind == KindAdapt {
			if j.Adapt.Data == "" {
				bad(j, "no data folder")
			} else if st, err := os.Stat(j.Adapt.Data); err != nil || !st.IsDir() {
				bad(j, "data folder %s does not exist", j.Adapt.Data)
			}
		}
		if out == "" {
			bad(j, "no output")
			continue
		}
		key, err := canonical(out)
		if err != nil {
			bad(j, "output %s: %v", out, err)
			continue
		}
		if other, ok := outs[key]; ok {
			bad(j, "writes %s, as job %q does", out, other)
		}
		outs[key] = j.Name
		if other, ok := inputs[key]; ok {
			bad(j, "output %s is the input of job %q", out, other)
		}
		dir := filepath.Dir(out)
		werr, seen := writable[dir]
		if !seen {
			werr = checkWritable(dir)
			writable[dir] = werr
		}
		if werr != nil {
			bad(j, "output %s: %v", out, werr)
			continue
		}
		if err := onnx.CheckOutPath(in, out, cfg.Force || cfg.Resume); err != nil {
			bad(j, "%v", err)
		}
		if j.ParityTol < 0 {
			bad(j, "parity tolerance %g is negative", j.ParityTol)
		}
		if j.Kind == KindConvert {
			if err := j.Convert.Validate(); err != nil {
				bad(j, "%w", err)
			}
		}
	}
	return errors.Join(errs...)
}

// canonical is a path's identity for duplicate detection: absolute,
// cleaned, its folder's symbolic links resolved.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, file := filepath.Split(abs)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return filepath.Join(dir, file), nil
}

// checkWritable tells whether a file can be created in dir, by creating
// and dropping an atomic file there.
func checkWritable(dir string) error {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("folder %s does not exist", dir)
	}
	f, err := onnx.CreateAtomic(filepath.Join(dir, ".graft-write-check"), true)
	if err != nil {
		return fmt.Errorf("folder %s cannot be written: %w", dir, errors.Unwrap(err))
	}
	f.Abort()
	return nil
}

// Run checks the jobs (Check; its error returns before any work) and runs
// them, Parallel at a time. A job's failure is recorded in its JobResult
// and does not stop the others. When ctx is cancelled, jobs not started
// are marked cancelled, running ones stop and leave no file, and Run
// returns the results with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := Check(&cfg); err != nil {
		return nil, err
	}
	par := cfg.Parallel
	if par <= 0 {
		par = DefaultParallel(cfg.Threads, cfg.Jobs)
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = max(1, runtime.NumCPU()/min(par, max(1, len(cfg.Jobs))))
	}
	defer graph.SetThreads(graph.SetThreads(threads))
	start := time.Now()
	res := &Result{Jobs: make([]*JobResult, len(cfg.Jobs)), Parallel: par, Threads: threads}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(par, len(cfg.Jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res.Jobs[i] = runJob(ctx, &cfg, i)
			}
		}()
	}
feed:
	for i := range cfg.Jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for i, r := range res.Jobs {
		if r == nil {
			j := &cfg.Jobs[i]
			res.Jobs[i] = &JobResult{Name: j.Name, Kind: j.Kind, Model: j.Model(), Out: j.Out(), Status: StatusCancelled, Error: "not started: the batch was cancelled", err: ctx.Err()}
		}
		switch res.Jobs[i].Status {
		case StatusOK:
			res.OK++
		case StatusResumed:
			res.Resumed++
		case StatusCancelled:
			res.Canceled++
		default:
			res.Failed++
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, ctx.Err()
}

func runJob(ctx context.Context, cfg *Config, i int) *JobResult {
	j := &cfg.Jobs[i]
	r := &JobResult{Name: j.Name, Kind: j.Kind, Model: j.Model(), Out: j.Out(), ParityTol: j.ParityTol}
	if r.ParityTol == 0 {
		r.ParityTol = DefaultParityTol
	}
	p := cfg.Progress
	if p != nil {
		p.JobStart(i, j)
	}
	start := time.Now()
	if cfg.Resume {
		removeStaleTemps(r.Out)
	}
	var err error
	if err = ctx.Err(); err == nil {
		if j.Kind == KindAdapt {
			err = runAdapt(ctx, cfg, i, r)
		} else {
			err = runConvert(ctx, cfg, j, r)
		}
	}
	r.Seconds = time.Since(start).Seconds()
	switch {
	case err == nil:
		if r.Status == "" {
			r.Status = StatusOK
		}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		r.Status, r.Error, r.err = StatusCancelled, err.Error(), err
	default:
		r.Status, r.Error, r.err = StatusFailed, err.Error(), err
	}
	if st, serr := os.Stat(r.Out); serr == nil && r.Status != StatusFailed && r.Status != StatusCancelled {
		r.FileBytes = st.Size()
	}
	if p != nil {
		p.JobDone(i, j, r)
	}
	return r
}

// removeStaleTemps removes the temporary files a killed run left beside
// out (onnx.CreateAtomic names them .<name>.tmp-<12 hex digits>).
func removeStaleTemps(out string) {
	pat := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-????????????")
	stale, _ := filepath.Glob(pat)
	for _, f := range stale {
		os.Remove(f)
	}
}

// runConvert converts, writes to a temporary file, verifies and commits.
func runConvert(ctx context.Context, cfg *Config, j *Job, r *JobResult) error {
	c := j.Convert
	src, err := onnx.ReadFile(c.Model, c.Limits)
	if err != nil {
		return err
	}
	mp, cres, err := graph.ConvertModel(ctx, src, c)
	if err != nil {
		return err
	}
	r.Convert, r.OpsBefore, r.OpsAfter, r.Params = cres, cres.NodesBefore, cres.Nodes, cres.Params
	data, err := onnx.Encode(mp)
	if err != nil {
		return fmt.Errorf("%s: encoding: %w", c.Out, err)
	}
	if _, err := os.Stat(c.Out); err == nil && cfg.Resume && !cfg.Force {
		old, rerr := os.ReadFile(c.Out)
		if rerr == nil && bytes.Equal(old, data) {
			r.Status = StatusResumed
			out, err := onnx.ReadFile(c.Out, c.Limits)
			if err != nil {
				return err
			}
			return convertParity(cfg, src, out, cres, c, r)
		}
		if !isGraftOutput(old) {
			return fmt.Errorf("%s exists and was not written by graft; not replacing it (use --force)", c.Out)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("converting %s: %w", c.Model, err)
	}
	f, err := onnx.CreateAtomic(c.Out, cfg.Force || cfg.Resume)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	// re-import what is on disk, before it is in place
	back, err := os.ReadFile(f.TempName())
	if err != nil {
		return fmt.Errorf("%s: re-reading the written model: %w", c.Out, err)
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("%s: the written file differs from the encoded model", c.Out)
	}
	out, err := onnx.Decode(back, c.Out, filepath.Dir(c.Out), c.Limits)
	if err != nil {
		return fmt.Errorf("%s: the written model does not re-import: %w", c.Out, err)
	}
	if err := convertParity(cfg, src, out, cres, c, r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("converting %s: %w", c.Model, err)
	}
	return f.Commit()
}

func convertParity(cfg *Config, src, out *onnx.Model, cres *graph.ConvertResult, c graph.ConvertConfig, r *JobResult) error {
	var srcNames []string
	if cres.Cut != "" {
		srcNames = []string{cres.Cut}
	} else {
		for _, o := range src.Proto.Graph.Output {
			srcNames = append(srcNames, o.Name)
		}
	}
	pairs := make([]Pair, len(srcNames))
	for i, n := range srcNames {
		pairs[i] = Pair{Source: n, Output: n}
		if nn, ok := c.RenameOutputs[n]; ok {
			pairs[i].Output = nn
		}
	}
	if cres.Cut != "" {
		pairs[0] = cutPair(cres.Cut, out)
	}
	return checkParity(cfg, src, out, pairs, c.RenameInputs, r)
}

// cutPair pairs the source's cut tensor with the same values in out: the
// tensor of that name, or, when a 2-D cut became the output and was
// renamed ("features", or --output-name), out's only output.
func cutPair(cut string, out *onnx.Model) Pair {
	g := out.Proto.Graph
	for _, n := range g.Node {
		if slices.Contains(n.Output, cut) {
			return Pair{Source: cut, Output: cut}
		}
	}
	if len(g.Output) == 1 {
		return Pair{Source: cut, Output: g.Output[0].Name}
	}
	return Pair{Source: cut, Output: cut}
}

func checkParity(cfg *Config, src, out *onnx.Model, pairs []Pair, renameIn map[string]string, r *JobResult) error {
	p, err := Parity(src, out, pairs, renameIn, cfg.Seed)
	if err != nil {
		return fmt.Errorf("parity check: %w", err)
	}
	r.Parity, r.ParityBatch = p.Rel, p.Batch
	r.ParityOn = nil
	for _, pr := range pairs {
		r.ParityOn = append(r.ParityOn, pr.Source)
	}
	if !(p.Rel <= r.ParityTol) {
		return fmt.Errorf("parity %.3g exceeds the tolerance %.3g (largest difference on %q)", p.Rel, r.ParityTol, p.Worst)
	}
	return nil
}

// isGraftOutput reports whether a model file records graft's metadata.
func isGraftOutput(data []byte) bool {
	m, err := onnx.Decode(data, "", "", onnx.Limits{})
	if err != nil {
		return false
	}
	_, ok := m.Metadata(onnx.KeyGraft)
	return ok
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// runAdapt adapts, then checks the backbone's parity.
func runAdapt(ctx context.Context, cfg *Config, i int, r *JobResult) error {
	j := &cfg.Jobs[i]
	a := j.Adapt
	src, err := onnx.ReadFile(a.Model, a.Limits)
	if err != nil {
		return err
	}
	r.OpsBefore = len(src.Proto.Graph.Node)
	if _, err := os.Stat(a.Out); err == nil && cfg.Resume && !cfg.Force {
		if ok := resumeAdapt(cfg, src, j, r); ok {
			r.Status = StatusResumed
			return nil
		}
		a.OverwriteOwn = true
		r.Parity, r.ParityOn, r.ParityBatch = 0, nil, 0
	}
	if cfg.Resume {
		a.OverwriteOwn = true
	}
	a.Force = a.Force || cfg.Force
	if cfg.Progress != nil {
		a.Reporter = &jobReporter{p: cfg.Progress, i: i, j: j}
	} else {
		a.Reporter = nil
	}
	res, err := train.Adapt(ctx, a)
	if err != nil {
		return err
	}
	fillAdapt(r, res)
	out, err := onnx.ReadFile(a.Out, a.Limits)
	if err != nil {
		return err
	}
	r.OpsAfter, r.Params = len(out.Proto.Graph.Node), res.Frozen+res.Trainable
	return checkParity(cfg, src, out, []Pair{cutPair(res.Cut, out)}, nil, r)
}

func fillAdapt(r *JobResult, res *train.AdaptResult) {
	r.Adapt = res
	if res.Val != nil {
		v := res.Val.Accuracy
		r.ValAccuracy = &v
	}
	if res.Test != nil {
		v := res.Test.Accuracy
		r.TestAccuracy = &v
	}
	n := res.Images.Train + res.Images.Val + res.Images.Test
	if res.FeatureSeconds > 0 && res.Cache.Hits == 0 {
		r.FeaturesPerSec = float64(n) / res.FeatureSeconds
	}
	r.TrainSeconds = res.TrainSeconds
}

// resumeAdapt verifies an existing adapt output: it records graft's
// metadata with the source's SHA-256, and its backbone matches the
// source's.
func resumeAdapt(cfg *Config, src *onnx.Model, j *Job, r *JobResult) bool {
	out, err := onnx.ReadFile(j.Adapt.Out, j.Adapt.Limits)
	if err != nil {
		return false
	}
	info, err := out.Graft()
	if err != nil || info == nil || info.BaseSHA256 != sha256Hex(src.Raw) || info.Cut == "" {
		return false
	}
	r.OpsAfter, r.Params = len(out.Proto.Graph.Node), info.FrozenParams+info.TrainableParams
	return checkParity(cfg, src, out, []Pair{cutPair(info.Cut, out)}, nil, r) == nil
}

// jobReporter passes an adapt job's phases and epochs to Progress as
// notes.
type jobReporter struct {
	train.NopReporter
	p Progress
	i int
	j *Job
}

func (r *jobReporter) PhaseStart(p train.Phase, total int) {
	r.p.JobNote(r.i, r.j, fmt.Sprintf("%s (%d)", p, total))
}

func (r *jobReporter) Epoch(p train.Phase, m train.EpochMetrics, epochs int) {
	if m.Epoch == epochs || m.Epoch%10 == 0 {
		r.p.JobNote(r.i, r.j, fmt.Sprintf("%s epoch %d/%d loss %.4f acc %.3f", p, m.Epoch, epochs, m.TrainLoss, m.TrainAcc))
	}
}
