package native

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/graph"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// nativeRand returns n normal float32s (scaled) from r.
func nativeRand(r *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * scale)
	}
	return out
}

// nativeParam makes a named float32 input node holding random values.
func nativeParam(g *G.ExprGraph, r *rand.Rand, name string, scale float64, shape ...int) *G.Node {
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(nativeRand(r, onnx.NumElems(shape), scale)))
	return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(t))
}

// nativeMust returns a function that fails t on an error and passes the
// node on, for chaining gorgonia calls.
func nativeMust(t *testing.T) func(*G.Node, error) *G.Node {
	return func(n *G.Node, err error) *G.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// nativeTensor copies a gorgonia value into an onnx.Tensor.
func nativeTensor(t *testing.T, v G.Value) *onnx.Tensor {
	t.Helper()
	f, err := floats(v)
	if err != nil {
		t.Fatal(err)
	}
	return onnx.NewFloat(v.Shape(), f)
}

// nativeCNN is a small CNN built with gorgonia's own API.
type nativeCNN struct {
	g         *G.ExprGraph
	x, y      *G.Node
	probs     *G.Node
	loss      *G.Node
	learnable G.Nodes
}

func buildNativeCNN(t *testing.T, r *rand.Rand, batch, ch, classes int) *nativeCNN {
	const filters = 4
	must := nativeMust(t)
	g := G.NewGraph()
	m := &nativeCNN{g: g}
	m.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, ch, 8, 8), G.WithName("x"))
	m.y = G.NewMatrix(g, tensor.Float32, G.WithShape(batch, classes), G.WithName("y"))
	w1 := nativeParam(g, r, "conv1.w", 0.4, filters, ch, 3, 3)
	conv := must(G.Conv2d(m.x, w1, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))

	// A frozen batch norm as arithmetic: (x - mean) * scale / sqrt(var + eps) + bias,
	// with mean and var gorgonia constants and scale and bias learned.
	bc := func(shape ...int) tensor.Tensor {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(nativeRand(r, onnx.NumElems(shape), 0.3)))
	}
	mean := G.NewConstant(bc(1, filters, 1, 1), G.WithName("bn.mean"), G.In(g))
	vr := bc(1, filters, 1, 1)
	for i, v := range vr.Data().([]float32) {
		vr.Data().([]float32)[i] = 0.5 + v*v
	}
	variance := G.NewConstant(vr, G.WithName("bn.var"), G.In(g))
	eps := G.NewConstant(float32(1e-5), G.WithName("bn.eps"), G.In(g))
	scale := nativeParam(g, r, "bn.scale", 0.3, 1, filters, 1, 1)
	// bias has shape [C]: Reshape makes it [1, C, 1, 1] for broadcasting.
	bias := nativeParam(g, r, "bn.bias", 0.3, filters)
	bias4 := must(G.Reshape(bias, tensor.Shape{1, filters, 1, 1}))
	std := must(G.Sqrt(must(G.Add(variance, eps))))
	bn := must(G.BroadcastSub(conv, mean, nil, []byte{0, 2, 3}))
	bn = must(G.BroadcastHadamardProd(bn, scale, nil, []byte{0, 2, 3}))
	bn = must(G.BroadcastHadamardDiv(bn, std, nil, []byte{0, 2, 3}))
	bn = must(G.BroadcastAdd(bn, bias4, nil, []byte{0, 2, 3}))

	act := must(G.Rectify(bn))
	pool := must(G.MaxPool2D(act, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
	feat := filters * 4 * 4
	flat := must(G.Reshape(pool, tensor.Shape{batch, feat}))
	w2 := nativeParam(g, r, "fc.w", 0.3, feat, classes)
	b2 := nativeParam(g, r, "fc.b", 0.3, classes)
	logits := must(G.Mul(flat, w2))
	logits = must(G.BroadcastAdd(logits, b2, nil, []byte{0}))
	m.probs = must(G.SoftMax(logits))

	// Cross-entropy for one-hot y: -mean over the batch of log(sum(y * p)).
	// (Not log(p): gorgonia's Log of a softmax node turns that very node
	// into a log-softmax, which would change the probs output.)
	picked := must(G.Sum(must(G.HadamardProd(m.y, m.probs)), 1))
	m.loss = must(G.Neg(must(G.Mean(must(G.Log(picked))))))
	m.learnable = G.Nodes{w1, scale, bias, w2, b2}
	return m
}

func nativeOneHot(r *rand.Rand, batch, classes int) tensor.Tensor {
	d := make([]float32, batch*classes)
	for i := range batch {
		d[i*classes+r.IntN(classes)] = 1
	}
	return tensor.New(tensor.WithShape(batch, classes), tensor.WithBacking(d))
}

func TestExportGorgoniaCNN(t *testing.T) {
	for _, ch := range []int{1, 3} {
		t.Run(map[int]string{1: "gray", 3: "rgb"}[ch], func(t *testing.T) {
			testExportGorgoniaCNN(t, ch)
		})
	}
}

func testExportGorgoniaCNN(t *testing.T, ch int) {
	const batch, classes = 4, 5
	r := rand.New(rand.NewPCG(7, uint64(ch)))
	m := buildNativeCNN(t, r, batch, ch, classes)
	if _, err := G.Grad(m.loss, m.learnable...); err != nil {
		t.Fatal(err)
	}
	before := nativeTensor(t, m.learnable[0].Value())

	// Train a few steps natively.
	vm := G.NewTapeMachine(m.g, G.BindDualValues(m.learnable...))
	solver := G.NewAdamSolver(G.WithLearnRate(0.05))
	var losses []float32
	xv := tensor.New(tensor.WithShape(batch, ch, 8, 8), tensor.WithBacking(nativeRand(r, batch*ch*64, 1)))
	yv := nativeOneHot(r, batch, classes)
	for range 8 {
		if err := G.Let(m.x, xv); err != nil {
			t.Fatal(err)
		}
		if err := G.Let(m.y, yv); err != nil {
			t.Fatal(err)
		}
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		losses = append(losses, m.loss.Value().Data().(float32))
		if err := solver.Step(G.NodesToValueGrads(m.learnable)); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	vm.Close()
	after := nativeTensor(t, m.learnable[0].Value())
	if d, _ := onnxtest.Compare(after, before); d.MaxAbs == 0 {
		t.Fatalf("training did not change the conv weights")
	}
	t.Logf("training losses: %v", losses)
	if !(losses[len(losses)-1] < losses[0]) {
		t.Errorf("training did not lower the loss: %v", losses)
	}

	// Run once in eval on a fixed input.
	xEval := onnx.NewFloat([]int{batch, ch, 8, 8}, nativeRand(r, batch*ch*64, 1))
	if err := G.Let(m.x, tensor.New(tensor.WithShape(batch, ch, 8, 8), tensor.WithBacking(slices.Clone(xEval.F)))); err != nil {
		t.Fatal(err)
	}
	var got G.Value
	G.Read(m.probs, &got)
	eval := G.NewTapeMachine(m.g)
	if err := eval.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := nativeTensor(t, got)
	eval.Close()

	mp, err := ExportGorgonia(m.g, NativeExport{
		Inputs:  []*G.Node{m.x},
		Outputs: []*G.Node{m.probs},
		Names:   map[*G.Node]string{m.probs: "probs"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, n := range mp.Graph.Node {
		ops = append(ops, n.OpType)
	}
	t.Logf("exported ops: %v", ops)
	for _, op := range []string{"Conv", "Relu", "MaxPool", "Softmax"} {
		if !slices.Contains(ops, op) {
			t.Errorf("no %s node among %v", op, ops)
		}
	}
	for _, op := range ops {
		if op == "Expand" || op == "Shape" {
			t.Errorf("unexpected %s node: the broadcasts should be ONNX broadcasting", op)
		}
	}
	var inits []string
	for _, in := range mp.Graph.Initializer {
		inits = append(inits, in.Name)
	}
	for _, name := range []string{"conv1.w", "bn.mean", "bn.var", "bn.scale", "bn.bias", "fc.w", "fc.b"} {
		if !slices.Contains(inits, name) {
			t.Errorf("no initializer %q among %v", name, inits)
		}
	}
	for _, tp := range mp.Graph.Initializer {
		if tp.Name == "conv1.w" {
			w, err := onnx.TensorFromProto(tp)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := onnxtest.Compare(w, after); d.MaxAbs != 0 {
				t.Errorf("conv1.w holds other values than the trained weights (max diff %g)", d.MaxAbs)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "cnn.onnx")
	if err := onnx.WriteFile(path, mp, false); err != nil {
		t.Fatal(err)
	}
	feed := map[string]*onnx.Tensor{"x": xEval}

	t.Run("checker", func(t *testing.T) {
		if err := onnxtest.Checker(t)(path); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ort", func(t *testing.T) {
		outs, err := onnxtest.ORT(t).Run(path, feed)
		if err != nil {
			t.Fatal(err)
		}
		nativeAssert(t, "onnx runtime", outs["probs"], want)
	})
	t.Run("graft", func(t *testing.T) {
		src, err := onnx.ReadFile(path, onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		gm, err := graph.Build(src, graph.Options{Shapes: map[string][]int{"x": {batch, ch, 8, 8}}})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := gm.Run(feed)
		if err != nil {
			t.Fatal(err)
		}
		nativeAssert(t, "graft re-import", outs["probs"], want)
	})
}

// nativeAssert checks max |got-want| <= 1e-4 * max |want| and logs the error.
func nativeAssert(t *testing.T, what string, got, want *onnx.Tensor) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no output", what)
	}
	d, err := onnxtest.Compare(got, want)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: max abs error %.3g (max |output| %.3g)", what, d.MaxAbs, d.Ref)
	onnxtest.AssertClose(t, what, got, want, 1e-4)
}

// TestExportGorgoniaMLPDynamicBatch exports a float64 MLP traced at batch
// 4 with a symbolic batch and runs it at batch 1 and 3.
func TestExportGorgoniaMLPDynamicBatch(t *testing.T) {
	const in, hidden, out = 6, 8, 3
	r := rand.New(rand.NewPCG(11, 12))
	must := nativeMust(t)
	g := G.NewGraph()
	p64 := func(name string, shape ...int) (*G.Node, []float64) {
		d := make([]float64, onnx.NumElems(shape))
		for i := range d {
			d[i] = r.NormFloat64() * 0.5
		}
		v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
		return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v)), d
	}
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, in), G.WithName("features"))
	w1, w1v := p64("w1", in, hidden)
	b1, b1v := p64("b1", hidden)
	w2, w2v := p64("w2", hidden, out)
	b2, b2v := p64("b2", out)
	h := must(G.Tanh(must(G.BroadcastAdd(must(G.Mul(x, w1)), b1, nil, []byte{0}))))
	y := must(G.Sigmoid(must(G.BroadcastAdd(must(G.Mul(h, w2)), b2, nil, []byte{0}))))
	avg := must(G.Mean(y, 0)) // the batch size is a run-time value here

	mp, err := ExportGorgonia(g, NativeExport{
		Inputs:       []*G.Node{x},
		Outputs:      []*G.Node{y, avg},
		Names:        map[*G.Node]string{y: "scores", avg: "mean_score"},
		DynamicBatch: true,
		ProducerName: "native-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	dim := mp.Graph.Input[0].Type.GetTensorType().Shape.Dim[0]
	if dim.GetDimParam() != "N" {
		t.Errorf("input batch dimension %v, want the symbolic N", dim)
	}
	if mp.ProducerName != "native-test" {
		t.Errorf("producer %q", mp.ProducerName)
	}
	path := filepath.Join(t.TempDir(), "mlp.onnx")
	if err := onnx.WriteFile(path, mp, false); err != nil {
		t.Fatal(err)
	}

	ref := func(xs []float32, n int) (*onnx.Tensor, *onnx.Tensor) {
		scores := make([]float32, n*out)
		mean := make([]float32, out)
		for b := range n {
			hv := make([]float64, hidden)
			for j := range hidden {
				s := b1v[j]
				for i := range in {
					s += float64(xs[b*in+i]) * w1v[i*hidden+j]
				}
				hv[j] = math.Tanh(s)
			}
			for k := range out {
				s := b2v[k]
				for j := range hidden {
					s += hv[j] * w2v[j*out+k]
				}
				scores[b*out+k] = float32(1 / (1 + math.Exp(-s)))
				mean[k] += scores[b*out+k] / float32(n)
			}
		}
		return onnx.NewFloat([]int{n, out}, scores), onnx.NewFloat([]int{out}, mean)
	}

	t.Run("checker", func(t *testing.T) {
		if err := onnxtest.Checker(t)(path); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ort", func(t *testing.T) {
		rt := onnxtest.ORT(t)
		for _, n := range []int{1, 3} {
			xs := nativeRand(r, n*in, 1)
			outs, err := rt.Run(path, map[string]*onnx.Tensor{"features": onnx.NewFloat([]int{n, in}, xs)})
			if err != nil {
				t.Fatal(err)
			}
			ws, wm := ref(xs, n)
			nativeAssert(t, "onnx runtime scores, batch "+string(rune('0'+n)), outs["scores"], ws)
			nativeAssert(t, "onnx runtime mean, batch "+string(rune('0'+n)), outs["mean_score"], wm)
		}
	})
	t.Run("graft", func(t *testing.T) {
		src, err := onnx.ReadFile(path, onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 3} {
			gm, err := graph.Build(src, graph.Options{Batch: n})
			if err != nil {
				t.Fatal(err)
			}
			xs := nativeRand(r, n*in, 1)
			outs, err := gm.Run(map[string]*onnx.Tensor{"features": onnx.NewFloat([]int{n, in}, xs)})
			if err != nil {
				t.Fatal(err)
			}
			ws, wm := ref(xs, n)
			nativeAssert(t, "graft scores, batch "+string(rune('0'+n)), outs["scores"], ws)
			nativeAssert(t, "graft mean, batch "+string(rune('0'+n)), outs["mean_score"], wm)
		}
	})
}

func TestExportGorgoniaErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	must := nativeMust(t)
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 5), G.WithName("x"))
	sp := must(G.Sparsemax(x))
	G.WithName("sparse")(sp)
	_, err := ExportGorgonia(g, NativeExport{Inputs: []*G.Node{x}, Outputs: []*G.Node{sp}})
	t.Logf("Sparsemax: %v", err)
	var ne *NativeOpError
	if !errors.As(err, &ne) {
		t.Fatalf("Sparsemax: got %v, want a *NativeOpError", err)
	}
	if ne.Node != "sparse" || !strings.Contains(err.Error(), `"sparse"`) || !strings.Contains(err.Error(), "has no ONNX counterpart in graft") ||
		!strings.Contains(err.Error(), "sparsemax") {
		t.Errorf("Sparsemax: error %q should name the node, its op and say it has no ONNX counterpart", err)
	}

	// An input node with no value that is not among Inputs.
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(5, 3), G.WithName("w"))
	mm := must(G.Mul(x, w))
	_, err = ExportGorgonia(g, NativeExport{Inputs: []*G.Node{x}, Outputs: []*G.Node{mm}})
	if err == nil || !strings.Contains(err.Error(), `"w"`) || !strings.Contains(err.Error(), "no value") {
		t.Errorf("input without value: got %v", err)
	}

	// A weight whose first dimension is the batch size cannot follow a run-time batch.
	wb := nativeParam(g, r, "per_sample", 1, 2, 5)
	sum := must(G.Add(x, wb))
	_, err = ExportGorgonia(g, NativeExport{Inputs: []*G.Node{x}, Outputs: []*G.Node{sum}, DynamicBatch: true})
	if err == nil || !strings.Contains(err.Error(), "DynamicBatch") {
		t.Errorf("batch-sized weight with DynamicBatch: got %v", err)
	}
	if _, err := ExportGorgonia(g, NativeExport{Inputs: []*G.Node{x}, Outputs: []*G.Node{sum}}); err != nil {
		t.Errorf("batch-sized weight without DynamicBatch: %v", err)
	}
}

