package graph

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// Tests of the frozen-inference rewrites: BatchNormalization folding
// (surgery.FoldBatchNorm, used by Build with Freeze) and the epilogues
// Convs absorb in the executor (fuse.go).

// netSpec is a small model for the fusion tests: nodes over the input
// "x" and initializers.
type netSpec struct {
	opset int
	x     []int // input shape
	nodes []*onnx.NodeProto
	inits []*onnx.Tensor // named
	outs  []string
}

func (s netSpec) model(t *testing.T) *onnx.Model {
	t.Helper()
	g := &onnx.GraphProto{Name: "g", Node: s.nodes, Input: []*onnx.ValueInfoProto{testValueInfo("x", onnx.Float32, s.x)}}
	for _, in := range s.inits {
		g.Initializer = append(g.Initializer, in.ToProto())
	}
	for _, o := range s.outs {
		g.Output = append(g.Output, testValueInfo(o, onnx.Float32, nil))
	}
	mp := &onnx.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: int64(s.opset)}}}
	data, err := onnx.Encode(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data, "fuse.onnx", "", onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func node(op string, ins, outs []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: op, Name: outs[0], Input: ins, Output: outs, Attribute: attrs}
}

func randNamed(r *rand.Rand, name string, shape ...int) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	t.Name = name
	for i := range t.F {
		t.F[i] = float32(r.NormFloat64())
	}
	return t
}

// fusedSteps runs m and returns the op types of the executor's fused
// steps ("Conv+Relu", ...).
func fusedSteps(m *Model) []string {
	var out []string
	if m.exec == nil {
		return nil
	}
	for _, st := range m.exec.steps {
		if _, ok := st.op.k.(*fusedConv); ok {
			out = append(out, st.op.opType)
		}
	}
	return out
}

// runBoth builds m with and without Freeze (fused and not), runs both on
// the same input, compares every output and returns the fused steps.
func runBoth(t *testing.T, src *onnx.Model, x *onnx.Tensor, outputs []string, tol float64) []string {
	t.Helper()
	feeds := map[string]*onnx.Tensor{src.Inputs()[0].Name: x}
	var res [2]map[string]*onnx.Tensor
	var fused []string
	for i, freeze := range []bool{false, true} {
		m, err := Build(src, Options{Shapes: map[string][]int{src.Inputs()[0].Name: x.Shape}, Freeze: freeze, Outputs: outputs})
		if err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 2; run++ { // a second run reuses the recycled buffers
			if res[i], err = m.Run(feeds); err != nil {
				t.Fatal(err)
			}
		}
		if freeze {
			fused = fusedSteps(m)
		}
	}
	for name, want := range res[0] {
		onnxtest.AssertClose(t, "fused output "+name, res[1][name], want, tol)
	}
	return fused
}

