package onnxtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftml/graft/onnx"
)

// Python is the interpreter with torch, torchvision and onnx (Debian's
// system python; a pyenv python3 earlier on PATH lacks them).
const Python = "/usr/bin/python3"

const modulePath = "github.com/graftml/graft"

// InCI reports whether the tests run under CI: the environment variable CI
// is set to anything but "", "0" or "false" (CI=true, CI=1 and CI=yes all
// count, as CI services set it in different ways).
func InCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false", "FALSE", "False":
		return false
	}
	return true
}

// Need reports a missing optional reference (a tool, a package, generated
// data): it skips the test with the message, or fails it with t.Fatalf
// under CI (InCI), so that CI never silently skips.
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing test reference (CI=%s, so this fails rather than skips): %s", os.Getenv("CI"), msg)
		return
	}
	t.Skip("missing test reference: " + msg)
}

var repoRoot = sync.OnceValue(func() string {
	// Start from this source file's folder, not the working directory,
	// which tests may change (t.Chdir).
	wd, err := os.Getwd()
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if _, serr := os.Stat(file); serr == nil {
			wd, err = filepath.Dir(file), nil
		}
	}
	if err != nil {
		panic("onnxtest: " + err.Error())
	}
	first := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if first == "" {
				first = dir
			}
			if modulePathOf(data) == modulePath {
				return dir
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if first != "" {
		return first
	}
	panic("onnxtest: no go.mod in " + wd + " or any folder above it")
})

func modulePathOf(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// RepoRoot returns the repository root: the nearest folder at or above
// this package's source folder (or, failing that, the working directory)
// whose go.mod declares module github.com/graftml/graft
// (failing that, the nearest holding a go.mod). It panics when there is none.
func RepoRoot() string { return repoRoot() }

// FixturesDir is the folder of the committed fixtures,
// <repo>/graph/testdata/fixtures.
func FixturesDir() string {
	return filepath.Join(RepoRoot(), "graph", "testdata", "fixtures")
}

// Fixture loads the committed fixture name (e.g. "mobile_block_op13"); the
// test fails if it cannot.
func Fixture(t testing.TB, name string) *Case {
	t.Helper()
	c, err := LoadCase(filepath.Join(FixturesDir(), name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return c
}

// GeneratedDir returns the folder of the generated reference models:
// $GRAFT_TESTDATA if set, else <repo>/graph/testdata/generated. When it is
// missing or empty it calls Need.
func GeneratedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GRAFT_TESTDATA")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "graph", "testdata", "generated")
	}
	ents, err := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	if err != nil || n == 0 {
		Need(t, "no generated reference models in %s: run /usr/bin/python3 graph/testdata/gen_models.py from the repository root (about 1.5 minutes), or set GRAFT_TESTDATA", dir)
	}
	return dir
}

// Generated loads the generated model name (e.g. "resnet18_op13"), calling
// Need when it has not been generated; it fails the test when it exists but
// cannot be loaded.
func Generated(t testing.TB, name string) *Case {
	t.Helper()
	dir := filepath.Join(GeneratedDir(t), name)
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
		Need(t, "generated model %s is missing: run /usr/bin/python3 graph/testdata/gen_models.py --only %s", dir, name)
	}
	c, err := LoadCase(dir)
	if err != nil {
		t.Fatalf("generated model %s: %v", name, err)
	}
	return c
}

// BackendTestData returns the data folder of Debian's libonnx-testdata,
// holding node/, pytorch-converted/, pytorch-operator/, simple/ and real/
// folders of cases ($GRAFT_ONNX_TESTDATA overrides it). It calls Need when
// the folder is missing.
func BackendTestData(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GRAFT_ONNX_TESTDATA")
	if dir == "" {
		dir = "/usr/share/libonnx-testdata/data"
	}
	if _, err := os.Stat(filepath.Join(dir, "node")); err != nil {
		Need(t, "ONNX backend test data missing in %s: apt-get install libonnx-testdata (or set GRAFT_ONNX_TESTDATA)", dir)
	}
	return dir
}