// nativeCase is a small graph over one input x for TestExportGorgoniaOps.
type nativeCase struct {
	name  string
	shape []int
	pos   bool // feed positive values (log, sqrt, ...)
	build func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node
	op    string // an ONNX op the export must contain
}

func nativeUnary(name, op string, pos bool, f func(*G.Node) (*G.Node, error)) nativeCase {
	return nativeCase{name: name, shape: []int{3, 4}, pos: pos, op: op,
		build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node { return nativeMust(t)(f(x)) }}
}

func nativeBinary(name, op string, f func(a, b *G.Node) (*G.Node, error)) nativeCase {
	return nativeCase{name: name, shape: []int{3, 4}, op: op, build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(f(x, nativeParam(g, r, "w", 1, 3, 4)))
	}}
}

func nativeCmp(name, op string, f func(a, b *G.Node, retSame bool) (*G.Node, error)) nativeCase {
	return nativeBinary(name, op, func(a, b *G.Node) (*G.Node, error) { return f(a, b, true) })
}

var nativeCases = []nativeCase{
	nativeUnary("exp", "Exp", false, G.Exp),
	nativeUnary("ln", "Log", true, G.Log),
	nativeUnary("log2", "Log", true, G.Log2),
	nativeUnary("neg", "Neg", false, G.Neg),
	nativeUnary("square", "Mul", false, G.Square),
	nativeUnary("sqrt", "Sqrt", true, G.Sqrt),
	nativeUnary("inverse", "Reciprocal", true, G.Inverse),
	nativeUnary("inverse_sqrt", "Reciprocal", true, G.InverseSqrt),
	nativeUnary("cube", "Mul", false, G.Cube),
	nativeUnary("tanh", "Tanh", false, G.Tanh),
	nativeUnary("sigmoid", "Sigmoid", false, G.Sigmoid),
	nativeUnary("log1p", "Log", true, G.Log1p),
	nativeUnary("expm1", "Exp", false, G.Expm1),
	nativeUnary("softplus", "Softplus", false, G.Softplus),
	nativeUnary("abs", "Abs", false, G.Abs),
	nativeUnary("sin", "Sin", false, G.Sin),
	nativeUnary("cos", "Cos", false, G.Cos),
	nativeUnary("sign", "Sign", false, G.Sign),
	nativeUnary("ceil", "Ceil", false, G.Ceil),
	nativeUnary("floor", "Floor", false, G.Floor),
	nativeUnary("rectify", "Relu", false, G.Rectify),
	nativeUnary("leaky_relu", "Less", false, func(x *G.Node) (*G.Node, error) { return G.LeakyRelu(x, 0.1) }),
	nativeUnary("dropout_p0", "Identity", false, func(x *G.Node) (*G.Node, error) { return G.Dropout(x, 0) }),
	nativeUnary("softmax_axis0", "Softmax", false, func(x *G.Node) (*G.Node, error) { return G.SoftMax(x, 0) }),
	nativeUnary("log_softmax", "LogSoftmax", false, func(x *G.Node) (*G.Node, error) { return G.LogSoftMax(x) }),
	nativeUnary("sum_axis1", "ReduceSum", false, func(x *G.Node) (*G.Node, error) { return G.Sum(x, 1) }),
	nativeUnary("sum_all", "ReduceSum", false, func(x *G.Node) (*G.Node, error) { return G.Sum(x) }),
	nativeUnary("max_axis0", "ReduceMax", false, func(x *G.Node) (*G.Node, error) { return G.Max(x, 0) }),
	nativeUnary("mean_axis1", "ReduceSum", false, func(x *G.Node) (*G.Node, error) { return G.Mean(x, 1) }),
	nativeUnary("transpose", "Transpose", false, func(x *G.Node) (*G.Node, error) { return G.Transpose(x) }),
	nativeUnary("slice_cols", "Slice", false, func(x *G.Node) (*G.Node, error) { return G.Slice(x, nil, G.S(1, 3)) }),
	nativeUnary("slice_row", "Slice", false, func(x *G.Node) (*G.Node, error) { return G.Slice(x, G.S(1)) }),
	nativeUnary("pow_const", "Pow", true, func(x *G.Node) (*G.Node, error) { return G.Pow(x, G.NewConstant(float32(1.5))) }),
	nativeBinary("add", "Add", G.Add),
	nativeBinary("sub", "Sub", G.Sub),
	nativeBinary("hadamard_prod", "Mul", G.HadamardProd),
	nativeBinary("hadamard_div", "Div", G.HadamardDiv),
	nativeBinary("min_between", "Min", G.MinBetween),
	nativeBinary("max_between", "Max", G.MaxBetween),
	nativeBinary("concat", "Concat", func(a, b *G.Node) (*G.Node, error) { return G.Concat(1, a, b) }),
	nativeCmp("gt", "Greater", G.Gt),
	nativeCmp("gte", "GreaterOrEqual", G.Gte),
	nativeCmp("lt", "Less", G.Lt),
	nativeCmp("lte", "LessOrEqual", G.Lte),
	nativeCmp("ne", "Not", G.Ne),
	{name: "softmax_3d_axis1", shape: []int{2, 3, 4}, op: "Softmax", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.SoftMax(x, 1))
	}},
	{name: "transpose_3d", shape: []int{2, 3, 4}, op: "Transpose", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.Transpose(x, 2, 0, 1))
	}},
	{name: "sum_axes02", shape: []int{2, 3, 4}, op: "ReduceSum", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		must := nativeMust(t)
		return must(G.Sum(must(G.Sum(x, 2)), 0)) // one axis at a time: gorgonia's multi-axis sums are wrong
	}},
	{name: "matvec", shape: []int{3, 4}, op: "MatMul", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.Mul(x, nativeParam(g, r, "v", 1, 4)))
	}},
	{name: "vecmat", shape: []int{3, 4}, op: "MatMul", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.Mul(nativeParam(g, r, "v", 1, 3), x))
	}},
	{name: "vecdot", shape: []int{4}, op: "MatMul", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.Mul(x, nativeParam(g, r, "v", 1, 4)))
	}},
	{name: "outer", shape: []int{4}, op: "Mul", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.OuterProd(x, nativeParam(g, r, "v", 1, 3)))
	}},
	{name: "batched_matmul", shape: []int{2, 3, 4}, op: "MatMul", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.BatchedMatMul(x, nativeParam(g, r, "w", 1, 2, 4, 5)))
	}},
	{name: "batched_matmul_trans", shape: []int{2, 4, 3}, op: "MatMul", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.BatchedMatMul(x, nativeParam(g, r, "w", 1, 2, 5, 4), true, true))
	}},
	{name: "broadcast_left", shape: []int{3, 4}, op: "Sub", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.BroadcastSub(nativeParam(g, r, "v", 1, 3, 1), x, []byte{1}, nil))
	}},
	{name: "broadcast_materialized", shape: []int{3, 4}, op: "Expand", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		// The repeated operand feeds a matmul, which does not broadcast.
		_, vb, err := G.Broadcast(x, nativeParam(g, r, "v", 1, 4), G.NewBroadcastPattern(nil, []byte{0}))
		if err != nil {
			t.Fatal(err)
		}
		return nativeMust(t)(G.Mul(x, nativeMust(t)(G.Transpose(vb))))
	}},
	{name: "repeat_elements", shape: []int{2, 3}, op: "Expand", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		// A "broadcast" along an axis of size 2 repeats each row (numpy's repeat).
		xa, _, err := G.Broadcast(x, nativeParam(g, r, "v", 1, 3, 3), G.NewBroadcastPattern([]byte{0}, nil))
		return nativeMust(t)(xa, err)
	}},
	{name: "maxpool_pad_stride", shape: []int{2, 3, 7, 7}, op: "MaxPool", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.MaxPool2D(x, tensor.Shape{3, 3}, []int{1, 1}, []int{2, 2}))
	}},
	{name: "maxpool_explicit_pads", shape: []int{1, 2, 6, 6}, op: "MaxPool", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.MaxPool2D(x, tensor.Shape{2, 3}, []int{1, 0, 0, 2}, []int{2, 1}))
	}},
	{name: "conv_stride_dilation", shape: []int{2, 3, 9, 9}, op: "Conv", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.Conv2d(x, nativeParam(g, r, "w", 0.5, 4, 3, 3, 2), tensor.Shape{3, 2}, []int{2, 1}, []int{2, 1}, []int{2, 1}))
	}},
	{name: "im2col", shape: []int{2, 2, 5, 5}, op: "Conv", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.Im2Col(x, tensor.Shape{3, 3}, tensor.Shape{1, 1}, tensor.Shape{2, 2}, tensor.Shape{1, 1}))
	}},
	{name: "conv_internals", shape: []int{2, 3, 5, 5}, op: "Gemm", build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node) *G.Node {
		// Conv2d's inner matmul as an output: im2col and "A × Bᵀ" on their own.
		nativeMust(t)(G.Conv2d(x, nativeParam(g, r, "w", 0.5, 4, 3, 3, 3), tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))
		for _, n := range g.AllNodes() {
			if n.Op() != nil && n.Op().String() == "A × Bᵀ" {
				return n
			}
		}
		t.Fatal("no A × Bᵀ node in Conv2d")
		return nil
	}},
	{name: "global_average_pool", shape: []int{2, 3, 4, 5}, op: "GlobalAveragePool", build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node) *G.Node {
		return nativeMust(t)(G.GlobalAveragePool2D(x))
	}},
}

