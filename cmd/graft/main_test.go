package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// graft runs the real app on an argument string.
func graft(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"graft"}, args...), &out, &errb)
	if strings.Contains(errb.String(), "panic:") || strings.Contains(errb.String(), "goroutine ") {
		t.Errorf("graft %s printed a Go panic: %s", strings.Join(args, " "), errb.String())
	}
	return out.String(), errb.String(), code
}

func mustGraft(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := graft(t, args...)
	if code != 0 {
		t.Fatalf("graft %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

func fixture(t *testing.T, name string) *onnxtest.Case { return onnxtest.Fixture(t, name) }

func TestOps(t *testing.T) {
	out := mustGraft(t, "ops")
	for _, want := range []string{"Conv", "BatchNormalization", "Softmax", "yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("graft ops does not list %s", want)
		}
	}
	var ops []struct {
		Op       string `json:"op"`
		Gradient bool   `json:"gradient"`
		MinOpset int    `json:"min_opset"`
	}
	if err := json.Unmarshal([]byte(mustGraft(t, "ops", "--json")), &ops); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, o := range ops {
		found[o.Op] = o.Gradient
	}
	if !found["Conv"] || !found["Gemm"] || len(ops) < 50 {
		t.Fatalf("ops --json: %d ops, Conv gradient %v", len(ops), found["Conv"])
	}
}

func TestInspectFlagPositions(t *testing.T) {
	m := fixture(t, "conv_bn_pool_fc").ModelPath
	for _, args := range [][]string{{"inspect", m, "--json"}, {"inspect", "--json", m}} {
		var r struct {
			Cut *struct {
				Tensor string `json:"tensor"`
			} `json:"cut"`
			Params int            `json:"params"`
			Ops    map[string]int `json:"ops"`
			Nodes  []struct {
				Shape []int `json:"shape"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(mustGraft(t, args...)), &r); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if r.Cut == nil || r.Cut.Tensor == "" || r.Params == 0 || r.Ops["Conv"] == 0 || len(r.Nodes[0].Shape) != 4 {
			t.Fatalf("%v: report %+v", args, r)
		}
	}
	text := mustGraft(t, "inspect", m)
	for _, want := range []string{"producer", "parameters", "cut", "NODE", "Gemm"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, text)
		}
	}
}

func TestRun(t *testing.T) {
	c := fixture(t, "conv_bn_pool_fc")
	in := filepath.Join(c.Dir, "test_data_set_0", "input_0.pb")
	name := c.Sets[0].Inputs[0].Name
	dir := t.TempDir()
	for _, args := range [][]string{
		{"run", c.ModelPath, "--input", in, "--json", "--out", dir},
		{"run", "--json", "--input", name + "=" + in, c.ModelPath},
	} {
		var outs []struct {
			Name  string    `json:"name"`
			Shape []int     `json:"shape"`
			First []float64 `json:"first"`
		}
		if err := json.Unmarshal([]byte(mustGraft(t, args...)), &outs); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		want := c.Sets[0].Outputs[0]
		if len(outs) != 1 || len(outs[0].First) == 0 || float32(outs[0].First[0])-want.F[0] > 1e-4 || float32(outs[0].First[0])-want.F[0] < -1e-4 {
			t.Fatalf("%v: outputs %+v, want first %g", args, outs, want.F[0])
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pb"))
	if len(files) != 1 {
		t.Fatalf("--out wrote %v", files)
	}
	got, err := onnx.ReadTensorFile(files[0])
	if err != nil || got.Len() != c.Sets[0].Outputs[0].Len() {
		t.Fatalf("written output: %v %v", got, err)
	}
}

func TestBadInputExitCodes(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.onnx")
	os.WriteFile(junk, []byte("not a model at all"), 0o644)
	// a model with ops graft lacks
	mp := &onnx.ModelProto{IrVersion: 8, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}, Graph: &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{{Name: "x"}},
		Output: []*onnx.ValueInfoProto{{Name: "z"}},
		Node: []*onnx.NodeProto{
			{Name: "loop_1", OpType: "Loop", Input: []string{"x"}, Output: []string{"y"}},
			{Name: "nms", OpType: "NonMaxSuppression", Input: []string{"y"}, Output: []string{"z"}},
		},
	}}
	unsup := filepath.Join(dir, "unsup.onnx")
	if err := onnx.WriteFile(unsup, mp, false); err != nil {
		t.Fatal(err)
	}
	c := fixture(t, "conv_bn_pool_fc")
	wrongShape := filepath.Join(dir, "wrong.npy")
	writeNpy(t, wrongShape, []int{1, 2})
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", filepath.Join(dir, "missing.onnx")}, "missing.onnx"},
		{[]string{"inspect", junk}, "junk.onnx: invalid ONNX model"},
		{[]string{"run", unsup, "--input", wrongShape}, `2 nodes use ops graft does not support: Loop (node "loop_1"), NonMaxSuppression (node "nms")`},
		{[]string{"run", c.ModelPath, "--input", wrongShape}, "wrong.npy: input"},
		{[]string{"run", c.ModelPath}, "has no value; give it with --input"},
		{[]string{"inspect", c.ModelPath, "--max-memory", "12"}, "above the 12-byte limit"},
		{[]string{"convert", c.ModelPath, "--out", c.ModelPath, "--cut", "auto"}, "is the input model"},
		{[]string{"convert", c.ModelPath, "--out", filepath.Join(dir, "o.onnx"), "--cut", "nope"}, `no tensor named "nope"`},
	}
	for _, tc := range cases {
		out, errs, code := graft(t, tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) || !strings.HasPrefix(errs, "graft: ") && !strings.Contains(errs, "\ngraft: ") {
			t.Errorf("graft %s: exit %d, stderr %q, stdout %q; want exit 1 and %q", strings.Join(tc.args, " "), code, errs, out, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o.onnx")); err == nil {
		t.Error("a failed convert left a file")
	}
}

func writeNpy(t *testing.T, path string, shape []int) {
	t.Helper()
	if err := os.WriteFile(path, onnx.EncodeNpy(onnx.NewFloat(shape, nil)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEveryArchitecture runs `graft inspect` and `graft run` on every
// generated PyTorch export: inspect finds shapes and a cut point, and run
// reproduces PyTorch's output.
func TestEveryArchitecture(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs every generated architecture")
	}
	onnxtest.GeneratedDir(t) // skips, or fails under CI, without them
	for _, name := range []string{
		"resnet18", "resnet18_op13", "mobilenet_v2", "mobilenet_v2_op13", "squeezenet1_1", "squeezenet1_1_op13",
		"efficientnet_b0", "efficientnet_b0_op13", "densenet121", "densenet121_op13", "mobilenet_v2_dynbatch", "resnet18_bnpreserve",
	} {
		t.Run(name, func(t *testing.T) {
			c := onnxtest.Generated(t, name)
			var r struct {
				Cut *struct {
					Tensor string `json:"tensor"`
				} `json:"cut"`
				BuildError string `json:"build_error"`
			}
			if err := json.Unmarshal([]byte(mustGraft(t, "inspect", c.ModelPath, "--json")), &r); err != nil {
				t.Fatal(err)
			}
			if r.Cut == nil || r.BuildError != "" {
				t.Fatalf("inspect: cut %v, build error %q", r.Cut, r.BuildError)
			}
			out := t.TempDir()
			mustGraft(t, "run", c.ModelPath, "--input", filepath.Join(c.Dir, "test_data_set_0", "input_0.pb"), "--out", out)
			files, _ := filepath.Glob(filepath.Join(out, "*.pb"))
			if len(files) != 1 {
				t.Fatalf("run wrote %v", files)
			}
			got, err := onnx.ReadTensorFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			onnxtest.AssertClose(t, name+" via graft run", got, c.Sets[0].Outputs[0], 1e-5) // as graph.relTol: worst measured 9.8e-7
		})
	}
}

// TestThreadsFlag: every command that computes takes --threads, which the
// kernels then keep to; 0 and negative values are usage errors.
func TestThreadsFlag(t *testing.T) {
	for _, cmd := range []string{"run", "convert", "adapt", "eval", "predict", "features", "bench", "batch"} {
		if out := mustGraft(t, cmd, "--help"); !strings.Contains(out, "--threads") {
			t.Errorf("graft %s has no --threads", cmd)
		}
	}
	c := fixture(t, "conv_bn_pool_fc")
	in := filepath.Join(c.Dir, "test_data_set_0", "input_0.pb")
	defer graph.SetThreads(graph.SetThreads(0))
	mustGraft(t, "run", c.ModelPath, "--input", in, "--threads", "1")
	if graph.Threads() != 1 {
		t.Errorf("after run --threads 1 the kernels may use %d goroutines", graph.Threads())
	}
	for _, v := range []string{"0", "-2"} {
		if _, errs, code := graft(t, "run", c.ModelPath, "--input", in, "--threads", v); code != 2 || !strings.Contains(errs, "--threads "+v) {
			t.Errorf("--threads %s: exit %d, %q", v, code, errs)
		}
	}
}