// Case is one model with its test data, in the ONNX backend-test layout.
type Case struct {
	Name      string // the folder's base name
	Dir       string
	ModelPath string // Dir/model.onnx
	Sets      []Set  // test_data_set_0, test_data_set_1, ... in order

	namesOnce sync.Once
	ins, outs []string
	namesErr  error
}

// Set is one test_data_set_N: inputs and expected outputs in file order
// (input_0.pb, input_1.pb, ...). Tensor names are those stored in the .pb
// files; they may be empty (Debian's pytorch-converted cases have none),
// and then the tensor binds by position (see Case.Feeds).
type Set struct {
	Inputs, Outputs []*onnx.Tensor
}

// LoadCase reads a case folder: dir/model.onnx and every
// dir/test_data_set_N/{input,output}_N.pb. Numbering must be contiguous from
// 0. It does not read the model.
func LoadCase(dir string) (*Case, error) {
	c := &Case{Name: filepath.Base(dir), Dir: dir, ModelPath: filepath.Join(dir, "model.onnx")}
	if st, err := os.Stat(c.ModelPath); err != nil {
		return nil, err
	} else if st.IsDir() {
		return nil, fmt.Errorf("%s is a folder", c.ModelPath)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sets, err := numbered(ents, "test_data_set_", "", true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if len(sets) == 0 {
		return nil, fmt.Errorf("%s: no test_data_set_N folders", dir)
	}
	for _, sname := range sets {
		sdir := filepath.Join(dir, sname)
		sents, err := os.ReadDir(sdir)
		if err != nil {
			return nil, err
		}
		var s Set
		for _, kind := range []string{"input_", "output_"} {
			files, err := numbered(sents, kind, ".pb", false)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sdir, err)
			}
			for _, f := range files {
				tt, err := onnx.ReadTensorFile(filepath.Join(sdir, f))
				if err != nil {
					return nil, err
				}
				if kind == "input_" {
					s.Inputs = append(s.Inputs, tt)
				} else {
					s.Outputs = append(s.Outputs, tt)
				}
			}
		}
		if len(s.Outputs) == 0 {
			return nil, fmt.Errorf("%s: no output_N.pb files", sdir)
		}
		c.Sets = append(c.Sets, s)
	}
	return c, nil
}

// numbered returns the entries named prefix+N+suffix (folders when dirs,
// files otherwise) in N order, checking that N runs 0, 1, 2, ...
func numbered(ents []os.DirEntry, prefix, suffix string, dirs bool) ([]string, error) {
	byNum := map[int]string{}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() != dirs || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
			continue
		}
		num := strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix)
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || strconv.Itoa(n) != num {
			continue
		}
		byNum[n] = name
	}
	out := make([]string, len(byNum))
	for i := range out {
		name, ok := byNum[i]
		if !ok {
			return nil, fmt.Errorf("%s%d%s is missing (numbering must run from 0 without gaps)", prefix, i, suffix)
		}
		out[i] = name
	}
	return out, nil
}

// Names returns the model's graph inputs that are not initializers, and its
// graph outputs, in graph order. It reads the model once.
func (c *Case) Names() (inputs, outputs []string, err error) {
	c.namesOnce.Do(func() {
		m, err := onnx.ReadFile(c.ModelPath, onnx.Limits{})
		if err != nil {
			c.namesErr = err
			return
		}
		for _, in := range m.Inputs() {
			c.ins = append(c.ins, in.Name)
		}
		for _, out := range m.Proto.Graph.Output {
			c.outs = append(c.outs, out.Name)
		}
	})
	return c.ins, c.outs, c.namesErr
}

// Feeds returns set i's inputs keyed by graph input name: a tensor with a
// name keeps it, one without takes the name of the graph input at its
// position. The tensors share data with the Set.
func (c *Case) Feeds(i int) (map[string]*onnx.Tensor, error) {
	if i < 0 || i >= len(c.Sets) {
		return nil, fmt.Errorf("%s: no test_data_set_%d", c.Dir, i)
	}
	ins, _, err := c.Names()
	if err != nil {
		return nil, err
	}
	return bind(c.Sets[i].Inputs, ins, c.Dir, "input")
}