func TestFusedEpilogues(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	const c, m = 8, 8
	convs := []struct {
		name  string
		w     []int
		attrs []*onnx.AttributeProto
		bias  bool
	}{
		{"3x3", []int{m, c, 3, 3}, []*onnx.AttributeProto{onnx.IntsAttr("pads", 1, 1, 1, 1)}, true},
		{"1x1", []int{m, c, 1, 1}, nil, false},
		{"depthwise", []int{m, 1, 3, 3}, []*onnx.AttributeProto{onnx.IntAttr("group", c), onnx.IntsAttr("pads", 1, 1, 1, 1)}, true},
		{"grouped", []int{m, c / 2, 3, 3}, []*onnx.AttributeProto{onnx.IntAttr("group", 2), onnx.IntsAttr("pads", 1, 1, 1, 1)}, false},
	}
	clipMin, clipMax := onnx.NewFloat(nil, []float32{0}), onnx.NewFloat(nil, []float32{6})
	clipMin.Name, clipMax.Name = "lo", "hi"
	// each pattern reads the Conv output "y" and writes "out"; the Conv
	// output of the same shape "y2" (another Conv) is there to be a
	// residual computed after "y"
	patterns := []struct {
		name  string
		opset int
		nodes []*onnx.NodeProto
		outs  []string // extra requested outputs
		want  string   // the fused step, "" for none
	}{
		{"Relu", 13, []*onnx.NodeProto{node("Relu", []string{"y"}, []string{"out"})}, nil, "Conv+Relu"},
		{"Clip", 13, []*onnx.NodeProto{node("Clip", []string{"y", "lo", "hi"}, []string{"out"})}, nil, "Conv+Clip"},
		{"Clip_op11_attrs", 10, []*onnx.NodeProto{node("Clip", []string{"y"}, []string{"out"},
			&onnx.AttributeProto{Name: "min", Type: onnx.AttrFloat, F: 0}, &onnx.AttributeProto{Name: "max", Type: onnx.AttrFloat, F: 6})}, nil, "Conv+Clip"},
		{"LeakyRelu", 13, []*onnx.NodeProto{node("LeakyRelu", []string{"y"}, []string{"out"}, &onnx.AttributeProto{Name: "alpha", Type: onnx.AttrFloat, F: 0.1})}, nil, "Conv+LeakyRelu"},
		{"HardSigmoid", 13, []*onnx.NodeProto{node("HardSigmoid", []string{"y"}, []string{"out"})}, nil, "Conv+HardSigmoid"},
		{"HardSwish", 14, []*onnx.NodeProto{node("HardSwish", []string{"y"}, []string{"out"})}, nil, "Conv+HardSwish"},
		{"SiLU", 13, []*onnx.NodeProto{node("Sigmoid", []string{"y"}, []string{"s"}), node("Mul", []string{"y", "s"}, []string{"out"})}, nil, "Conv+Sigmoid+Mul"},
		{"SiLU_swapped", 13, []*onnx.NodeProto{node("Sigmoid", []string{"y"}, []string{"s"}), node("Mul", []string{"s", "y"}, []string{"out"})}, nil, "Conv+Sigmoid+Mul"},
		{"HardSigmoid_Mul", 13, []*onnx.NodeProto{node("HardSigmoid", []string{"y"}, []string{"s"}, &onnx.AttributeProto{Name: "alpha", Type: onnx.AttrFloat, F: 1.0 / 6}), node("Mul", []string{"y", "s"}, []string{"out"})}, nil, "Conv+HardSigmoid+Mul"},
		{"Add_Relu", 13, []*onnx.NodeProto{node("Add", []string{"y", "y2"}, []string{"a"}), node("Relu", []string{"a"}, []string{"out"})}, nil, "Conv+Add+Relu"},
		{"Add_swapped", 13, []*onnx.NodeProto{node("Add", []string{"y2", "y"}, []string{"out"})}, nil, "Conv+Add"},
		// must not fuse: the intermediate has a second reader, or is asked for
		{"Relu_second_reader", 13, []*onnx.NodeProto{node("Relu", []string{"y"}, []string{"r"}), node("Add", []string{"r", "y"}, []string{"out"})}, nil, ""},
		{"Relu_output", 13, []*onnx.NodeProto{node("Relu", []string{"y"}, []string{"out"})}, []string{"y"}, ""},
		{"SiLU_sigmoid_read", 13, []*onnx.NodeProto{node("Sigmoid", []string{"y"}, []string{"s"}), node("Mul", []string{"y", "s"}, []string{"p"}), node("Add", []string{"p", "s"}, []string{"out"})}, nil, ""},
		{"Add_Relu_sum_read", 13, []*onnx.NodeProto{node("Add", []string{"y", "y2"}, []string{"a"}), node("Relu", []string{"a"}, []string{"r"}), node("Add", []string{"r", "a"}, []string{"out"})}, nil, "Conv+Add"},
		{"Add_ReluMul", 13, []*onnx.NodeProto{node("Add", []string{"y", "y2"}, []string{"a"}), node("Relu", []string{"a"}, []string{"r"}), node("Mul", []string{"r", "a"}, []string{"out"})}, nil, "Conv+Add+Relu+Mul"},
		{"Add_self", 13, []*onnx.NodeProto{node("Add", []string{"y", "y"}, []string{"out"})}, nil, ""},
	}
	for _, cv := range convs {
		for _, p := range patterns {
			for _, batch := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%s/batch%d", cv.name, p.name, batch), func(t *testing.T) {
					w := randNamed(r, "w", cv.w...)
					w2 := randNamed(r, "w2", m, c, 1, 1)
					inits := []*onnx.Tensor{w, w2, clipMin, clipMax}
					ins := []string{"x", "w"}
					if cv.bias {
						inits = append(inits, randNamed(r, "b", m))
						ins = append(ins, "b")
					}
					nodes := []*onnx.NodeProto{node("Conv", ins, []string{"y"}, cv.attrs...)}
					if strings.Contains(p.name, "Add") {
						nodes = append(nodes, node("Conv", []string{"x", "w2"}, []string{"y2"}))
					}
					nodes = append(nodes, p.nodes...)
					outs := append([]string{"out"}, p.outs...)
					spec := netSpec{opset: p.opset, x: []int{batch, c, 7, 9}, nodes: nodes, inits: inits, outs: outs}
					x := randNamed(r, "x", batch, c, 7, 9)
					for i := range x.F {
						x.F[i] *= 3 // reach both sides of Clip's and HardSigmoid's bounds
					}
					got := runBoth(t, spec.model(t), x, nil, 1e-6)
					want := []string{}
					if p.want != "" {
						want = append(want, p.want)
					}
					if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
						t.Errorf("fused steps %v, want %v", got, want)
					}
				})
			}
		}
	}
}

