package batch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/onnx/surgery"
)

// fixtureJobs copies fixtures into dir/in as <name>.onnx and makes one
// convert job per fixture with recipe, writing dir/out/<name>.onnx.
func fixtureJobs(t *testing.T, dir string, recipe graph.ConvertConfig, names ...string) []Job {
	t.Helper()
	for _, d := range []string{"in", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var jobs []Job
	for _, n := range names {
		data, err := os.ReadFile(onnxtest.Fixture(t, n).ModelPath)
		if err != nil {
			t.Fatal(err)
		}
		in := filepath.Join(dir, "in", n+".onnx")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c := recipe
		c.Model, c.Out = in, filepath.Join(dir, "out", n+".onnx")
		jobs = append(jobs, Job{Name: n, Kind: KindConvert, Convert: c})
	}
	return jobs
}

var fixtureNames = []string{"conv_bn_pool_fc", "dense_bnkeep", "mobile_block_op13", "softmax_head_op13", "fire"}

// TestRunConvertJobs: every job is written, verified and has a parity
// figure; a corrupt input fails its job only.
func TestRunConvertJobs(t *testing.T) {
	dir := t.TempDir()
	jobs := fixtureJobs(t, dir, graph.ConvertConfig{Batch: "dynamic", FoldBN: true, Strip: true}, fixtureNames...)
	bad := filepath.Join(dir, "in", "corrupt.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	jobs = append(jobs, Job{Name: "corrupt", Kind: KindConvert, Convert: graph.ConvertConfig{Model: bad, Out: filepath.Join(dir, "out", "corrupt.onnx")}})
	res, err := Run(context.Background(), Config{Jobs: jobs, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != len(fixtureNames) || res.Failed != 1 || res.Succeeded() {
		t.Fatalf("ok %d failed %d, want %d and 1", res.OK, res.Failed, len(fixtureNames))
	}
	for _, r := range res.Jobs {
		if r.Name == "corrupt" {
			if r.Status != StatusFailed || !strings.Contains(r.Error, "corrupt.onnx") {
				t.Errorf("corrupt: %s %q", r.Status, r.Error)
			}
			if _, err := os.Stat(r.Out); err == nil {
				t.Error("the failed job wrote its output")
			}
			continue
		}
		if r.OpsBefore == 0 || r.OpsAfter == 0 || r.Params == 0 || r.FileBytes == 0 || len(r.ParityOn) == 0 || r.Parity > DefaultParityTol {
			t.Errorf("%s: incomplete record %+v", r.Name, r)
		}
	}
	// a second run with Resume redoes nothing
	res2, err := Run(context.Background(), Config{Jobs: jobs[:len(fixtureNames)], Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Resumed != len(fixtureNames) {
		t.Errorf("resume: %d resumed, want %d", res2.Resumed, len(fixtureNames))
	}
	// an output that changed is redone; one graft did not write is refused
	out0 := jobs[0].Convert.Out
	os.WriteFile(out0, []byte("torn"), 0o644)
	res3, _ := Run(context.Background(), Config{Jobs: jobs[:1], Resume: true})
	if res3.Jobs[0].Status != StatusFailed || !strings.Contains(res3.Jobs[0].Error, "not written by graft") {
		t.Errorf("foreign output: %s %q", res3.Jobs[0].Status, res3.Jobs[0].Error)
	}
}

// TestParityFails: a recipe whose output departs from the source beyond
// the tolerance fails, and leaves no file.
func TestParityFails(t *testing.T) {
	dir := t.TempDir()
	jobs := fixtureJobs(t, dir, graph.ConvertConfig{FoldBN: true}, "dense_bnkeep")
	jobs[0].ParityTol = 1e-12 // folding changes rounding by more than that
	res, err := Run(context.Background(), Config{Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Jobs[0]
	if r.Status != StatusFailed || !strings.Contains(r.Error, "parity") {
		t.Fatalf("%s %q, want a parity failure", r.Status, r.Error)
	}
	if _, err := os.Stat(r.Out); err == nil {
		t.Error("a job failing parity left its output")
	}
	if ents, _ := os.ReadDir(filepath.Dir(r.Out)); len(ents) != 0 {
		t.Errorf("left %d files in the output folder", len(ents))
	}
}

// TestCheck: problems found before any work, each naming its job.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	jobs := fixtureJobs(t, dir, graph.ConvertConfig{Cut: "auto"}, "conv_bn_pool_fc", "softmax_head_op13")
	dup := jobs[1]
	dup.Name = "dup"
	dup.Convert.Out = filepath.Join(dir, "out", ".", "conv_bn_pool_fc.onnx")
	missing := Job{Name: "missing", Kind: KindConvert, Convert: graph.ConvertConfig{Model: filepath.Join(dir, "nope.onnx"), Out: filepath.Join(dir, "out", "nope.onnx")}}
	nodir := jobs[1]
	nodir.Name, nodir.Convert.Out = "nodir", filepath.Join(dir, "no", "such", "x.onnx")
	self := jobs[1]
	self.Name, self.Convert.Out = "self", self.Convert.Model
	badHead := jobs[1]
	badHead.Name, badHead.Convert.Out, badHead.Convert.Head = "badhead", filepath.Join(dir, "out", "h.onnx"), &surgery.HeadSpec{Classes: 1}
	err := Check(&Config{Jobs: []Job{jobs[0], dup, missing, nodir, self, badHead}})
	for _, want := range []string{
		`job "dup": writes ` + dup.Convert.Out + `, as job "conv_bn_pool_fc" does`,
		`job "missing": model ` + filepath.Join(dir, "nope.onnx"),
		`job "nodir": output`,
		`job "self":`,
		`job "badhead": ConvertConfig.Head`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v\nwant it to contain %q", err, want)
		}
	}
	var je *JobError
	if !errors.As(err, &je) {
		t.Errorf("%T is not a *JobError", err)
	}
	if os.Getuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		j := jobs[1]
		j.Convert.Out = filepath.Join(ro, "x.onnx")
		if err := Check(&Config{Jobs: []Job{j}}); err == nil || !strings.Contains(err.Error(), "cannot be written") {
			t.Errorf("read-only folder: %v", err)
		}
	}
}

// TestCancel: a cancelled batch marks its jobs cancelled and writes
// nothing.
func TestCancel(t *testing.T) {
	dir := t.TempDir()
	jobs := fixtureJobs(t, dir, graph.ConvertConfig{Batch: "dynamic"}, fixtureNames...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Run(ctx, Config{Jobs: jobs, Parallel: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res.Canceled != len(jobs) {
		t.Errorf("%d cancelled, want %d", res.Canceled, len(jobs))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "out")); len(ents) != 0 {
		t.Errorf("a cancelled batch left %d files", len(ents))
	}
}

func writeManifest(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "jobs.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestManifest: a manifest mixing convert and adapt jobs, and its errors.
func TestManifest(t *testing.T) {
	dir := t.TempDir()
	good := writeManifest(t, dir, `
out_dir: out
parity_tol: 1e-5
jobs:
  - name: feats
    model: m.onnx
    convert: {cut: auto, batch_dim: dynamic, fold_bn: true, strip: true, rename_input: {input: image}}
  - name: head
    model: m.onnx
    out: heads/h.onnx
    parity_tol: 1e-3
    convert: {head: 3, labels: [a, b, c], softmax: true, input_shape: {x: [1, 3, 48, 192]}}
  - name: pets
    model: m.onnx
    adapt: {data: photos, epochs: 5, head: "mlp:16", lr: 0.001, memory_budget: 256MiB, input_shape: {x: [1, 3, 64, 64]}}
`)
	m, jobs, err := ReadManifest(good, defaultLimits, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Jobs) != 3 || len(jobs) != 3 {
		t.Fatalf("%d jobs", len(jobs))
	}
	if j := jobs[0]; j.Kind != KindConvert || j.Convert.Out != filepath.Join(dir, "out", "feats.onnx") || j.Convert.Model != filepath.Join(dir, "m.onnx") ||
		!j.Convert.FoldBN || j.Convert.RenameInputs["input"] != "image" || j.ParityTol != 1e-5 {
		t.Errorf("job 0: %+v", j)
	}
	if j := jobs[1]; j.Convert.Head == nil || j.Convert.Head.Classes != 3 || !j.Convert.Head.Softmax || j.Convert.Out != filepath.Join(dir, "heads", "h.onnx") || j.ParityTol != 1e-3 || !slices.Equal(j.Convert.Shapes["x"], []int{1, 3, 48, 192}) {
		t.Errorf("job 1: %+v", j)
	}
	if j := jobs[2]; j.Kind != KindAdapt || j.Adapt.Data != filepath.Join(dir, "photos") || j.Adapt.Epochs != 5 || len(j.Adapt.Head.Hidden) != 1 || j.Adapt.LR != 0.001 ||
		j.Adapt.MemoryBudget != 256<<20 || !slices.Equal(j.Adapt.Shapes["x"], []int{1, 3, 64, 64}) {
		t.Errorf("job 2: %+v", j)
	}
	for _, c := range []struct{ text, want string }{
		{"jobs:\n  - name: a\n    model: m.onnx\n    convert: {cut: auto, fold_bm: true}\n", `jobs.yaml:4: job "a": unknown key "fold_bm" in convert (known: batch_dim, cut, fold_bn,`},
		{"jobs:\n  - name: a\n    modle: m.onnx\n    convert: {}\n", `jobs.yaml:3: job "a": unknown key "modle"`},
		{"job:\n  - name: a\n", `jobs.yaml:1: unknown key "job"`},
		{"jobs:\n  - model: m.onnx\n    convert: {}\n", `job "#1": name is required`},
		{"jobs:\n  - name: a\n    convert: {}\n", `job "a": model is required`},
		{"jobs:\n  - name: a\n    model: m.onnx\n", `job "a": give exactly one of convert or adapt`},
		{"jobs:\n  - name: a\n    model: m.onnx\n    adapt: {epochs: 3}\n", `job "a": adapt needs data`},
		{"jobs:\n  - name: a\n    model: m.onnx\n    convert: {labels: [x]}\n", `job "a": labels:`},
		{"jobs:\n  - name: a\n    model: m.onnx\n    adapt: {data: d, head: big}\n", `job "a": head:`},
		{"jobs:\n  - name: a\n    model: m.onnx\n    adapt: {data: d, memory_budget: lots}\n", `job "a": memory_budget: "lots" is not a size`},
		{"jobs: []\n", "no jobs"},
	} {
		_, _, err := ReadManifest(writeManifest(t, dir, c.text), defaultLimits, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %q", c.text, err, c.want)
		}
	}
}

// TestReport: report.json and index.html are written, and the
// leaderboard orders adapt jobs by validation accuracy.
func TestReport(t *testing.T) {
	v := func(x float64) *float64 { return &x }
	res := &Result{Jobs: []*JobResult{
		{Name: "b", Kind: KindAdapt, Status: StatusOK, ValAccuracy: v(0.7), TestAccuracy: v(0.6)},
		{Name: "a", Kind: KindAdapt, Status: StatusOK, ValAccuracy: v(0.9), TestAccuracy: v(0.5)},
		{Name: "c", Kind: KindAdapt, Status: StatusFailed, Error: "<boom>"},
		{Name: "conv", Kind: KindConvert, Status: StatusOK},
	}}
	board := Leaderboard(res)
	if len(board) != 3 || board[0].Name != "a" || board[1].Name != "b" || board[2].Name != "c" {
		t.Errorf("leaderboard %v", names(board))
	}
	dir := filepath.Join(t.TempDir(), "rep")
	if err := WriteReport(dir, res); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if !bytes.Contains(html, []byte("&lt;boom&gt;")) || !bytes.Contains(html, []byte("90.00%")) {
		t.Errorf("index.html lacks the escaped error or the accuracy:\n%s", html)
	}
	js, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if !bytes.Contains(js, []byte(`"leaderboard": [`)) {
		t.Errorf("report.json: %s", js)
	}
}

var defaultLimits = onnx.Limits{}

// threadsSeen records graph.Threads() as each job starts.
type threadsSeen struct {
	mu   sync.Mutex
	seen []int
}

func (p *threadsSeen) JobStart(int, *Job) {
	p.mu.Lock()
	p.seen = append(p.seen, graph.Threads())
	p.mu.Unlock()
}
func (p *threadsSeen) JobNote(int, *Job, string)     {}
func (p *threadsSeen) JobDone(int, *Job, *JobResult) {}

// TestThreadsPerJob: the jobs' kernels keep to Config.Threads cores each
// (by default the cores shared among the jobs run at once), and the
// setting is undone when Run returns.
func TestThreadsPerJob(t *testing.T) {
	before := graph.Threads()
	for _, c := range []struct{ parallel, threads, want int }{
		{1, 1, 1},
		{2, 0, max(1, min(runtime.GOMAXPROCS(0), runtime.NumCPU()/2))},
		{1, 0, runtime.GOMAXPROCS(0)},
	} {
		jobs := fixtureJobs(t, t.TempDir(), graph.ConvertConfig{Batch: "dynamic"}, "conv_bn_pool_fc", "fire")
		p := &threadsSeen{}
		res, err := Run(context.Background(), Config{Jobs: jobs, Parallel: c.parallel, Threads: c.threads, Progress: p})
		if err != nil || !res.Succeeded() {
			t.Fatalf("parallel %d threads %d: %v", c.parallel, c.threads, err)
		}
		for _, got := range p.seen {
			if got != c.want {
				t.Errorf("parallel %d threads %d: a job ran with %d threads, want %d", c.parallel, c.threads, got, c.want)
			}
		}
		if graph.Threads() != before {
			t.Errorf("after Run: %d threads, want %d as before", graph.Threads(), before)
		}
	}
}
