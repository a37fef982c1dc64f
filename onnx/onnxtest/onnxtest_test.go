package onnxtest_test

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// fakeTB records what a helper reports instead of stopping the test.
type fakeTB struct {
	testing.TB
	errs, fatals, skips []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Skip(args ...any) { f.skips = append(f.skips, fmt.Sprint(args...)) }
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skips = append(f.skips, fmt.Sprintf(format, args...))
}

func TestRepoRoot(t *testing.T) {
	root := onnxtest.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "module github.com/graftml/graft") {
		t.Fatalf("%s/go.mod is not graft's", root)
	}
	if _, err := os.Stat(filepath.Join(onnxtest.FixturesDir(), "fire", "model.onnx")); err != nil {
		t.Fatal(err)
	}
}

func TestNeed(t *testing.T) {
	for _, ci := range []string{"true", "1", "yes", "TRUE"} {
		t.Setenv("CI", ci)
		f := &fakeTB{}
		onnxtest.Need(f, "tool %s", "x")
		if len(f.fatals) != 1 || len(f.skips) != 0 || !strings.Contains(f.fatals[0], "tool x") {
			t.Errorf("CI=%s: fatals %q, skips %q; want one fatal", ci, f.fatals, f.skips)
		}
	}
	for _, ci := range []string{"", "0", "false"} {
		t.Setenv("CI", ci)
		f := &fakeTB{}
		onnxtest.Need(f, "tool %s", "y")
		if len(f.skips) != 1 || len(f.fatals) != 0 || !strings.Contains(f.skips[0], "tool y") {
			t.Errorf("CI=%q: fatals %q, skips %q; want one skip", ci, f.fatals, f.skips)
		}
	}
}

