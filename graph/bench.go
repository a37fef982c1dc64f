package graph

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graftml/graft/graph/internal/cores"

	"github.com/graftml/graft/onnx"
)

// BenchOptions says how to benchmark a model's forward pass. The zero
// value means batch 1, the model's own input shapes, at least 5 timed runs
// and 2 seconds of them.
type BenchOptions struct {
	Batch int // images per run; 0 means 1
	// Shapes binds inputs' shapes by name (symbolic dimensions); a batch
	// given here is replaced by Batch when Batch is set.
	Shapes map[string][]int
	// MinRuns and MinTime bound the timed runs from below: both must be
	// reached (0: 5 runs, 2 s).
	MinRuns int
	MinTime time.Duration
	// MaxWarmup bounds the warm-up runs (0: 20); warm-up stops earlier,
	// once the heap has stopped growing.
	MaxWarmup int
	// Seed seeds the random inputs.
	Seed int64
}

// BenchResult is what Bench measured.
type BenchResult struct {
	Model string `json:"model"`
	Batch int    `json:"batch"`
	// Rebatched says the model declares a fixed batch other than Batch,
	// which the benchmark replaced.
	Rebatched    bool          `json:"rebatched,omitempty"`
	Inputs       []TensorInfo  `json:"inputs"`
	Threads      int           `json:"threads"`
	Kernels      string        `json:"kernels"`
	WarmupRuns   int           `json:"warmup_runs"`
	Runs         int           `json:"runs"`
	ImagesPerSec float64       `json:"images_per_sec"` // batch / median run time
	P50          time.Duration `json:"p50_ns"`
	P90          time.Duration `json:"p90_ns"`
	PeakRSS      int64         `json:"peak_rss_bytes"` // the process's VmHWM; 0 where unknown
	HeapBytes    uint64        `json:"heap_bytes"`     // live heap after the runs
	Ops          []OpTime      `json:"ops"`            // per op type, slowest first
}

// OpTime is the time one op type took in a run, summed over its nodes.
type OpTime struct {
	Op       string        `json:"op"`
	Nodes    int           `json:"nodes"`
	Time     time.Duration `json:"time_ns"`
	Fraction float64       `json:"fraction"`
}

// Bencher runs one model's forward pass on random inputs for
// benchmarks: Measure for the full measurement, Run for single runs that a
// caller interleaves with another runtime's.
type Bencher struct {
	m     *Model
	feeds map[string]*onnx.Tensor
	opt   BenchOptions
	res   *BenchResult
}

// NewBencher builds src for inference (frozen, as feature extraction, eval
// and predict run it) with random inputs seeded by opt.Seed. With
// opt.Batch set, every input runs at that batch, also when the model
// declares a fixed first dimension (zoo models often declare 1): graft's
// feature extraction runs such models at its own batch the same way, and
// BenchResult.Rebatched says it happened.
func NewBencher(src *onnx.Model, opt BenchOptions) (*Bencher, error) {
	batch := max(opt.Batch, 1)
	shapes := map[string][]int{}
	rebatched := false
	for _, in := range src.Inputs() {
		s, given := opt.Shapes[in.Name]
		if !given {
			dims := in.GetType().GetTensorType().GetShape().GetDim()
			if opt.Batch == 0 || len(dims) == 0 {
				continue
			}
			v := int(dims[0].GetDimValue())
			if v <= 0 || v == batch {
				continue // Options.Batch binds a symbolic batch
			}
			var err error
			if s, err = InputShape(in, batch); err != nil {
				return nil, fmt.Errorf("input %q: %w", in.Name, err)
			}
			rebatched = true
		}
		s = slices.Clone(s)
		if opt.Batch > 0 && len(s) > 0 {
			s[0] = batch
		}
		shapes[in.Name] = s
	}
	for name, s := range opt.Shapes {
		if _, ok := shapes[name]; !ok {
			shapes[name] = s // not an input: Build names the mistake
		}
	}
	m, err := Build(src, Options{Batch: batch, Shapes: shapes, Freeze: true})
	if err != nil {
		return nil, err
	}
	if len(m.G.AllNodes()) == 0 {
		return nil, fmt.Errorf("%s: every output is known without running the model; nothing to benchmark", src.Path)
	}
	b := &Bencher{m: m, feeds: randomFeeds(m, opt.Seed), opt: opt,
		res: &BenchResult{Model: src.Path, Batch: batch, Rebatched: rebatched, Kernels: KernelVariant()}}
	for _, p := range m.Inputs {
		b.res.Inputs = append(b.res.Inputs, TensorInfo{Name: p.Name, Shape: shapeStrings(p.Shape), Type: p.DType.String()})
	}
	return b, nil
}

