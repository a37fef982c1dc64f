package graph

import (
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// ---- single-node models, shared by the activation, norm, linalg and
// reduce tests

// opIn is one input of a single-node test model: a graph input (fed, or
// given at build time when const), an initializer, or absent (name "").
type opIn struct {
	name  string
	t     *onnx.Tensor
	init  bool // an initializer
	konst bool // a graph input given a value at build time (Options.Values)
}

// opModel returns a model of one node of op at opset.
func opModel(t *testing.T, opset int, op string, attrs map[string]any, ins []opIn, outs ...string) *onnx.Model {
	t.Helper()
	n := &onnx.NodeProto{OpType: op, Name: "n0", Output: outs}
	g := &onnx.GraphProto{Name: "g", Node: []*onnx.NodeProto{n}}
	for _, in := range ins {
		n.Input = append(n.Input, in.name)
		if in.name == "" {
			continue
		}
		tt := in.t.Clone()
		tt.Name = in.name
		if in.init {
			g.Initializer = append(g.Initializer, tt.ToProto())
			continue
		}
		g.Input = append(g.Input, testValueInfo(in.name, tt.DType, tt.Shape))
	}
	for _, o := range outs {
		if o != "" {
			g.Output = append(g.Output, testValueInfo(o, onnx.Float32, nil))
		}
	}
	n.Attribute = testAttrs(t, attrs)
	mp := &onnx.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: int64(opset)}}}
	data, err := onnx.Encode(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data, fmt.Sprintf("%s-opset%d.onnx", op, opset), "", onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// opRunGraft builds m (constant and integer inputs as build-time values)
// and runs it on the other inputs.
func opRunGraft(m *onnx.Model, ins []opIn) (map[string]*onnx.Tensor, error) {
	opt := Options{Shapes: map[string][]int{}, Values: map[string]*onnx.Tensor{}}
	feed := map[string]*onnx.Tensor{}
	for _, in := range ins {
		if in.name == "" || in.init {
			continue
		}
		if in.konst || in.t.DType == onnx.Int64 {
			opt.Values[in.name] = in.t
		} else {
			opt.Shapes[in.name] = in.t.Shape
			feed[in.name] = in.t
		}
	}
	gm, err := Build(m, opt)
	if err != nil {
		return nil, err
	}
	return gm.Run(feed)
}

// opCheck runs a single-node model with graft and compares output 0 with
// want (a float64 reference) and, when ONNX Runtime is installed, every
// output with ONNX Runtime's.
func opCheck(t *testing.T, name string, m *onnx.Model, ins []opIn, want *onnx.Tensor) {
	t.Helper()
	got, err := opRunGraft(m, ins)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	out0 := m.Proto.Graph.Output[0].Name
	if want != nil {
		if err := allClose(got[out0], want, 1e-5, 1e-6); err != nil {
			t.Errorf("%s: vs float64 reference: %v", name, err)
		}
	}
	t.Run(name+"/ORT", func(t *testing.T) {
		ort := onnxtest.ORT(t)
		path := filepath.Join(t.TempDir(), "model.onnx")
		if err := onnx.WriteFile(path, m.Proto, true); err != nil {
			t.Fatal(err)
		}
		feed := map[string]*onnx.Tensor{}
		for _, in := range ins {
			if in.name != "" && !in.init {
				feed[in.name] = in.t
			}
		}
		ref, err := ort.Run(path, feed)
		if err != nil {
			t.Fatalf("ONNX Runtime: %v", err)
		}
		for _, o := range m.Proto.Graph.Output {
			if err := allClose(got[o.Name], ref[o.Name], 1e-4, 1e-5); err != nil {
				t.Errorf("output %q vs ONNX Runtime: %v", o.Name, err)
			}
		}
	})
}

// opMapF returns f applied to every element of x, computed in float64.
func opMapF(x *onnx.Tensor, f func(float64) float64) *onnx.Tensor {
	out := onnx.NewFloat(x.Shape, nil)
	for i, v := range x.F {
		out.F[i] = float32(f(float64(v)))
	}
	return out
}

// opAwayFrom returns a tensor uniform in [lo, hi) with no value within gap
// of a kink, so that finite differences do not straddle one.
func opAwayFrom(r *rand.Rand, shape []int, lo, hi float32, gap float32, kinks ...float32) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	for i := range t.F {
	again:
		v := lo + (hi-lo)*r.Float32()
		for _, k := range kinks {
			if v > k-gap && v < k+gap {
				goto again
			}
		}
		t.F[i] = v
	}
	return t
}