// TestTrainingNotFused: a training build keeps every value (backward
// needs them): it never fuses, and Build without Freeze does not either.
func TestTrainingNotFused(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	spec := netSpec{opset: 13, x: []int{1, 4, 5, 5}, outs: []string{"out"},
		inits: []*onnx.Tensor{randNamed(r, "w", 4, 4, 3, 3)},
		nodes: []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}), node("Relu", []string{"y"}, []string{"out"})}}
	src := spec.model(t)
	m, err := Build(src, Options{Freeze: true, training: &trainState{}})
	if err != nil {
		t.Fatal(err)
	}
	if m.fuse {
		t.Error("a training build would fuse")
	}
	m, err = Build(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.fuse {
		t.Error("a build without Freeze would fuse")
	}
}

// TestPoolLimitCountsInPlace: a chain of elementwise steps that write in
// place takes over one buffer, so the pool plans (limit) and allocates
// (made) no more buffers of that size than the chain holds at once: the
// input's copy and the value being rewritten. Counting each in-place
// output as a new buffer would keep one spare per step.
func TestPoolLimitCountsInPlace(t *testing.T) {
	x := []int{1, 4, 8, 8}
	spec := netSpec{opset: 13, x: x, outs: []string{"y"},
		nodes: []*onnx.NodeProto{
			node("Abs", []string{"x"}, []string{"a"}),
			node("Neg", []string{"a"}, []string{"b"}),
			node("Abs", []string{"b"}, []string{"c"}),
			node("Neg", []string{"c"}, []string{"d"}),
			node("Abs", []string{"d"}, []string{"y"}),
		}}
	src := spec.model(t)
	m, err := Build(src, Options{Shapes: map[string][]int{"x": x}, Freeze: true})
	if err != nil {
		t.Fatal(err)
	}
	in := randNamed(rand.New(rand.NewSource(1)), "x", x...)
	for run := 0; run < 3; run++ {
		out, err := m.Run(map[string]*onnx.Tensor{"x": in})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out["y"].F {
			if want := -in.F[i]; v != max(want, -want) {
				t.Fatalf("run %d: y[%d] = %v, want |x| = %v", run, i, v, max(want, -want))
			}
		}
	}
	if m.exec == nil {
		t.Fatal("the frozen model does not run on the executor")
	}
	if got := m.exec.pool.limit; got != 1 {
		t.Errorf("pool limit = %d, want 1 (one buffer rewritten in place by every step)", got)
	}
	if m.exec.pool.made != 1 {
		t.Errorf("pool allocated %d buffers over 3 runs, want 1", m.exec.pool.made)
	}
}

