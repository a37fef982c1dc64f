package graph

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// directlyTestedOps are ops TestEveryOpTested accepts without a backend
// case TestConformance runs or a golden gradient case, because a test of
// this file checks them against the reference instead: the ONNX backend
// cases of QuantizeLinear and DequantizeLinear have uint8 outputs and
// inputs (which TestConformance leaves out), and PyTorch's fake
// quantization, the only gradient reference gen_grads.py could use, is
// the straight-through rule TestFakeQuantStraightThrough checks exactly.
var directlyTestedOps = map[string]string{
	"QuantizeLinear":   "TestQDQBackendCases (forward), TestFakeQuantStraightThrough (gradient)",
	"DequantizeLinear": "TestQDQBackendCases (forward), TestFakeQuantStraightThrough (gradient)",
}

// TestQDQBackendCases runs the ONNX backend node cases of both ops (per
// tensor, per axis) and compares exactly: quantized integers must match.
func TestQDQBackendCases(t *testing.T) {
	runBackendCases(t, "test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear", "test_dequantizelinear_axis")
}

// runBackendCases runs ONNX backend node cases that TestConformance
// leaves out (for their data types) with its runner.
func runBackendCases(t *testing.T, names ...string) {
	t.Helper()
	root := filepath.Join(onnxtest.BackendTestData(t), "node")
	for _, name := range names {
		dir := filepath.Join(root, name)
		m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"), onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := onnxtest.LoadCase(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := runCase(m, c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// qdqModel is x -> QuantizeLinear -> DequantizeLinear -> y with the given
// scale and zero point initializers (zero point of ONNX type zpType).
func qdqModel(opset int, xShape []int64, scale []float32, scaleDims []int64, zp []int32, zpType int32, attrs []*onnx.AttributeProto) *onnx.Model {
	g := &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{onnx.ValueInfo("x", int64sToInts(xShape), 1, "")},
		Output: []*onnx.ValueInfoProto{onnx.ValueInfo("y", int64sToInts(xShape), 1, "")},
		Initializer: []*onnx.TensorProto{
			{Name: "s", Dims: scaleDims, DataType: 1, FloatData: scale},
			{Name: "z", Dims: scaleDims, DataType: zpType, Int32Data: zp},
		},
		Node: []*onnx.NodeProto{
			{Name: "q", OpType: "QuantizeLinear", Input: []string{"x", "s", "z"}, Output: []string{"xq"}, Attribute: attrs},
			{Name: "dq", OpType: "DequantizeLinear", Input: []string{"xq", "s", "z"}, Output: []string{"y"}, Attribute: attrs},
		},
	}
	return &onnx.Model{Path: "qdq.onnx", Proto: &onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: int64(opset)}}}}
}