// ---- gradients

func TestActivationGradients(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	shape := []int{3, 4, 5}
	cases := []struct {
		name   string
		k      *unaryKernel
		lo, hi float32
		kinks  []float32
	}{
		{"Relu", reluKernel(), -2, 2, []float32{0}},
		{"LeakyRelu", leakyReluKernel(0.1), -2, 2, []float32{0}},
		{"LeakyRelu/alpha=1.5", leakyReluKernel(1.5), -2, 2, []float32{0}},
		{"Elu", eluKernel(1), -3, 3, []float32{0}},
		{"Elu/alpha=2", eluKernel(2), -3, 3, []float32{0}},
		{"Sigmoid", sigmoidKernel(), -5, 5, nil},
		{"Tanh", tanhKernel(), -3, 3, nil},
		{"HardSigmoid", hardSigmoidKernel(0.2, 0.5), -4, 4, []float32{-2.5, 2.5}},
		{"HardSigmoid/0.5,0.6", hardSigmoidKernel(0.5, 0.6), -3, 3, []float32{-1.2, 0.8}},
		{"HardSwish", hardSwishKernel(), -5, 5, []float32{-3, 3}},
		{"Clip/-0.5,0.7", clipKernel(-0.5, 0.7, 0, 0), -2, 2, []float32{-0.5, 0.7}},
		{"Clip/unbounded", clipKernel(float32(math.Inf(-1)), float32(math.Inf(1)), 0, 0), -2, 2, nil},
	}
	for _, c := range cases {
		x := opAwayFrom(r, shape, c.lo, c.hi, 0.03, c.kinks...)
		checkGrad(t, c.name, c.k, []*onnx.Tensor{x}, []int{0}, 2e-3)
	}
}

func TestActivationKinks(t *testing.T) {
	// PyTorch's conventions at the kinks
	x := onnx.NewFloat([]int{5}, []float32{-1, 0, 1, 2, 3})
	dy := onnx.NewFloat([]int{5}, []float32{1, 1, 1, 1, 1})
	for _, c := range []struct {
		name string
		k    *unaryKernel
		want []float32
	}{
		{"Relu", reluKernel(), []float32{0, 0, 1, 1, 1}},
		{"LeakyRelu", leakyReluKernel(0.1), []float32{0.1, 0.1, 1, 1, 1}},
		{"Clip[0,2]", clipKernel(0, 2, 0, 2), []float32{0, 1, 1, 1, 0}},
		{"HardSwish", hardSwishKernel(), []float32{1.0 / 6, 0.5, 1.0/3 + 0.5, 2.0/3 + 0.5, 1.5}},
		{"Elu", eluKernel(2), []float32{float32(2 * math.Exp(-1)), 2, 1, 1, 1}},
	} {
		y, _ := c.k.forward([]*onnx.Tensor{x})
		g, _ := c.k.backward(0, []*onnx.Tensor{x}, y, dy)
		for i, w := range c.want {
			if math.Abs(float64(g.F[i]-w)) > 1e-6 {
				t.Errorf("%s: gradient at x=%g is %g, want %g", c.name, x.F[i], g.F[i], w)
			}
		}
	}
}

func TestPReluGradients(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, s := range [][]int{{5}, {4, 1}, {3, 1, 1}, {1}, {3, 4, 5}, {}} {
		x := opAwayFrom(r, []int{3, 4, 5}, -2, 2, 0.03, 0)
		slope := randTensor(r, s...)
		checkGrad(t, fmt.Sprintf("PRelu/slope%v", s), newPRelu(x.Shape, slope.Shape), []*onnx.Tensor{x, slope}, []int{0, 1}, 2e-3)
	}
}