// TestMeansFused: a GlobalAveragePool of a depthwise convolution's output
// (squeeze-excitation) takes the plane means the convolution computed
// while each plane was in cache: the same bits as averaging the output,
// and the block's output as without fusion. Other convolutions keep their
// pool.
func TestMeansFused(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	const c = 8
	for _, cv := range []struct {
		name  string
		w     []int
		attrs []*onnx.AttributeProto
		want  string
	}{
		{"depthwise", []int{c, 1, 3, 3}, []*onnx.AttributeProto{onnx.IntAttr("group", c), onnx.IntsAttr("pads", 1, 1, 1, 1)}, "Conv+Sigmoid+Mul+mean"},
		{"depthwise_5x5_s2", []int{c, 1, 5, 5}, []*onnx.AttributeProto{onnx.IntAttr("group", c), onnx.IntsAttr("pads", 2, 2, 2, 2), onnx.IntsAttr("strides", 2, 2)}, "Conv+Sigmoid+Mul+mean"},
		{"3x3", []int{c, c, 3, 3}, []*onnx.AttributeProto{onnx.IntsAttr("pads", 1, 1, 1, 1)}, "Conv+Sigmoid+Mul"},
	} {
		for _, batch := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/batch%d", cv.name, batch), func(t *testing.T) {
				nodes := []*onnx.NodeProto{
					node("Conv", []string{"x", "w"}, []string{"y"}, cv.attrs...),
					node("Sigmoid", []string{"y"}, []string{"s"}),
					node("Mul", []string{"y", "s"}, []string{"p"}),
					node("GlobalAveragePool", []string{"p"}, []string{"g"}),
					node("Mul", []string{"p", "g"}, []string{"out"}),
				}
				spec := netSpec{opset: 13, x: []int{batch, c, 13, 11}, nodes: nodes, inits: []*onnx.Tensor{randNamed(r, "w", cv.w...)}, outs: []string{"out"}}
				x := randNamed(r, "x", batch, c, 13, 11)
				src := spec.model(t)
				if got := runBoth(t, src, x, nil, 1e-6); fmt.Sprint(got) != fmt.Sprint([]string{cv.want}) {
					t.Errorf("fused steps %v, want [%s]", got, cv.want)
				}
				// the pool's output is the mean of the block's planes, bit for bit
				m, err := Build(src, Options{Shapes: map[string][]int{"x": x.Shape}, Freeze: true, Outputs: []string{"g", "p"}})
				if err != nil {
					t.Fatal(err)
				}
				res, err := m.Run(map[string]*onnx.Tensor{"x": x})
				if err != nil {
					t.Fatal(err)
				}
				p, g := res["p"], res["g"]
				size := p.Len() / g.Len()
				for i := range g.F {
					want := float32(planeSum(p.F[i*size:(i+1)*size]) / float64(size))
					if math.Float32bits(g.F[i]) != math.Float32bits(want) {
						t.Fatalf("plane %d: pool %v, mean of the output %v", i, g.F[i], want)
					}
				}
			})
		}
	}
}

// TestScaleFused: squeeze-excitation's per-channel Mul goes into the
// convolution that alone reads it (its weights scaled per image), with or
// without that convolution's own epilogue, at any batch; a Mul whose
// output is also read elsewhere stays.
func TestScaleFused(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	const c, m = 8, 6
	se := []*onnx.NodeProto{
		node("Conv", []string{"x", "wd"}, []string{"y"}, onnx.IntAttr("group", c), onnx.IntsAttr("pads", 1, 1, 1, 1)),
		node("Sigmoid", []string{"y"}, []string{"ys"}),
		node("Mul", []string{"y", "ys"}, []string{"p"}),
		node("GlobalAveragePool", []string{"p"}, []string{"g"}),
		node("Conv", []string{"g", "wr", "br"}, []string{"q"}),
		node("Sigmoid", []string{"q"}, []string{"s"}),
		node("Mul", []string{"p", "s"}, []string{"e"}),
	}
	inits := func() []*onnx.Tensor {
		return []*onnx.Tensor{randNamed(r, "wd", c, 1, 3, 3), randNamed(r, "wr", c, c, 1, 1), randNamed(r, "br", c),
			randNamed(r, "wp", m, c, 1, 1), randNamed(r, "w3", m, c, 3, 3), randNamed(r, "bp", m)}
	}
	// 24x20 planes of 8 channels are worth scaling weights of up to 960
	// values for (the 3x3 conv's 432); 6x5 planes are not (48 < 4*432)
	for _, tc := range []struct {
		name string
		tail []*onnx.NodeProto
		want []string
	}{
		{"project", []*onnx.NodeProto{node("Conv", []string{"e", "wp"}, []string{"out"})},
			[]string{"Conv+Sigmoid+Mul+mean", "Conv+Sigmoid", "Mul+Conv"}},
		{"project_bias_relu", []*onnx.NodeProto{node("Conv", []string{"e", "wp", "bp"}, []string{"o"}), node("Relu", []string{"o"}, []string{"out"})},
			[]string{"Conv+Sigmoid+Mul+mean", "Conv+Sigmoid", "Mul+Conv+Relu"}},
		{"3x3_padded", []*onnx.NodeProto{node("Conv", []string{"e", "w3"}, []string{"out"}, onnx.IntsAttr("pads", 1, 1, 1, 1))},
			[]string{"Conv+Sigmoid+Mul+mean", "Conv+Sigmoid", "Mul+Conv"}},
		{"3x3_small_planes", []*onnx.NodeProto{node("Conv", []string{"e", "w3"}, []string{"out"}, onnx.IntsAttr("pads", 1, 1, 1, 1))},
			[]string{"Conv+Sigmoid+Mul+mean", "Conv+Sigmoid"}},
		{"mul_read_twice", []*onnx.NodeProto{node("Conv", []string{"e", "wp"}, []string{"o"}), node("GlobalAveragePool", []string{"e"}, []string{"out2"})},
			[]string{"Conv+Sigmoid+Mul+mean", "Conv+Sigmoid"}},
	} {
		for _, batch := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/batch%d", tc.name, batch), func(t *testing.T) {
				outs := []string{"out"}
				if tc.name == "mul_read_twice" {
					outs = []string{"o", "out2"}
				}
				h, w := 24, 20
				if tc.name == "3x3_small_planes" {
					h, w = 6, 5
				}
				spec := netSpec{opset: 13, x: []int{batch, c, h, w}, nodes: append(slices.Clone(se), tc.tail...), inits: inits(), outs: outs}
				got := runBoth(t, spec.model(t), randNamed(r, "x", batch, c, h, w), nil, 1e-5)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("fused steps %v, want %v", got, tc.want)
				}
			})
		}
	}
}

