package main

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/train/batch"
)

// linkInputs puts each generated model (onnxtest.Generated names) into
// dir as <name>.onnx (symbolic links) and returns the paths.
func linkInputs(t *testing.T, dir string, names []string) []string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	var paths []string
	for _, n := range names {
		c := onnxtest.Generated(t, n)
		p := filepath.Join(dir, n+".onnx")
		if err := os.Symlink(c.ModelPath, p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func batchResult(t *testing.T, stdout string) *batch.Result {
	t.Helper()
	var res batch.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	return &res
}

// checkWithORT runs the ONNX checker on a model and compares ONNX
// Runtime's outputs with graft's at batch 1 (and, for a dynamic batch,
// 3) on random inputs.
func checkWithORT(t *testing.T, path string) {
	t.Helper()
	if err := onnxtest.Checker(t)(path); err != nil {
		t.Error(err)
	}
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	batches := []int{1}
	if d := m.Inputs()[0].GetType().GetTensorType().GetShape().GetDim(); len(d) > 0 && d[0].GetDimValue() <= 0 {
		batches = append(batches, 3)
	}
	for _, b := range batches {
		gm, err := graph.Build(m, graph.Options{Freeze: true, Batch: b})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rng := rand.New(rand.NewSource(int64(b)))
		feeds := map[string]*onnx.Tensor{}
		for _, p := range gm.Inputs {
			x := onnx.NewFloat(p.Shape, nil)
			for i := range x.F {
				x.F[i] = float32(rng.NormFloat64())
			}
			feeds[p.Name] = x
		}
		got, err := gm.Run(feeds)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want, err := onnxtest.ORT(t).Run(path, feeds)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for name, w := range want {
			onnxtest.AssertClose(t, filepath.Base(path)+" "+name, got[name], w, 1e-4)
		}
	}
}

// realArch are the generated exports of the real architectures.
var realArch = []string{"densenet121", "densenet121_op13", "efficientnet_b0", "efficientnet_b0_op13", "mobilenet_v2", "mobilenet_v2_dynbatch",
	"mobilenet_v2_op13", "resnet18", "resnet18_bnpreserve", "resnet18_op13", "squeezenet1_1", "squeezenet1_1_op13"}

// TestConvertManyRealArch: every real-architecture export goes through
// --cut auto, and through --head 7 --batch-dim dynamic, each recipe in one
// graft convert call with a corrupt file among the inputs; the BatchNorm-
// keeping export goes through --fold-bn. Every output passes the ONNX
// checker and matches ONNX Runtime; the corrupt file gives a clear error
// row and exit status 1, and all the others are written.
func TestConvertManyRealArch(t *testing.T) {
	if testing.Short() {
		t.Skip("converts 12 real models twice (minutes on 2 cores)")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	linkInputs(t, in, realArch)
	os.WriteFile(filepath.Join(in, "corrupt.onnx"), []byte("\x08\x07garbage"), 0o644)
	for _, recipe := range []struct {
		name string
		args []string
	}{
		{"cut", []string{"--cut", "auto"}},
		{"head", []string{"--head", "7", "--batch-dim", "dynamic"}},
	} {
		out := filepath.Join(dir, recipe.name)
		args := append([]string{"convert", filepath.Join(in, "*.onnx"), "--out-dir", out, "--json", "-q", "--jobs", "2"}, recipe.args...)
		stdout, stderr, code := graft(t, args...)
		if code != 1 || !strings.Contains(stderr, "1 of 13 jobs failed") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and one failed job", recipe.name, code, stderr)
		}
		res := batchResult(t, stdout)
		for _, r := range res.Jobs {
			if strings.HasSuffix(r.Name, "corrupt.onnx") {
				if r.Status != batch.StatusFailed || !strings.Contains(r.Error, "corrupt.onnx: invalid ONNX model") {
					t.Errorf("%s: corrupt row: %s %q", recipe.name, r.Status, r.Error)
				}
				continue
			}
			if r.Status != batch.StatusOK {
				t.Errorf("%s %s: %s %s", recipe.name, r.Name, r.Status, r.Error)
				continue
			}
			t.Logf("%s %-30s ops %d->%d params %d parity %.2g (%d) %.2fs", recipe.name, filepath.Base(r.Name), r.OpsBefore, r.OpsAfter, r.Params, r.Parity, r.ParityBatch, r.Seconds)
			checkWithORT(t, r.Out)
		}
	}
	out := filepath.Join(dir, "fold")
	stdout := mustGraft(t, "convert", filepath.Join(in, "resnet18_bnpreserve.onnx"), "--out-dir", out, "--fold-bn", "--json", "-q")
	r := batchResult(t, stdout).Jobs[0]
	if r.Convert == nil || r.Convert.FoldedBN < 20 || r.OpsAfter >= r.OpsBefore {
		t.Errorf("fold-bn: %+v", r.Convert)
	}
	t.Logf("fold-bn: %d BatchNormalization folded, ops %d->%d, parity %.2g", r.Convert.FoldedBN, r.OpsBefore, r.OpsAfter, r.Parity)
	checkWithORT(t, r.Out)
}

// TestConvertManyBadInput: errors before any work, naming the flag or
// the inputs.
func TestConvertManyBadInput(t *testing.T) {
	dir := t.TempDir()
	m := fixture(t, "conv_bn_pool_fc").ModelPath
	for _, d := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		data, _ := os.ReadFile(m)
		os.WriteFile(filepath.Join(dir, d, "m.onnx"), data, 0o644)
	}
	file := filepath.Join(dir, "a", "m.onnx")
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", filepath.Join(dir, "*.nothing"), "--out-dir", out}, `matches no file`},
		{[]string{"convert", filepath.Join(dir, "a", "m.onnx"), filepath.Join(dir, "b", "m.onnx"), "--out-dir", out, "--cut", "auto"}, `writes ` + filepath.Join(out, "m.onnx") + `, as job`},
		{[]string{"convert", file, "--out-dir", filepath.Join(file, "sub")}, `--out-dir`},
		{[]string{"convert", file, filepath.Join(dir, "b", "m.onnx")}, `2 inputs need --out-dir DIR`},
		{[]string{"convert", file, "--out-dir", out, "--out", "x.onnx"}, `not both`},
		{[]string{"convert", filepath.Join(dir, "missing.onnx"), file, "--out-dir", filepath.Join(dir, "o2")}, `missing.onnx`},
		{[]string{"adapt", "--model", file, "--model", filepath.Join(dir, "b", "m.onnx"), "--out-dir", out}, `several models need --data`},
	} {
		_, stderr, code := graft(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("graft %s: exit %d\n%s\nwant %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	// a bad flag value is a usage error (exit 2), checked before any work
	if _, stderr, code := graft(t, "convert", file, "--out-dir", out, "--rename-input", "nonsense"); code != 2 || !strings.Contains(stderr, `--rename-input "nonsense": use OLD=NEW`) {
		t.Errorf("--rename-input nonsense: exit %d\n%s", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("refused batches wrote %d files", len(ents))
	}
	// a manifest with an unknown key names the job and key
	man := filepath.Join(dir, "jobs.yaml")
	os.WriteFile(man, []byte("jobs:\n  - name: feats\n    model: a/m.onnx\n    convert: {cut: auto, fold: true}\n"), 0o644)
	_, stderr, code := graft(t, "batch", man)
	if code != 1 || !strings.Contains(stderr, `job "feats": unknown key "fold" in convert`) {
		t.Errorf("manifest: exit %d %s", code, stderr)
	}
	// a good manifest runs; the same with --resume redoes nothing
	os.WriteFile(man, []byte("out_dir: res\njobs:\n  - name: feats\n    model: a/m.onnx\n    convert: {cut: auto, batch_dim: dynamic}\n  - name: renamed\n    model: b/m.onnx\n    convert: {rename_input: {input: image}, strip: true}\n"), 0o644)
	stdout := mustGraft(t, "batch", man, "--json", "-q", "--report", filepath.Join(dir, "rep"))
	if res := batchResult(t, stdout); res.OK != 2 {
		t.Errorf("manifest run: %+v", res)
	}
	if res := batchResult(t, mustGraft(t, "batch", man, "--json", "-q", "--resume")); res.Resumed != 2 {
		t.Errorf("resumed %d, want 2", res.Resumed)
	}
	for _, f := range []string{"report.json", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, "rep", f)); err != nil {
			t.Error(err)
		}
	}
	// a single input with --out still works, with the new recipe flags
	o := filepath.Join(dir, "single.onnx")
	mustGraft(t, "convert", file, "--out", o, "--strip", "--rename-output", "output=logits")
	sm, err := onnx.ReadFile(o, onnx.Limits{})
	if err != nil || sm.Proto.Graph.Output[0].Name != "logits" {
		t.Errorf("single convert: %v", err)
	}
}

// buildGraft builds the graft binary into dir.
func buildGraft(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "graft")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBatchResumeAfterKill: a batch killed (SIGKILL) after its first
// output and rerun with --resume gives the same files as an uninterrupted
// run, and redoes only the jobs that had not finished.
func TestBatchResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a batch of real models three times")
	}
	dir := t.TempDir()
	bin := buildGraft(t, dir)
	names := []string{"squeezenet1_1", "mobilenet_v2", "resnet18", "efficientnet_b0"}
	in := filepath.Join(dir, "in")
	linkInputs(t, in, names)
	args := func(out string, extra ...string) []string {
		return append([]string{"convert", in, "--out-dir", out, "--cut", "auto", "--batch-dim", "dynamic", "--jobs", "1", "-q"}, extra...)
	}
	// the reference: an uninterrupted run
	ref := filepath.Join(dir, "ref")
	if out, err := exec.Command(bin, args(ref)...).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	// the killed run
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, args(out)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	finished := func() []string {
		var done []string
		ents, _ := os.ReadDir(out)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".onnx") && !strings.HasPrefix(e.Name(), ".") {
				done = append(done, e.Name())
			}
		}
		return done
	}
	deadline := time.Now().Add(5 * time.Minute)
	for len(finished()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := finished()
	if len(before) == 0 || len(before) == len(names) {
		t.Fatalf("killed with %d of %d outputs; want some but not all", len(before), len(names))
	}
	for _, f := range before { // what the killed run left is complete
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(ref, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the killed run's output differs from the reference", f)
		}
	}
	stdout, err := exec.Command(bin, args(out, "--resume", "--json")...).Output()
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	res := batchResult(t, string(stdout))
	for _, r := range res.Jobs {
		base := filepath.Base(r.Out)
		wantStatus := batch.StatusOK
		if slices.Contains(before, base) {
			wantStatus = batch.StatusResumed
		}
		if r.Status != wantStatus {
			t.Errorf("%s: %s, want %s", base, r.Status, wantStatus)
		}
		a, _ := os.ReadFile(r.Out)
		b, _ := os.ReadFile(filepath.Join(ref, base))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: differs from the uninterrupted run", base)
		}
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != len(names) {
		var all []string
		for _, e := range ents {
			all = append(all, e.Name())
		}
		t.Errorf("output folder holds %v, want only the %d outputs (no temporary files)", all, len(names))
	}
	t.Logf("killed after %v; resume redid %d of %d jobs", before, res.OK, len(names))
}