// Wants returns set i's expected outputs keyed by graph output name, bound
// like Feeds.
func (c *Case) Wants(i int) (map[string]*onnx.Tensor, error) {
	if i < 0 || i >= len(c.Sets) {
		return nil, fmt.Errorf("%s: no test_data_set_%d", c.Dir, i)
	}
	_, outs, err := c.Names()
	if err != nil {
		return nil, err
	}
	return bind(c.Sets[i].Outputs, outs, c.Dir, "output")
}

func bind(ts []*onnx.Tensor, names []string, dir, what string) (map[string]*onnx.Tensor, error) {
	m := make(map[string]*onnx.Tensor, len(ts))
	for i, t := range ts {
		if t.Name != "" {
			m[t.Name] = t
			continue
		}
		if i >= len(names) {
			return nil, fmt.Errorf("%s: %s_%d.pb has no name and the model has only %d %ss", dir, what, i, len(names), what)
		}
		tt := *t
		tt.Name = names[i]
		m[tt.Name] = &tt
	}
	return m, nil
}

// ---------------------------------------------------------------- compare

// Diff is the result of Compare.
type Diff struct {
	MaxAbs float64 // largest |got-want| (+Inf where exactly one is NaN)
	Ref    float64 // max |want|, the magnitude tolerances are relative to
	Index  []int   // multi-index of MaxAbs
	Got    float64 // got and want at Index
	Want   float64
}

// Rel is MaxAbs/Ref (MaxAbs when Ref is 0).
func (d Diff) Rel() float64 {
	if d.Ref == 0 {
		return d.MaxAbs
	}
	return d.MaxAbs / d.Ref
}

// Compare measures how far got is from want. It returns an error when the
// data types or shapes differ, or a tensor's data does not match its shape.
// Positions where both are NaN count as equal.
func Compare(got, want *onnx.Tensor) (Diff, error) {
	var d Diff
	if got == nil || want == nil {
		return d, fmt.Errorf("nil tensor (got %v, want %v)", got != nil, want != nil)
	}
	if got.DType != want.DType {
		return d, fmt.Errorf("data type %s, want %s", got.DType, want.DType)
	}
	if !sameShape(got.Shape, want.Shape) {
		return d, fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	n := onnx.NumElems(want.Shape)
	if got.Len() != n || want.Len() != n {
		return d, fmt.Errorf("%d and %d values for shape %v of %d elements", got.Len(), want.Len(), want.Shape, n)
	}
	at := func(t *onnx.Tensor, i int) float64 {
		if t.DType == onnx.Int64 {
			return float64(t.I[i])
		}
		return float64(t.F[i])
	}
	worst := -1
	for i := 0; i < n; i++ {
		g, w := at(got, i), at(want, i)
		if !math.IsNaN(w) {
			d.Ref = math.Max(d.Ref, math.Abs(w))
		}
		var diff float64
		switch {
		case math.IsNaN(g) && math.IsNaN(w):
			diff = 0
		case math.IsNaN(g) || math.IsNaN(w):
			diff = math.Inf(1)
		case g == w: // also equal infinities
			diff = 0
		default:
			diff = math.Abs(g - w)
		}
		if diff > d.MaxAbs || worst < 0 && diff == d.MaxAbs {
			d.MaxAbs, worst = diff, i
		}
	}
	if worst >= 0 {
		d.Index = unravel(worst, want.Shape)
		d.Got, d.Want = at(got, worst), at(want, worst)
	}
	return d, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] > 0 {
			idx[k] = i % shape[k]
			i /= shape[k]
		}
	}
	return idx
}

// ZeroAtol is the absolute tolerance AssertClose allows when want is all
// zeros.
const ZeroAtol = 1e-6

// AssertClose reports an error (t.Errorf, the test goes on) unless got and
// want have the same data type and shape and max |got-want| <= relTol *
// max |want|, or, when want is all zeros, <= ZeroAtol. The message names
// what, the largest difference, the reference magnitude and the worst index.
func AssertClose(t testing.TB, what string, got, want *onnx.Tensor, relTol float64) {
	t.Helper()
	d, err := Compare(got, want)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	tol := relTol * d.Ref
	if d.Ref == 0 {
		tol = ZeroAtol
	}
	if !(d.MaxAbs <= tol) {
		t.Errorf("%s: max |got-want| = %.4g at index %v (got %.7g, want %.7g) exceeds %.3g = %g x max|want| %.4g (relative diff %.3g)",
			what, d.MaxAbs, d.Index, d.Got, d.Want, tol, relTol, d.Ref, d.Rel())
	}
}