// TestFakeQuantForward checks a Q->DQ pair on values at and around the
// rounding ties and the clamp limits, per tensor (uint8) and per channel
// (int8), against the formula computed here in float64.
func TestFakeQuantForward(t *testing.T) {
	x := []float32{-1, -0.25, -0.125, 0, 0.05, 0.125, 0.375, 0.3750001, 0.625, 3, 31.5, 32, 1e9, float32(math.Inf(-1))}
	for _, c := range []struct {
		name   string
		scale  []float32
		zp     []int32
		zpType int32
		lo, hi float64
	}{
		{"uint8 per tensor", []float32{0.25}, []int32{4}, 2, 0, 255},
		{"int8 per channel", []float32{0.25, 0.125}, []int32{0, -3}, 3, -128, 127},
	} {
		dims := []int64{int64(len(c.scale))}
		shape := []int64{int64(len(c.scale)), int64(len(x))}
		m := qdqModel(13, shape, c.scale, dims, c.zp, c.zpType, []*onnx.AttributeProto{onnx.IntAttr("axis", 0)})
		in := onnx.NewFloat(int64sToInts(shape), nil)
		for ch := range c.scale {
			copy(in.F[ch*len(x):], x)
		}
		gm, err := Build(m, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out, err := gm.Run(map[string]*onnx.Tensor{"x": in})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		y := out["y"].F
		for ch, s := range c.scale {
			for i, v := range x {
				q := math.RoundToEven(float64(v/s)) + float64(c.zp[ch])
				q = math.Min(math.Max(q, c.lo), c.hi)
				want := float32(q-float64(c.zp[ch])) * s
				if got := y[ch*len(x)+i]; got != want {
					t.Errorf("%s: channel %d, x=%g: got %g, want %g", c.name, ch, v, got, want)
				}
			}
		}
	}
}

// TestFakeQuantStraightThrough checks the gradient of Q->DQ: exactly the
// upstream gradient where the value was not clamped, zero where it was.
func TestFakeQuantStraightThrough(t *testing.T) {
	q := &quantizeKernel{scale: []float32{0.25, 0.5}, zp: []float32{128, 0}, lo: 0, hi: 255, inner: 3}
	dq := &dequantizeKernel{scale: q.scale, zp: q.zp, inner: 3}
	x := onnx.NewFloat([]int{2, 3}, []float32{-33, 0.3, 31.8, -1, 50, 200})
	// channel 0: -33/0.25+128 = -4 (clamped), 129.2, 255.2 -> 255 (still in
	// range after rounding); channel 1: -2 (clamped), 100, 400 (clamped)
	keep := []bool{false, true, true, false, true, false}
	dy := onnx.NewFloat([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	qx, err := q.forward([]*onnx.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	y, _ := dq.forward([]*onnx.Tensor{qx})
	g1, err := dq.backward(0, []*onnx.Tensor{qx}, y, dy)
	if err != nil {
		t.Fatal(err)
	}
	g, err := q.backward(0, []*onnx.Tensor{x}, qx, g1)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keep {
		want := float32(0)
		if k {
			want = dy.F[i]
		}
		if g.F[i] != want {
			t.Errorf("element %d (x=%g): gradient %g, want %g", i, x.F[i], g.F[i], want)
		}
	}
}

// TestQuantRefusals: unsupported types and attributes are refused by
// name, with the node named.
func TestQuantRefusals(t *testing.T) {
	for _, c := range []struct {
		name   string
		m      *onnx.Model
		expect string
	}{
		{"int4", qdqModel(13, []int64{2}, []float32{1}, nil, []int32{0}, 22, nil), "int4"},
		{"int16", qdqModel(13, []int64{2}, []float32{1}, nil, []int32{0}, 5, nil), "int16"},
		{"float8", qdqModel(13, []int64{2}, []float32{1}, nil, []int32{0}, 17, nil), "float8e4m3fn"},
		{"block", qdqModel(13, []int64{2}, []float32{1}, nil, []int32{0}, 2, []*onnx.AttributeProto{onnx.IntAttr("block_size", 2)}), "block_size"},
		{"per-axis at opset 10", qdqModel(10, []int64{2, 2}, []float32{1, 2}, []int64{2}, []int32{0, 0}, 2, nil), "per tensor"},
		{"zero scale", qdqModel(13, []int64{2}, []float32{0}, nil, []int32{0}, 2, nil), "positive"},
	} {
		_, err := Build(c.m, Options{})
		// types newer than IR 8 are refused when the zero point is read
		where := "QuantizeLinear"
		if c.name == "int4" || c.name == "float8" {
			where = `initializer "z"`
		}
		if err == nil || !strings.Contains(err.Error(), c.expect) || !strings.Contains(err.Error(), where) {
			t.Errorf("%s: error %v, want one naming %s and %q", c.name, err, where, c.expect)
		}
	}
}

// TestCastFloat16Rounds: Cast to float16 and back gives the float16
// rounding (ties to even, overflow to inf, subnormals), and its gradient
// passes straight through; a float16 graph input is rounded when fed and
// a float16 output when returned.
func TestCastFloat16Rounds(t *testing.T) {
	x := []float32{0.1, 1.0009766, 1.0004883, 65519, 65520, -70000, 3e-8, 2e-8, 1e-6, float32(math.NaN())}
	g := &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{onnx.ValueInfo("x", []int{len(x)}, 1, "")},
		Output: []*onnx.ValueInfoProto{onnx.ValueInfo("y", []int{len(x)}, 1, "")},
		Node: []*onnx.NodeProto{
			{Name: "to16", OpType: "Cast", Input: []string{"x"}, Output: []string{"h"}, Attribute: []*onnx.AttributeProto{onnx.IntAttr("to", 10)}},
			{Name: "to32", OpType: "Cast", Input: []string{"h"}, Output: []string{"y"}, Attribute: []*onnx.AttributeProto{onnx.IntAttr("to", 1)}},
		},
	}
	m := &onnx.Model{Path: "cast.onnx", Proto: &onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}}}
	gm, err := Build(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := gm.Run(map[string]*onnx.Tensor{"x": onnx.NewFloat([]int{len(x)}, x)})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x {
		want := onnx.HalfToFloat32(onnx.Float32ToHalf(v))
		got := out["y"].F[i]
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Errorf("Cast(Cast(%g, float16), float): %g, want %g", v, got, want)
		}
	}
	nk := &narrowKernel{round: onnx.RoundHalf}
	dy := onnx.NewFloat([]int{3}, []float32{1, -2, 3})
	if g, _ := nk.backward(0, nil, nil, dy); g.F[0] != 1 || g.F[1] != -2 || g.F[2] != 3 {
		t.Errorf("Cast to float16: gradient %v, want it passed straight through", g.F)
	}

	// float16 graph input and output: Identity in between
	g16 := &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{onnx.ValueInfo("x", []int{2}, 10, "")},
		Output: []*onnx.ValueInfoProto{onnx.ValueInfo("y", []int{2}, 10, "")},
		Node:   []*onnx.NodeProto{{Name: "id", OpType: "Mul", Input: []string{"x", "x"}, Output: []string{"y"}}},
	}
	m16 := &onnx.Model{Path: "f16.onnx", Proto: &onnx.ModelProto{IrVersion: 7, Graph: g16, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}}}
	gm, err = Build(m16, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err = gm.Run(map[string]*onnx.Tensor{"x": onnx.NewFloat([]int{2}, []float32{0.1, 300})})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float32{0.1, 300} {
		r := onnx.RoundHalf(v)
		if want := onnx.RoundHalf(r * r); out["y"].F[i] != want {
			t.Errorf("float16 %g squared: %g, want %g", v, out["y"].F[i], want)
		}
	}
}