// TestLeaderboard: two real backbones adapted to the same folder in one
// call rank in a leaderboard (text and --json) with their accuracies,
// parameters and speed, each writes its model, and --report writes the
// index page naming both.
func TestLeaderboard(t *testing.T) {
	if testing.Short() {
		t.Skip("adapts two ImageNet-size backbones")
	}
	dir := t.TempDir()
	models := linkInputs(t, filepath.Join(dir, "in"), []string{"squeezenet1_1", "resnet18"})
	data := filepath.Join(dir, "data")
	onnxtest.ColorImages(t, data, 10, 24)
	out, rep := filepath.Join(dir, "out"), filepath.Join(dir, "rep")
	args := []string{"adapt", "--model", models[0], "--model", models[1], "--data", data, "--out-dir", out, "--epochs", "20", "--val-split", "0.34", "-q"}
	text := mustGraft(t, append(args, "--report", rep)...)
	if !strings.Contains(text, "leaderboard (same data, split and seed):") {
		t.Fatalf("no leaderboard:\n%s", text)
	}
	res := batchResult(t, mustGraft(t, append(args, "--json", "--force")...))
	board := batch.Leaderboard(res)
	if len(board) != 2 || !res.Succeeded() {
		t.Fatalf("leaderboard of %d rows, succeeded %v: %+v", len(board), res.Succeeded(), res.Jobs)
	}
	for _, r := range board {
		if r.ValAccuracy == nil || r.TestAccuracy == nil || *r.TestAccuracy < 0.8 || r.Params == 0 || r.FeaturesPerSec <= 0 || r.FileBytes == 0 {
			t.Errorf("%s: incomplete or poor row %+v, val %v test %v (color classes need test accuracy >= 0.8)", r.Name, r, deref(r.ValAccuracy), deref(r.TestAccuracy))
		}
		if _, err := os.Stat(r.Out); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
		if !strings.Contains(text, r.Name) {
			t.Errorf("the text leaderboard does not name %s", r.Name)
		}
	}
	index, err := os.ReadFile(filepath.Join(rep, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range board {
		if !bytes.Contains(index, []byte(r.Name)) {
			t.Errorf("report index does not name %s", r.Name)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