// TestExportGorgoniaOps exports one small graph per mapped gorgonia op and
// compares ONNX Runtime (and graft, where it reads every op) with
// gorgonia's own result.
func TestExportGorgoniaOps(t *testing.T) {
	check := onnxtest.Checker(t)
	rt := onnxtest.ORT(t)
	dir := t.TempDir()
	for i, c := range nativeCases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 99))
			g := G.NewGraph()
			x := G.NewTensor(g, tensor.Float32, len(c.shape), G.WithShape(c.shape...), G.WithName("x"))
			y := c.build(t, g, r, x)
			xs := nativeRand(r, onnx.NumElems(c.shape), 1)
			if c.pos {
				for i, v := range xs {
					xs[i] = float32(math.Abs(float64(v))) + 0.5
				}
			}
			if err := G.Let(x, tensor.New(tensor.WithShape(c.shape...), tensor.WithBacking(slices.Clone(xs)))); err != nil {
				t.Fatal(err)
			}
			var got G.Value
			G.Read(y, &got)
			vm := G.NewTapeMachine(g)
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			vm.Close()
			want := nativeTensor(t, got)

			mp, err := ExportGorgonia(g, NativeExport{Inputs: []*G.Node{x}, Outputs: []*G.Node{y}, Names: map[*G.Node]string{y: "y"}})
			if err != nil {
				t.Fatal(err)
			}
			var ops []string
			for _, n := range mp.Graph.Node {
				ops = append(ops, n.OpType)
			}
			if !slices.Contains(ops, c.op) {
				t.Errorf("no %s among the exported ops %v", c.op, ops)
			}
			path := filepath.Join(dir, c.name+".onnx")
			if err := onnx.WriteFile(path, mp, false); err != nil {
				t.Fatal(err)
			}
			if err := check(path); err != nil {
				t.Error(err)
			}
			feed := map[string]*onnx.Tensor{"x": onnx.NewFloat(c.shape, xs)}
			outs, err := rt.Run(path, feed)
			if err != nil {
				t.Fatalf("%v (ops %v)", err, ops)
			}
			onnxtest.AssertClose(t, "onnx runtime", outs["y"], want, 1e-5)

			src, err := onnx.ReadFile(path, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := graph.CheckOps(src); err != nil {
				t.Logf("graft re-import skipped: %v", err)
				return
			}
			gm, err := graph.Build(src, graph.Options{})
			if err != nil {
				t.Fatal(err)
			}
			gouts, err := gm.Run(feed)
			if err != nil {
				t.Fatal(err)
			}
			onnxtest.AssertClose(t, "graft re-import", gouts["y"], want, 1e-5)
		})
	}
}