func TestLoadCaseFixture(t *testing.T) {
	c, err := onnxtest.LoadCase(filepath.Join(onnxtest.FixturesDir(), "dynbatch_view"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "dynbatch_view" || filepath.Base(c.ModelPath) != "model.onnx" {
		t.Errorf("Name %q ModelPath %q", c.Name, c.ModelPath)
	}
	if len(c.Sets) != 2 {
		t.Fatalf("%d sets, want 2", len(c.Sets))
	}
	for i, batch := range []int{1, 2} {
		s := c.Sets[i]
		if len(s.Inputs) != 1 || len(s.Outputs) != 1 {
			t.Fatalf("set %d: %d inputs, %d outputs", i, len(s.Inputs), len(s.Outputs))
		}
		in, out := s.Inputs[0], s.Outputs[0]
		if in.Name != "input" || out.Name != "output" {
			t.Errorf("set %d: names %q, %q", i, in.Name, out.Name)
		}
		if fmt.Sprint(in.Shape) != fmt.Sprint([]int{batch, 3, 8, 8}) || fmt.Sprint(out.Shape) != fmt.Sprint([]int{batch, 6}) {
			t.Errorf("set %d: shapes %v -> %v", i, in.Shape, out.Shape)
		}
	}
	feeds, err := c.Feeds(1)
	if err != nil || feeds["input"] != c.Sets[1].Inputs[0] {
		t.Errorf("Feeds(1) = %v, %v", feeds, err)
	}
	if _, err := c.Feeds(2); err == nil {
		t.Error("Feeds(2) of a 2-set case succeeded")
	}
}

func TestLoadCaseErrors(t *testing.T) {
	if _, err := onnxtest.LoadCase(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("missing folder: no error")
	}
	src := filepath.Join(onnxtest.FixturesDir(), "fire")
	copyCase := func(t *testing.T) string {
		dir := t.TempDir()
		for _, f := range []string{"model.onnx", "test_data_set_0/input_0.pb", "test_data_set_0/output_0.pb"} {
			data, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Run("ok", func(t *testing.T) {
		if _, err := onnxtest.LoadCase(copyCase(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("gap", func(t *testing.T) {
		dir := copyCase(t)
		os.Rename(filepath.Join(dir, "test_data_set_0", "input_0.pb"), filepath.Join(dir, "test_data_set_0", "input_1.pb"))
		if _, err := onnxtest.LoadCase(dir); err == nil || !strings.Contains(err.Error(), "input_0.pb") {
			t.Errorf("err = %v, want one naming input_0.pb", err)
		}
	})
	t.Run("nosets", func(t *testing.T) {
		dir := copyCase(t)
		os.RemoveAll(filepath.Join(dir, "test_data_set_0"))
		if _, err := onnxtest.LoadCase(dir); err == nil {
			t.Error("no error")
		}
	})
	t.Run("badpb", func(t *testing.T) {
		dir := copyCase(t)
		os.WriteFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"), []byte{0xff, 0xff, 0xff}, 0o644)
		if _, err := onnxtest.LoadCase(dir); err == nil {
			t.Error("no error")
		}
	})
}

// Cases of Debian's libonnx-testdata: node cases carry tensor names,
// pytorch-converted ones do not and bind by position (their models also list
// the weights as graph inputs, IR version 3).
func TestLoadCaseBackendTestData(t *testing.T) {
	data := onnxtest.BackendTestData(t)
	c, err := onnxtest.LoadCase(filepath.Join(data, "node", "test_add"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sets) != 1 || len(c.Sets[0].Inputs) != 2 || c.Sets[0].Inputs[0].Name != "x" || c.Sets[0].Inputs[1].Name != "y" {
		t.Fatalf("node/test_add: %+v", c.Sets)
	}
	c, err = onnxtest.LoadCase(filepath.Join(data, "pytorch-converted", "test_Conv2d"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sets[0].Inputs[0].Name != "" {
		t.Errorf("pytorch-converted/test_Conv2d input name %q, expected the stored empty name", c.Sets[0].Inputs[0].Name)
	}
	ins, outs, err := c.Names()
	if err != nil {
		t.Fatal(err)
	}
	feeds, err := c.Feeds(0)
	if err != nil {
		t.Fatal(err)
	}
	wants, err := c.Wants(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || feeds[ins[0]] == nil || len(outs) != 1 || wants[outs[0]] == nil {
		t.Fatalf("bound %v -> %v, model inputs %v outputs %v", feeds, wants, ins, outs)
	}

	// Every node case whose data graft's tensor reader understands loads.
	names, err := onnxtest.CaseNames(filepath.Join(data, "node"))
	if err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, n := range names {
		if _, err := onnxtest.LoadCase(filepath.Join(data, "node", n)); err == nil {
			loaded++
		}
	}
	t.Logf("LoadCase read %d of %d node cases", loaded, len(names))
	if loaded < len(names)*8/10 {
		t.Errorf("LoadCase read only %d of %d node cases", loaded, len(names))
	}
}

func TestCompareAndAssertClose(t *testing.T) {
	want := onnx.NewFloat([]int{2, 3}, []float32{1, -4, 2, 0, 3, 1})
	near := onnx.NewFloat([]int{2, 3}, []float32{1, -4.0001, 2, 0, 3, 1})
	far := onnx.NewFloat([]int{2, 3}, []float32{1, -4, 2, 0, 3.1, 1})

	d, err := onnxtest.Compare(far, want)
	if err != nil || d.Ref != 4 || math.Abs(d.MaxAbs-0.1) > 1e-6 || fmt.Sprint(d.Index) != "[1 1]" {
		t.Errorf("Compare = %+v, %v", d, err)
	}

	check := func(name string, got, want *onnx.Tensor, tol float64, fails bool, substr string) {
		t.Helper()
		f := &fakeTB{}
		onnxtest.AssertClose(f, name, got, want, tol)
		if fails != (len(f.errs) > 0) {
			t.Errorf("%s: errors %q, want failure %v", name, f.errs, fails)
		}
		if fails && len(f.errs) > 0 && !strings.Contains(f.errs[0], substr) {
			t.Errorf("%s: message %q lacks %q", name, f.errs[0], substr)
		}
	}
	check("equal", want, want, 0, false, "")
	check("near", near, want, 1e-4, false, "")
	check("far", far, want, 1e-4, true, "index [1 1]")
	check("far-magnitude", far, want, 1e-4, true, "max|want| 4")
	check("shape", onnx.NewFloat([]int{3, 2}, want.F), want, 1, true, "shape [3 2]")
	check("dtype", onnx.NewInt([]int{2, 3}, []int64{1, -4, 2, 0, 3, 1}), want, 1, true, "data type")
	check("short", onnx.NewFloat([]int{2, 3}, []float32{1}), want, 1, true, "values")
	zero := onnx.NewFloat([]int{2}, nil)
	check("zero-ok", onnx.NewFloat([]int{2}, []float32{5e-7, 0}), zero, 1e-4, false, "")
	check("zero-bad", onnx.NewFloat([]int{2}, []float32{1e-3, 0}), zero, 1e-4, true, "exceeds")
	nan := float32(math.NaN())
	check("nan-both", onnx.NewFloat([]int{1}, []float32{nan}), onnx.NewFloat([]int{1}, []float32{nan}), 0, false, "")
	check("nan-got", onnx.NewFloat([]int{2}, []float32{nan, 1}), onnx.NewFloat([]int{2}, []float32{1, 1}), 1e-4, true, "index [0]")
	check("int", onnx.NewInt([]int{2}, []int64{3, 5}), onnx.NewInt([]int{2}, []int64{3, 4}), 0.1, true, "index [1]")
	check("scalar", onnx.NewFloat(nil, []float32{2}), onnx.NewFloat(nil, []float32{2}), 0, false, "")
}

// The ONNX Runtime helper reproduces every fixture's PyTorch output.
func TestORTFixtures(t *testing.T) {
	rt := onnxtest.ORT(t)
	t.Logf("onnxruntime-node %s", rt.Version())
	names, err := onnxtest.CaseNames(onnxtest.FixturesDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("only %d fixtures: %v", len(names), names)
	}
	for _, name := range names {
		c := onnxtest.Fixture(t, name)
		for i := range c.Sets {
			feeds, err := c.Feeds(i)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rt.Run(c.ModelPath, feeds)
			if err != nil {
				t.Errorf("%s set %d: %v", name, i, err)
				continue
			}
			if len(got) != 1 || got["output"] == nil {
				t.Errorf("%s set %d: outputs %v, want just \"output\"", name, i, got)
				continue
			}
			d, _ := onnxtest.Compare(got["output"], c.Sets[i].Outputs[0])
			t.Logf("%-20s set %d: max|out| %.4g, max rel diff %.2g", name, i, d.Ref, d.Rel())
			tol := cmp.Or(onnxtest.LowPrecisionTol[name], 1e-4)
			onnxtest.AssertClose(t, fmt.Sprintf("%s set %d", name, i), got["output"], c.Sets[i].Outputs[0], tol)
		}
	}
}

// ONNX Runtime on a pytorch-converted backend case, whose tensors have no
// names: Feeds binds them by position.
func TestORTBackendCase(t *testing.T) {
	data := onnxtest.BackendTestData(t)
	rt := onnxtest.ORT(t)
	for _, n := range []string{"node/test_add", "node/test_gemm_default_single_elem_vector_bias", "pytorch-converted/test_Conv2d_depthwise_padded"} {
		c, err := onnxtest.LoadCase(filepath.Join(data, n))
		if err != nil {
			t.Fatal(err)
		}
		feeds, err := c.Feeds(0)
		if err != nil {
			t.Fatal(err)
		}
		wants, _ := c.Wants(0)
		got, err := rt.Run(c.ModelPath, feeds)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for name, w := range wants {
			onnxtest.AssertClose(t, n+" "+name, got[name], w, 1e-5)
		}
	}
}

func TestORTErrors(t *testing.T) {
	rt := onnxtest.ORT(t)
	c := onnxtest.Fixture(t, "fire")
	feeds, _ := c.Feeds(0)
	if _, err := rt.Run(filepath.Join(t.TempDir(), "missing.onnx"), feeds); err == nil {
		t.Error("missing model: no error")
	}
	if _, err := rt.Run(c.ModelPath, map[string]*onnx.Tensor{"wrong": feeds["input"]}); err == nil {
		t.Error("wrong input name: no error")
	}
	bad := onnx.NewFloat([]int{1, 3, 8, 8}, make([]float32, 5))
	if _, err := rt.Run(c.ModelPath, map[string]*onnx.Tensor{"input": bad}); err == nil {
		t.Error("short input data: no error")
	}
	// The helper survives errors, and a closed runtime restarts.
	rt.Close()
	got, err := rt.Run(c.ModelPath, feeds)
	if err != nil {
		t.Fatal(err)
	}
	onnxtest.AssertClose(t, "after errors", got["output"], c.Sets[0].Outputs[0], 1e-4)
}

// Runs of a loaded model are cheap enough to call hundreds of times.
func TestORTSpeed(t *testing.T) {
	rt := onnxtest.ORT(t)
	c := onnxtest.Fixture(t, "mobile_block_op13")
	feeds, _ := c.Feeds(0)
	if _, err := rt.Run(c.ModelPath, feeds); err != nil {
		t.Fatal(err)
	}
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := rt.Run(c.ModelPath, feeds); err != nil {
			t.Fatal(err)
		}
	}
	per := time.Since(start) / n
	t.Logf("%d runs of a fixture: %v per run", n, per)
	if per > 50*time.Millisecond {
		t.Errorf("a run of a small loaded model takes %v", per)
	}
}

// The generated torchvision models: ONNX Runtime agrees with the PyTorch
// references (this validates the references).
func TestORTGenerated(t *testing.T) {
	dir := onnxtest.GeneratedDir(t)
	rt := onnxtest.ORT(t)
	names, err := onnxtest.CaseNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		c := onnxtest.Generated(t, name)
		for i := range c.Sets {
			feeds, err := c.Feeds(i)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got, err := rt.Run(c.ModelPath, feeds)
			if err != nil {
				t.Errorf("%s set %d: %v", name, i, err)
				continue
			}
			d, _ := onnxtest.Compare(got["output"], c.Sets[i].Outputs[0])
			t.Logf("%-22s set %d %v: max|out| %.4g, ORT vs PyTorch max rel diff %.2g (%v)", name, i, got["output"].Shape, d.Ref, d.Rel(), time.Since(start).Round(time.Millisecond))
			onnxtest.AssertClose(t, fmt.Sprintf("%s set %d", name, i), got["output"], c.Sets[i].Outputs[0], 1e-4)
		}
	}
}

func TestChecker(t *testing.T) {
	check := onnxtest.Checker(t)
	names, err := onnxtest.CaseNames(onnxtest.FixturesDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := check(filepath.Join(onnxtest.FixturesDir(), name, "model.onnx")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A copy whose first node reads a tensor nothing defines must fail.
	m, err := onnx.ReadFile(filepath.Join(onnxtest.FixturesDir(), "conv_bn_pool_fc", "model.onnx"), onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m.Proto.Graph.Node[0].Input[0] = "no_such_tensor"
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	if err := onnx.WriteFile(bad, m.Proto, true); err != nil {
		t.Fatal(err)
	}
	err = check(bad)
	if err == nil {
		t.Fatal("checker accepted a node input that names no tensor")
	}
	if !strings.Contains(err.Error(), "no_such_tensor") {
		t.Errorf("checker message %q does not name the missing tensor", err)
	}
	t.Logf("corrupted copy: %v", err)
	if err := check(filepath.Join(t.TempDir(), "missing.onnx")); err == nil {
		t.Error("checker accepted a missing file")
	}
}

// Runs from several goroutines share the helper safely.
func TestORTConcurrent(t *testing.T) {
	rt := onnxtest.ORT(t)
	cases := []*onnxtest.Case{onnxtest.Fixture(t, "fire"), onnxtest.Fixture(t, "se_act_op14"), onnxtest.Fixture(t, "dynbatch_view")}
	errs := make(chan error, 12)
	for g := 0; g < 12; g++ {
		go func() {
			c := cases[g%len(cases)]
			set := g % len(c.Sets)
			feeds, _ := c.Feeds(set)
			got, err := rt.Run(c.ModelPath, feeds)
			if err == nil {
				var d onnxtest.Diff
				d, err = onnxtest.Compare(got["output"], c.Sets[set].Outputs[0])
				if err == nil && d.Rel() > 1e-4 {
					err = fmt.Errorf("%s set %d: relative diff %.3g", c.Name, set, d.Rel())
				}
			}
			errs <- err
		}()
	}
	for g := 0; g < 12; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkORTRun measures a warm run through the helper: inference plus
// the JSON/base64 exchange.
func BenchmarkORTRun(b *testing.B) {
	for _, name := range []string{"fixture/mobile_block_op13", "resnet18_op13", "mobilenet_v2_op13"} {
		b.Run(name, func(b *testing.B) {
			var c *onnxtest.Case
			if fx, ok := strings.CutPrefix(name, "fixture/"); ok {
				c = onnxtest.Fixture(b, fx)
			} else {
				c = onnxtest.Generated(b, name)
			}
			rt := onnxtest.ORT(b)
			feeds, _ := c.Feeds(0)
			if _, err := rt.Run(c.ModelPath, feeds); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := rt.Run(c.ModelPath, feeds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