// ---------------------------------------------------------------- checker

var pythonOnnx = sync.OnceValue(func() error {
	if _, err := os.Stat(Python); err != nil {
		return fmt.Errorf("%s is missing: apt-get install python3 python3-onnx", Python)
	}
	out, err := exec.Command(Python, "-c", "import onnx, onnx.checker").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import onnx (apt-get install python3-onnx): %w: %s", Python, err, lastLine(out))
	}
	return nil
})

const checkerScript = `import sys
import onnx, onnx.checker
try:
    onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)
except Exception as e:
    print("%s: %s" % (type(e).__name__, str(e).strip()))
    sys.exit(1)
`

// Checker returns a function that runs the ONNX checker of Debian's
// python3-onnx (onnx.checker.check_model(onnx.load(path), full_check=True))
// on a model file and returns its message when the model fails. It calls
// Need when /usr/bin/python3 or its onnx module is missing. Each call starts
// a python process (about 0.2 s; 0.4 s for a 45 MB model).
func Checker(t testing.TB) func(modelPath string) error {
	t.Helper()
	if err := pythonOnnx(); err != nil {
		Need(t, "ONNX checker: %v", err)
	}
	return func(modelPath string) error {
		out, err := exec.Command(Python, "-c", checkerScript, modelPath).CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if msg == "" {
				msg = err.Error()
			}
			return fmt.Errorf("onnx checker: %s: %s", modelPath, msg)
		}
		return nil
	}
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// ---------------------------------------------------------------- ONNX Runtime

// Runtime runs models with ONNX Runtime (CPU) in a Node.js helper process
// (onnx/onnxtest/testdata/ort_run.js, npm package onnxruntime-node). The
// process stays up between runs and caches a session per model file (the 8
// most recently used), so a run of an already-loaded model costs the
// inference plus about 1 ms of data exchange for a 224x224 image; starting
// the process costs about 0.2 s, loading a model into a session 0.05-0.5 s.
// Tensors travel as JSON lines with base64 data (float32 and int64 only).
//
// A Runtime is safe for concurrent use; runs are serialized. If the process
// dies, the next Run starts a new one.
type Runtime struct {
	node, script, modules string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  *tail
	version string
}

// ORTModules returns the node_modules folder expected to hold
// onnxruntime-node: $GRAFT_ORT_MODULES if set, else
// <repo>/onnx/onnxtest/testdata/ort/node_modules.
func ORTModules() string {
	if d := os.Getenv("GRAFT_ORT_MODULES"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "onnx", "onnxtest", "testdata", "ort", "node_modules")
}

var (
	sharedMu  sync.Mutex
	sharedORT *Runtime
)

// ORT returns the test binary's shared Runtime, starting it on first use. It
// calls Need when node or onnxruntime-node is missing, and fails the test
// when they are there but the runtime does not start. The helper process
// ends when the test binary exits (its standard input closes).
func ORT(t testing.TB) *Runtime {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedORT != nil {
		return sharedORT
	}
	node, err := exec.LookPath("node")
	if err != nil {
		Need(t, "ONNX Runtime: node (Node.js) is not installed: apt-get install nodejs npm, then (cd onnx/onnxtest/testdata/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install)")
		return nil
	}
	mods := ORTModules()
	if _, err := os.Stat(filepath.Join(mods, "onnxruntime-node", "package.json")); err != nil {
		Need(t, "ONNX Runtime: onnxruntime-node is not installed in %s: run (cd onnx/onnxtest/testdata/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install), or set GRAFT_ORT_MODULES", mods)
		return nil
	}
	r := &Runtime{
		node:    node,
		script:  filepath.Join(RepoRoot(), "onnx", "onnxtest", "testdata", "ort_run.js"),
		modules: mods,
	}
	r.mu.Lock()
	err = r.start()
	r.mu.Unlock()
	if err != nil {
		t.Fatalf("ONNX Runtime does not start: %v", err)
		return nil
	}
	sharedORT = r
	return r
}