// nativeDynCase is a graph whose input x has the batch as first axis.
type nativeDynCase struct {
	name  string
	shape []int // x's shape after the batch axis
	build func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node, batch int) *G.Node
}

var nativeDynCases = []nativeDynCase{
	{name: "cnn", shape: []int{2, 6, 6}, build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node, batch int) *G.Node {
		must := nativeMust(t)
		c := must(G.Conv2d(x, nativeParam(g, r, "w", 0.5, 3, 2, 3, 3), tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))
		b := must(G.Reshape(nativeParam(g, r, "b", 0.5, 3), tensor.Shape{1, 3, 1, 1}))
		c = must(G.Rectify(must(G.BroadcastAdd(c, b, nil, []byte{0, 2, 3}))))
		p := must(G.MaxPool2D(c, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
		f := must(G.Reshape(p, tensor.Shape{batch, 27}))
		return must(G.SoftMax(must(G.Mul(f, nativeParam(g, r, "fc", 0.3, 27, 4)))))
	}},
	{name: "broadcast_then_reduce_batch", shape: []int{4}, build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node, _ int) *G.Node {
		// v repeated to x's (run-time) batch size, then summed over it: N * v.
		_, vb, err := G.Broadcast(x, nativeParam(g, r, "v", 1, 4), G.NewBroadcastPattern(nil, []byte{0}))
		if err != nil {
			t.Fatal(err)
		}
		return nativeMust(t)(G.Sum(vb, 0))
	}},
	{name: "mean_all", shape: []int{3}, build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node, _ int) *G.Node {
		return nativeMust(t)(G.Mean(x))
	}},
	{name: "transpose_batch_inner", shape: []int{3, 4}, build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node, _ int) *G.Node {
		return nativeMust(t)(G.Sum(nativeMust(t)(G.Transpose(x, 1, 0, 2)), 2))
	}},
	{name: "concat_features", shape: []int{3}, build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node, _ int) *G.Node {
		return nativeMust(t)(G.Concat(1, x, nativeMust(t)(G.Tanh(x))))
	}},
	{name: "fold_batch", shape: []int{3, 4}, build: func(t *testing.T, g *G.ExprGraph, r *rand.Rand, x *G.Node, batch int) *G.Node {
		must := nativeMust(t)
		f := must(G.Reshape(x, tensor.Shape{batch * 3, 4}))
		y := must(G.Mul(f, nativeParam(g, r, "w", 1, 4, 2)))
		return must(G.Reshape(y, tensor.Shape{batch, 6}))
	}},
	{name: "im2col", shape: []int{2, 5, 5}, build: func(t *testing.T, _ *G.ExprGraph, _ *rand.Rand, x *G.Node, _ int) *G.Node {
		return nativeMust(t)(G.Im2Col(x, tensor.Shape{3, 3}, tensor.Shape{1, 1}, tensor.Shape{2, 2}, tensor.Shape{1, 1}))
	}},
}