// Run runs the model once.
func (b *Bencher) Run() error {
	_, err := b.m.Run(b.feeds)
	return err
}

// Bench is NewBencher and Measure in one call.
func Bench(ctx context.Context, src *onnx.Model, opt BenchOptions) (*BenchResult, error) {
	b, err := NewBencher(src, opt)
	if err != nil {
		return nil, err
	}
	return b.Measure(ctx)
}

// Measure runs the model until the heap stops growing, then times runs,
// and finally times each op type in one more run. It uses the goroutines
// runtime.GOMAXPROCS allows, and checks ctx between runs.
func (b *Bencher) Measure(ctx context.Context) (*BenchResult, error) {
	res := b.res
	res.Threads = cores.N()
	run := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return b.Run()
	}
	var err error
	if res.WarmupRuns, err = warmUp(run, b.opt.MaxWarmup); err != nil {
		return nil, err
	}
	times, err := timeRuns(run, b.opt.MinRuns, b.opt.MinTime)
	if err != nil {
		return nil, err
	}
	res.Runs = len(times)
	slices.Sort(times)
	res.P50, res.P90 = quantile(times, 0.5), quantile(times, 0.9)
	res.ImagesPerSec = float64(res.Batch) / res.P50.Seconds()
	if res.Ops, err = opBreakdown(b.m, run); err != nil {
		return nil, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapAlloc
	res.PeakRSS = PeakRSS()
	return res, nil
}

// randomFeeds makes a uniform [-1, 1) input for every model input.
func randomFeeds(m *Model, seed int64) map[string]*onnx.Tensor {
	r := rand.New(rand.NewSource(seed))
	feeds := map[string]*onnx.Tensor{}
	for _, p := range m.Inputs {
		t := onnx.NewFloat(p.Shape, nil)
		for i := range t.F {
			t.F[i] = 2*r.Float32() - 1
		}
		feeds[p.Name] = t
	}
	return feeds
}

func shapeStrings(s []int) []string {
	out := make([]string, len(s))
	for i, d := range s {
		out[i] = strconv.Itoa(d)
	}
	return out
}

// warmUp runs until the Go heap's footprint (HeapSys) stops growing: two
// runs in a row that grow it by less than 1%, after at least 2 runs. It
// returns the number of runs.
func warmUp(run func() error, maxRuns int) (int, error) {
	if maxRuns <= 0 {
		maxRuns = 20
	}
	var last uint64
	flat := 0
	for i := 1; i <= maxRuns; i++ {
		if err := run(); err != nil {
			return i, err
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if last > 0 && float64(ms.HeapSys) < float64(last)*1.01 {
			flat++
		} else {
			flat = 0
		}
		last = max(last, ms.HeapSys)
		if i >= 2 && flat >= 2 {
			return i, nil
		}
	}
	return maxRuns, nil
}

// timeRuns times runs until both minRuns and minTime are reached.
func timeRuns(run func() error, minRuns int, minTime time.Duration) ([]time.Duration, error) {
	if minRuns <= 0 {
		minRuns = 5
	}
	if minTime <= 0 {
		minTime = 2 * time.Second
	}
	var times []time.Duration
	var total time.Duration
	for len(times) < minRuns || total < minTime {
		t0 := time.Now()
		if err := run(); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		times = append(times, d)
		total += d
	}
	return times, nil
}

// quantile of sorted durations, by the nearest-rank method.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// opBreakdown times each op type over one run on the executor.
func opBreakdown(m *Model, run func() error) ([]OpTime, error) {
	if m.exec == nil {
		return nil, nil // a graph the executor does not run: no breakdown
	}
	byOp := map[string]*OpTime{}
	var total time.Duration
	m.exec.hook = func(op *kop, d time.Duration) {
		t := byOp[op.opType]
		if t == nil {
			t = &OpTime{Op: op.opType}
			byOp[op.opType] = t
		}
		t.Nodes++
		t.Time += d
		total += d
	}
	err := run()
	m.exec.hook = nil
	if err != nil {
		return nil, err
	}
	var out []OpTime
	for _, t := range byOp {
		t.Fraction = float64(t.Time) / float64(max(total, 1))
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b OpTime) int {
		if a.Time != b.Time {
			return int(b.Time - a.Time)
		}
		return strings.Compare(a.Op, b.Op)
	})
	return out, nil
}

// PeakRSS is this process's peak resident set size (VmHWM in
// /proc/self/status), or 0 where the system does not say.
func PeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
