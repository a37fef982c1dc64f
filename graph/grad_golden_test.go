package graph

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
)

// Gradient golden files: graph/testdata/grads/<case>/ holds a tiny ONNX
// model (one node, or two), its inputs, an upstream gradient U per output,
// PyTorch's outputs and PyTorch's float64 autograd gradients of
// L = sum(output ⊙ U) with respect to every graph input and every float
// initializer graft differentiates. graph/testdata/gen_grads.py makes them
// (see its doc comment); they are committed.

const (
	gradGoldenDir = "testdata/grads"
	// gradTol bounds max|got-want| relative to max|want| of each tensor.
	gradTol = 1e-4
	// gradFloor is the absolute bound when want is all zero.
	gradFloor = 1e-6
)

// zeroGradOps are ops with Gradient: true that need no golden case: their
// gradient is zero by definition. (The golden files cover them anyway.)
var zeroGradOps = map[string]string{
	"Floor": "piecewise constant: its gradient is zero wherever it is defined",
	"Ceil":  "piecewise constant: its gradient is zero wherever it is defined",
}

// dotLossKernel is the test loss sum_i sum(out_i ⊙ up_i): inputs are the k
// outputs then their k upstream gradients; the output is a scalar. Only
// the outputs take a gradient: dL/dout_i = up_i * dL.
type dotLossKernel struct{ k int }

func (d *dotLossKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	s := 0.0
	for i := 0; i < d.k; i++ {
		up := in[d.k+i].F
		for j, v := range in[i].F {
			s += float64(v) * float64(up[j])
		}
	}
	return onnx.NewFloat(nil, []float32{float32(s)}), nil
}

func (d *dotLossKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if i >= d.k {
		return nil, fmt.Errorf("the upstream gradients take no gradient")
	}
	g := onnx.NewFloat(in[i].Shape, nil)
	for j, u := range in[d.k+i].F {
		g.F[j] = u * dy.F[0]
	}
	return g, nil
}

// goldenCases returns the golden case folders, failing when there are
// none.
func goldenCases(t *testing.T) []string {
	t.Helper()
	if st, err := os.Stat(gradGoldenDir); err != nil || !st.IsDir() {
		t.Fatalf("gradient golden folder %s is missing (it is committed; regenerate it with /usr/bin/python3 graph/testdata/gen_grads.py): %v", gradGoldenDir, err)
	}
	models, err := filepath.Glob(filepath.Join(gradGoldenDir, "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(models) == 0 {
		t.Fatalf("no gradient golden cases in %s", gradGoldenDir)
	}
	dirs := make([]string, len(models))
	for i, m := range models {
		dirs[i] = filepath.Dir(m)
	}
	sort.Strings(dirs)
	return dirs
}

// maxRelErr returns max|got-want| / max|want| (the plain difference when
// want is all zero) and whether it is within tolerance.
func maxRelErr(got, want []float32) (float64, bool) {
	if len(got) != len(want) {
		return math.Inf(1), false
	}
	scale, diff := 0.0, 0.0
	for i, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
		d := math.Abs(float64(got[i]) - float64(w))
		if d > diff || math.IsNaN(d) {
			diff = d
		}
	}
	if scale == 0 {
		return diff, diff <= gradFloor
	}
	return diff / scale, diff <= gradTol*scale
}

func readGolden(t *testing.T, dir, file string) *onnx.Tensor {
	t.Helper()
	tt, err := onnx.ReadTensorFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if tt.DType != onnx.Float32 {
		t.Fatalf("%s/%s: not a float tensor", dir, file)
	}
	return tt
}

// goldenOpTypes returns the op types of a case's model, in node order.
func goldenOpTypes(m *onnx.Model) []string {
	var ops []string
	for _, n := range m.Proto.Graph.Node {
		ops = append(ops, n.OpType)
	}
	return ops
}