func TestSoftmaxGradients(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	shape := []int{2, 3, 4}
	for _, log := range []bool{false, true} {
		for axis := 0; axis < 3; axis++ {
			for _, flat := range []bool{false, true} {
				x := randTensor(r, shape...)
				for i := range x.F {
					x.F[i] *= 3
				}
				name := fmt.Sprintf("Softmax/log=%v/axis=%d/flat=%v", log, axis, flat)
				checkGrad(t, name, newSoftmax(log, shape, axis, flat), []*onnx.Tensor{x}, []int{0}, 2e-3)
			}
		}
	}
}

// opSoftmaxRef is softmax (or log-softmax) in float64 over the elements of
// each [outer, n, inner] block.
func opSoftmaxRef(x *onnx.Tensor, outer, n, inner int, log bool) *onnx.Tensor {
	out := onnx.NewFloat(x.Shape, nil)
	for o := 0; o < outer; o++ {
		for j := 0; j < inner; j++ {
			s := 0.0
			for e := 0; e < n; e++ {
				s += math.Exp(float64(x.F[(o*n+e)*inner+j]))
			}
			for e := 0; e < n; e++ {
				p := (o*n+e)*inner + j
				if log {
					out.F[p] = float32(float64(x.F[p]) - math.Log(s))
				} else {
					out.F[p] = float32(math.Exp(float64(x.F[p])) / s)
				}
			}
		}
	}
	return out
}

// TestSoftmaxOpsets checks the axis semantics: before opset 13 the input
// is coerced to 2-D at axis (default 1), from 13 one axis (default -1).
func TestSoftmaxOpsets(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	x := randTensor(r, 2, 3, 4)
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		log := op == "LogSoftmax"
		for _, c := range []struct {
			opset           int
			axis            any // nil: default
			outer, n, inner int
		}{
			{7, nil, 2, 12, 1},
			{11, nil, 2, 12, 1},
			{11, 0, 1, 24, 1},
			{11, 2, 6, 4, 1},
			{11, -2, 2, 12, 1},
			{12, 2, 6, 4, 1},
			{13, nil, 6, 4, 1},
			{13, 1, 2, 3, 4},
			{13, 0, 1, 2, 12},
			{17, -3, 1, 2, 12},
		} {
			attrs := map[string]any{}
			if c.axis != nil {
				attrs["axis"] = c.axis
			}
			ins := []opIn{{name: "x", t: x}}
			m := opModel(t, c.opset, op, attrs, ins, "y")
			opCheck(t, fmt.Sprintf("%s/opset%d/axis=%v", op, c.opset, c.axis), m, ins, opSoftmaxRef(x, c.outer, c.n, c.inner, log))
		}
	}
	// numerically stable with large inputs
	big := onnx.NewFloat([]int{1, 3}, []float32{1000, 1001, 1002})
	y, _ := newSoftmax(false, big.Shape, 1, false).forward([]*onnx.Tensor{big})
	if math.Abs(float64(y.F[2])-0.66524096) > 1e-6 {
		t.Errorf("softmax of large numbers: %v", y.F)
	}
}