// TestBufPool: a request takes the smallest free buffer that holds it,
// sliced to its length; with more than limit free, the smallest goes.
func TestBufPool(t *testing.T) {
	p := &bufPool{limit: 2}
	a, b, c := p.get(100), p.get(10), p.get(50)
	if p.made != 3 || len(a) != 100 || len(b) != 10 || len(c) != 50 {
		t.Fatalf("made %d buffers of %d, %d, %d", p.made, len(a), len(b), len(c))
	}
	p.put(a)
	p.put(b)
	p.put(c[:20]) // a value's buffer goes back whole
	if len(p.free) != 2 || cap(p.free[0])+cap(p.free[1]) != 150 {
		t.Fatalf("free buffers %d, want the two largest (100 and 50)", len(p.free))
	}
	if d := p.get(40); len(d) != 40 || cap(d) != 50 || p.made != 3 {
		t.Fatalf("get(40) = len %d cap %d (made %d), want the 50 buffer", len(d), cap(d), p.made)
	}
	if e := p.get(60); cap(e) != 100 || p.made != 3 {
		t.Fatalf("get(60) = cap %d (made %d), want the 100 buffer", cap(e), p.made)
	}
	if f := p.get(1); p.made != 4 || cap(f) != 1 {
		t.Fatalf("get(1) with nothing free: cap %d, made %d", cap(f), p.made)
	}
}

// TestOutputsRunNoMore: a model built for an inner tensor (a frozen
// front, features before the classifier) runs only the steps that tensor
// depends on, and its buffers come back to the pool at every run. The
// executor used to run the whole graph and never return the buffer of the
// graph's own output, which nothing read: one allocation per run, the
// size of that output.
func TestOutputsRunNoMore(t *testing.T) {
	x := []int{2, 4, 8, 8}
	spec := netSpec{opset: 13, x: x, outs: []string{"y"},
		nodes: []*onnx.NodeProto{
			node("Abs", []string{"x"}, []string{"a"}),
			node("Relu", []string{"a"}, []string{"b"}),
			node("Neg", []string{"b"}, []string{"c"}),
			node("Sigmoid", []string{"c"}, []string{"d"}),
			node("Mul", []string{"c", "d"}, []string{"y"}),
		}}
	src := spec.model(t)
	m, err := Build(src, Options{Shapes: map[string][]int{"x": x}, Freeze: true, Outputs: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	in := randNamed(rand.New(rand.NewSource(1)), "x", x...)
	for run := 0; run < 4; run++ {
		out, err := m.Run(map[string]*onnx.Tensor{"x": in})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out["b"].F {
			if want := max(in.F[i], -in.F[i]); v != want {
				t.Fatalf("run %d: b[%d] = %v, want %v", run, i, v, want)
			}
		}
	}
	if m.exec == nil {
		t.Fatal("the frozen model does not run on the executor")
	}
	var ops []string
	for _, st := range m.exec.steps {
		ops = append(ops, st.op.opType)
	}
	if len(ops) != 2 {
		t.Errorf("steps %v, want the two that compute b", ops)
	}
	if m.exec.pool.made > 2 {
		t.Errorf("pool allocated %d buffers over 4 runs, want at most 2", m.exec.pool.made)
	}
}