// checkGoldenCase builds the case's model through graft's op builders,
// differentiates L = sum(out ⊙ U) with gorgonia.Grad, runs it and compares
// outputs and gradients with PyTorch's. It returns the op types and the
// largest relative error.
func checkGoldenCase(t *testing.T, dir string) ([]string, float64) {
	m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"), onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ops := goldenOpTypes(m)
	feed := map[string]*onnx.Tensor{}
	shapes := map[string][]int{}
	for _, in := range m.Inputs() {
		x := readGolden(t, dir, "input_"+in.Name+".pb")
		feed[in.Name], shapes[in.Name] = x, x.Shape
	}
	gm, err := Build(m, Options{Shapes: shapes})
	if err != nil {
		t.Fatal(err)
	}

	// L = sum_i sum(out_i ⊙ up_i)
	k := len(gm.Outputs)
	outFile := func(prefix string, i int) string {
		if k == 1 {
			return prefix + ".pb"
		}
		return fmt.Sprintf("%s_%d.pb", prefix, i)
	}
	lossOp := &kop{k: &dotLossKernel{k: k}, opType: "GoldenLoss", id: "golden/loss", scalar: true}
	var lossIn, upNodes G.Nodes
	for i, p := range gm.Outputs {
		if p.Node == nil {
			t.Fatalf("output %q is known at build time; the case must depend on its inputs", p.Name)
		}
		lossIn = append(lossIn, p.Node)
		lossOp.in = append(lossOp.in, p.Shape)
		lossOp.diff = append(lossOp.diff, true)
		up := readGolden(t, dir, outFile("up", i))
		if !slices.Equal(up.Shape, p.Shape) {
			t.Fatalf("output %q has shape %v in graft, the upstream gradient %v", p.Name, p.Shape, up.Shape)
		}
		gs := gshape(up.Shape)
		upNodes = append(upNodes, G.NewTensor(gm.G, G.Float32, len(gs), G.WithShape(gs...),
			G.WithName(fmt.Sprintf("golden/up_%d", i)), G.WithValue(wrap(up, false))))
	}
	for _, p := range gm.Outputs {
		lossOp.in = append(lossOp.in, p.Shape)
		lossOp.diff = append(lossOp.diff, false)
	}
	loss, err := G.ApplyOpWithName(lossOp, lossOp.id, append(lossIn, upNodes...)...)
	if err != nil {
		t.Fatal(err)
	}

	// What to differentiate: every grad_<N>.pb, which must be exactly the
	// graph inputs and the weights graft differentiates.
	files, err := filepath.Glob(filepath.Join(dir, "grad_*.pb"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	inputNodes := map[string]*G.Node{}
	for _, p := range gm.Inputs {
		inputNodes[p.Name] = p.Node
	}
	var names []string
	var wrt G.Nodes
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "grad_"), ".pb")
		n, ok := inputNodes[name]
		if !ok {
			n, ok = gm.Params[name]
		}
		if !ok {
			t.Errorf("PyTorch differentiates %q, which graft holds as a constant (not an input nor a trainable weight)", name)
			continue
		}
		names = append(names, name)
		wrt = append(wrt, n)
	}
	for name := range inputNodes {
		if !slices.Contains(names, name) {
			t.Errorf("input %q has no golden gradient", name)
		}
	}
	for name := range gm.Params {
		if !slices.Contains(names, name) {
			t.Errorf("graft differentiates weight %q, which has no golden gradient", name)
		}
	}
	grads, err := gradSafe(loss, wrt)
	if err != nil {
		t.Fatal(err)
	}

	for _, p := range gm.Inputs {
		if err := G.Let(p.Node, wrap(feed[p.Name], false)); err != nil {
			t.Fatal(err)
		}
	}
	vm := G.NewTapeMachine(gm.G)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}

	worst := 0.0
	var report []string
	for i, p := range gm.Outputs {
		want := readGolden(t, dir, outFile("output", i))
		got, err := valueTensor(p.Node.Value(), p.Shape)
		if err != nil {
			t.Fatalf("output %q: %v", p.Name, err)
		}
		if !slices.Equal(want.Shape, p.Shape) {
			t.Errorf("output %q: graft's shape %v, PyTorch's %v", p.Name, p.Shape, want.Shape)
			continue
		}
		e, ok := maxRelErr(got.F, want.F)
		if !ok {
			t.Errorf("output %q: max relative error %.3g, above %g", p.Name, e, gradTol)
		}
		worst = math.Max(worst, e)
		report = append(report, fmt.Sprintf("out %s %.2e", p.Name, e))
	}
	for i, name := range names {
		want := readGolden(t, dir, "grad_"+name+".pb")
		v := grads[i].Value()
		if v == nil {
			t.Errorf("d/d%s: gorgonia computed no value", name)
			continue
		}
		got, err := valueTensor(v, want.Shape)
		if err != nil {
			t.Errorf("d/d%s: %v", name, err)
			continue
		}
		e, ok := maxRelErr(got.F, want.F)
		if !ok {
			t.Errorf("d/d%s: max relative error %.3g, above %g (max |want| %.3g)", name, e, gradTol, maxAbs(want.F))
		}
		worst = math.Max(worst, e)
		report = append(report, fmt.Sprintf("d/d%s %.2e", name, e))
	}
	t.Logf("%s: max relative error %s", strings.Join(ops, "+"), strings.Join(report, ", "))
	return ops, worst
}

func maxAbs(f []float32) float64 {
	m := 0.0
	for _, v := range f {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// TestGradientsAgainstPyTorch checks graft's forward and backward of every
// golden case against PyTorch autograd (float64), at 1e-4 relative error.
func TestGradientsAgainstPyTorch(t *testing.T) {
	worst := map[string]float64{} // per op type
	for _, dir := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ops, e := checkGoldenCase(t, dir)
			for _, op := range ops {
				worst[op] = math.Max(worst[op], e)
			}
		})
	}
	ops := make([]string, 0, len(worst))
	for op := range worst {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var sb strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&sb, "\n  %-20s %.2e", op, worst[op])
	}
	t.Logf("max relative error per op:%s", sb.String())
}