// Version is the onnxruntime-node version the helper loaded.
func (r *Runtime) Version() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

// start launches the helper and waits for its ready line. r.mu is held.
func (r *Runtime) start() error {
	cmd := exec.Command(r.node, r.script, r.modules)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	r.stderr = &tail{}
	cmd.Stderr = r.stderr // not os.Stderr: go test would wait for the helper to close it
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd, r.stdin, r.stdout = cmd, stdin, bufio.NewReaderSize(stdout, 1<<20)
	var ready struct {
		Ready   bool   `json:"ready"`
		Version string `json:"version"`
	}
	line, err := r.stdout.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &ready)
	}
	if err != nil || !ready.Ready {
		r.stop()
		return fmt.Errorf("%s %s: no ready line (%w): %s", r.node, r.script, err, r.stderr.String())
	}
	r.version = ready.Version
	return nil
}

// stop ends the helper process. r.mu is held.
func (r *Runtime) stop() {
	if r.cmd == nil {
		return
	}
	r.stdin.Close()
	if r.cmd.Process != nil {
		r.cmd.Process.Kill()
	}
	r.cmd.Wait()
	r.cmd, r.stdin, r.stdout = nil, nil, nil
}

// Close ends the helper process. A later Run starts a new one.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stop()
	return nil
}

type wireTensor struct {
	DType string `json:"dtype"`
	Dims  []int  `json:"dims"`
	Data  []byte `json:"data"` // base64 in JSON
}

type wireRequest struct {
	Model   string                `json:"model"`
	Inputs  map[string]wireTensor `json:"inputs"`
	Repeat  int                   `json:"repeat,omitempty"`
	Threads int                   `json:"threads,omitempty"` // intra-op threads; 0: ONNX Runtime's default
}

type wireResponse struct {
	Outputs map[string]wireTensor `json:"outputs"`
	TimesMS []float64             `json:"times_ms"`
	Error   string                `json:"error"`
}

// Run runs the model file with the inputs (keyed by graph input name;
// float32 and int64 tensors; float16 inputs are sent as float16, rounded
// to nearest even) and returns every graph output by name, with Name set.
// Outputs of other numeric types come back converted to float32
// (floating, float16 exactly) or int64 (integer, bool).
func (r *Runtime) Run(modelPath string, inputs map[string]*onnx.Tensor) (map[string]*onnx.Tensor, error) {
	outs, _, err := r.run(modelPath, inputs, 0)
	return outs, err
}

// Time runs the model once to warm up and then n more times, returning the
// duration of each of those n runs as ONNX Runtime's process measured it
// (without the cost of shipping tensors to it). The session uses
// runtime.GOMAXPROCS(0) intra-op threads and one inter-op thread, as graft
// uses its cores, so that the two are compared on the same cores.
func (r *Runtime) Time(modelPath string, inputs map[string]*onnx.Tensor, n int) ([]time.Duration, error) {
	if n < 1 {
		return nil, fmt.Errorf("n = %d: must be positive", n)
	}
	_, ms, err := r.run(modelPath, inputs, n)
	if err != nil {
		return nil, err
	}
	ds := make([]time.Duration, len(ms))
	for i, v := range ms {
		ds[i] = time.Duration(v * float64(time.Millisecond))
	}
	return ds, nil
}