func TestActivationModels(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	x := randTensor(r, 2, 3, 4)
	for i := range x.F {
		x.F[i] *= 4
	}
	scalar := func(v float32) *onnx.Tensor { return onnx.NewFloat(nil, []float32{v}) }
	clip := func(lo, hi float64) func(float64) float64 {
		return func(v float64) float64 { return math.Min(math.Max(v, lo), hi) }
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	in := []opIn{{name: "x", t: x}}
	for _, c := range []struct {
		name  string
		opset int
		op    string
		attrs map[string]any
		ins   []opIn
		f     func(float64) float64
	}{
		{"Relu", 7, "Relu", nil, in, func(v float64) float64 { return math.Max(v, 0) }},
		{"LeakyRelu default", 7, "LeakyRelu", nil, in, func(v float64) float64 { return math.Max(v, 0.01*v) }},
		{"Elu alpha", 7, "Elu", map[string]any{"alpha": 0.5}, in, func(v float64) float64 {
			if v > 0 {
				return v
			}
			return 0.5 * (math.Exp(v) - 1)
		}},
		{"Sigmoid", 7, "Sigmoid", nil, in, sig},
		{"Tanh", 7, "Tanh", nil, in, math.Tanh},
		{"HardSigmoid", 7, "HardSigmoid", nil, in, func(v float64) float64 { return math.Max(0, math.Min(1, 0.2*v+0.5)) }},
		{"HardSwish", 14, "HardSwish", nil, in, func(v float64) float64 { return v * math.Max(0, math.Min(1, v/6+0.5)) }},
		{"Clip attrs opset 7", 7, "Clip", map[string]any{"min": -1.5, "max": 2.0}, in, clip(-1.5, 2)},
		{"Clip default opset 7", 7, "Clip", nil, in, clip(-math.MaxFloat32, math.MaxFloat32)},
		{"Clip min input opset 11", 11, "Clip", nil, append(in[:1:1], opIn{name: "lo", t: scalar(-1), init: true}), clip(-1, math.Inf(1))},
		{"Clip max input opset 12", 12, "Clip", nil, append(in[:1:1], opIn{}, opIn{name: "hi", t: scalar(0.5), init: true}), clip(math.Inf(-1), 0.5)},
		{"Clip both opset 13", 13, "Clip", nil, append(in[:1:1], opIn{name: "lo", t: scalar(-2), init: true}, opIn{name: "hi", t: scalar(1), init: true}), clip(-2, 1)},
		{"Clip min>max opset 13", 13, "Clip", nil, append(in[:1:1], opIn{name: "lo", t: scalar(1), init: true}, opIn{name: "hi", t: scalar(-1), init: true}), clip(1, -1)},
	} {
		m := opModel(t, c.opset, c.op, c.attrs, c.ins, "y")
		opCheck(t, c.name, m, c.ins, opMapF(x, c.f))
	}
	// PRelu with a broadcast slope
	slope := randTensor(r, 3, 1)
	ins := []opIn{{name: "x", t: x}, {name: "slope", t: slope, init: true}}
	want := onnx.NewFloat(x.Shape, nil)
	for i, v := range x.F {
		want.F[i] = v
		if v < 0 {
			want.F[i] = v * slope.F[(i/4)%3]
		}
	}
	opCheck(t, "PRelu", opModel(t, 9, "PRelu", nil, ins, "y"), ins, want)

	// Clip bounds that come from the model's inputs are refused clearly.
	m := opModel(t, 13, "Clip", nil, []opIn{{name: "x", t: x}, {name: "lo", t: scalar(0)}}, "y")
	if _, err := opRunGraft(m, []opIn{{name: "x", t: x}, {name: "lo", t: scalar(0)}}); err == nil || !strings.Contains(err.Error(), "constant") {
		t.Errorf("Clip with a graph-input bound: got error %v", err)
	}
	// Integer Clip and Relu fold.
	xi := onnx.NewInt([]int{4}, []int64{-5, -1, 3, 9})
	lo, hi := onnx.NewInt(nil, []int64{-2}), onnx.NewInt(nil, []int64{4})
	ins = []opIn{{name: "x", t: xi}, {name: "lo", t: lo}, {name: "hi", t: hi}}
	gm, err := Build(opModel(t, 13, "Clip", nil, ins, "y"), Options{Values: map[string]*onnx.Tensor{"x": xi, "lo": lo, "hi": hi}})
	if err != nil {
		t.Fatal(err)
	}
	if c := gm.Outputs[0].Const; c == nil || fmt.Sprint(c.I) != "[-2 -1 3 4]" {
		t.Errorf("integer Clip folded to %v", c)
	}
}