// TestExportGorgoniaDynamicOps exports graphs traced at batch 4 with
// DynamicBatch and compares them at batch 1 and 3 with the same graphs
// built by gorgonia at those sizes.
func TestExportGorgoniaDynamicOps(t *testing.T) {
	check := onnxtest.Checker(t)
	rt := onnxtest.ORT(t)
	dir := t.TempDir()
	for i, c := range nativeDynCases {
		t.Run(c.name, func(t *testing.T) {
			// run builds the case at a batch size and returns gorgonia's
			// output for input xs, the graph and its nodes.
			run := func(batch int, xs []float32) (*onnx.Tensor, *G.ExprGraph, *G.Node, *G.Node) {
				r := rand.New(rand.NewPCG(uint64(i), 5)) // same weights at every batch size
				shape := append([]int{batch}, c.shape...)
				g := G.NewGraph()
				x := G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName("x"))
				y := c.build(t, g, r, x, batch)
				if err := G.Let(x, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(xs)))); err != nil {
					t.Fatal(err)
				}
				var got G.Value
				G.Read(y, &got)
				vm := G.NewTapeMachine(g)
				defer vm.Close()
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				return nativeTensor(t, got), g, x, y
			}
			r := rand.New(rand.NewPCG(uint64(i), 6))
			n := onnx.NumElems(c.shape)
			_, g, x, y := run(4, nativeRand(r, 4*n, 1))
			mp, err := ExportGorgonia(g, NativeExport{Inputs: []*G.Node{x}, Outputs: []*G.Node{y}, Names: map[*G.Node]string{y: "y"}, DynamicBatch: true})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.name+".onnx")
			if err := onnx.WriteFile(path, mp, false); err != nil {
				t.Fatal(err)
			}
			if err := check(path); err != nil {
				t.Error(err)
			}
			src, err := onnx.ReadFile(path, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range []int{1, 3} {
				xs := nativeRand(r, batch*n, 1)
				want, _, _, _ := run(batch, xs)
				feed := map[string]*onnx.Tensor{"x": onnx.NewFloat(append([]int{batch}, c.shape...), xs)}
				outs, err := rt.Run(path, feed)
				if err != nil {
					t.Fatal(err)
				}
				onnxtest.AssertClose(t, fmt.Sprintf("onnx runtime, batch %d", batch), outs["y"], want, 1e-5)
				gm, err := graph.Build(src, graph.Options{Batch: batch})
				if err != nil {
					t.Fatal(err)
				}
				gouts, err := gm.Run(feed)
				if err != nil {
					t.Fatal(err)
				}
				onnxtest.AssertClose(t, fmt.Sprintf("graft re-import, batch %d", batch), gouts["y"], want, 1e-5)
			}
		})
	}
}