func (r *Runtime) run(modelPath string, inputs map[string]*onnx.Tensor, repeat int) (map[string]*onnx.Tensor, []float64, error) {
	abs, err := filepath.Abs(modelPath)
	if err != nil {
		return nil, nil, err
	}
	req := wireRequest{Model: abs, Inputs: make(map[string]wireTensor, len(inputs)), Repeat: repeat}
	if repeat > 0 {
		req.Threads = runtime.GOMAXPROCS(0)
	}
	half := halfInputs(abs)
	for name, t := range inputs {
		w, err := toWire(t)
		if err == nil && half[name] && t.DType == onnx.Float32 {
			w = wireTensor{DType: "float16", Dims: w.Dims, Data: onnx.Float32sToHalfBytes(t.F)}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("input %q: %w", name, err)
		}
		req.Inputs[name] = w
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	line = append(line, '\n')

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		if err := r.start(); err != nil {
			return nil, nil, fmt.Errorf("onnx runtime: %w", err)
		}
	}
	var resp wireResponse
	_, err = r.stdin.Write(line)
	if err == nil {
		var out []byte
		out, err = r.stdout.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(out, &resp)
		}
	}
	if err != nil {
		r.stop()
		return nil, nil, fmt.Errorf("onnx runtime helper failed: %w: %s", err, r.stderr.String())
	}
	if resp.Error != "" {
		return nil, nil, fmt.Errorf("onnx runtime: %s: %s", modelPath, resp.Error)
	}
	outs := make(map[string]*onnx.Tensor, len(resp.Outputs))
	for name, w := range resp.Outputs {
		t, err := fromWire(name, w)
		if err != nil {
			return nil, nil, fmt.Errorf("onnx runtime: output %q: %w", name, err)
		}
		outs[name] = t
	}
	return outs, resp.TimesMS, nil
}

func toWire(t *onnx.Tensor) (wireTensor, error) {
	if t == nil {
		return wireTensor{}, errors.New("nil tensor")
	}
	n := onnx.NumElems(t.Shape)
	if t.Len() != n {
		return wireTensor{}, fmt.Errorf("%d values for shape %v", t.Len(), t.Shape)
	}
	w := wireTensor{Dims: append([]int{}, t.Shape...)}
	le := binary.LittleEndian
	if t.DType == onnx.Int64 {
		w.DType = "int64"
		w.Data = make([]byte, 8*n)
		for i, v := range t.I {
			le.PutUint64(w.Data[8*i:], uint64(v))
		}
		return w, nil
	}
	w.DType = "float32"
	w.Data = make([]byte, 4*n)
	for i, v := range t.F {
		le.PutUint32(w.Data[4*i:], math.Float32bits(v))
	}
	return w, nil
}

// halfInputs returns the float16 graph inputs of the model file (read
// once per file and modification time), which are sent as float16:
// ONNX Runtime takes no other type for them.
func halfInputs(path string) map[string]bool {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	if v, ok := halfCache.Load(key); ok {
		return v.(map[string]bool)
	}
	out := map[string]bool{}
	if m, err := onnx.ReadFile(path, onnx.Limits{}); err == nil {
		for _, in := range m.Inputs() {
			if in.GetType().GetTensorType().GetElemType() == 10 {
				out[in.Name] = true
			}
		}
	}
	halfCache.Store(key, out)
	return out
}

var halfCache sync.Map

func fromWire(name string, w wireTensor) (*onnx.Tensor, error) {
	n := onnx.NumElems(w.Dims)
	le := binary.LittleEndian
	shape := append([]int{}, w.Dims...)
	switch w.DType {
	case "float16":
		if len(w.Data) != 2*n {
			return nil, fmt.Errorf("%d bytes for %d float16 values", len(w.Data), n)
		}
		t := onnx.NewFloat(shape, nil)
		for i := range t.F {
			t.F[i] = onnx.HalfToFloat32(le.Uint16(w.Data[2*i:]))
		}
		t.Name = name
		return t, nil
	case "float32":
		if len(w.Data) != 4*n {
			return nil, fmt.Errorf("%d bytes for %d float32 values", len(w.Data), n)
		}
		t := onnx.NewFloat(shape, nil)
		for i := range t.F {
			t.F[i] = math.Float32frombits(le.Uint32(w.Data[4*i:]))
		}
		t.Name = name
		return t, nil
	case "int64":
		if len(w.Data) != 8*n {
			return nil, fmt.Errorf("%d bytes for %d int64 values", len(w.Data), n)
		}
		t := onnx.NewInt(shape, nil)
		for i := range t.I {
			t.I[i] = int64(le.Uint64(w.Data[8*i:]))
		}
		t.Name = name
		return t, nil
	}
	return nil, fmt.Errorf("data type %q", w.DType)
}

// tail keeps the last few KB written to it (the helper's stderr).
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.buf))
	if s == "" {
		return "(no stderr output)"
	}
	return s
}

// CaseNames lists the case folders (those holding model.onnx) in dir, sorted.
func CaseNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "model.onnx")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
