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

// Opsets 18 to 21: a case for every op and opset at which ONNX revised an
// op graft reads (onnxRevisions), run by graft and by ONNX Runtime, which
// reads these opsets (Debian's onnx 1.12 stops at opset 17, so the models
// are built here). Cases with wantErr check that graft refuses, by name,
// what it does not read.

// opsetCase is a small model at one opset.
type opsetCase struct {
	name  string
	op    string // the op whose revision at opset the case covers
	opset int
	nodes []opsetNode
	ins   []opIn     // graph inputs (fed) and initializers (init)
	outs  []opsetOut // graph outputs
	// wantErr, when set, is text graft's error must hold
	wantErr string
	// inTypes overrides the element type of inputs and initializers
	inTypes map[string]int32
}

type opsetNode struct {
	op        string
	ins, outs []string
	attrs     map[string]any
}

type opsetOut struct {
	name string
	elem int32 // ONNX element type: 1 float, 7 int64, 9 bool
}

// irFor is the IR version that goes with an opset (ONNX Versioning.md).
func irFor(opset int) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	}
	return 8
}

func (c opsetCase) model(t *testing.T) *onnx.Model {
	t.Helper()
	g := &onnx.GraphProto{Name: "g"}
	for i, n := range c.nodes {
		g.Node = append(g.Node, &onnx.NodeProto{OpType: n.op, Name: fmt.Sprintf("%s_%d", n.op, i), Input: n.ins, Output: n.outs,
			Attribute: testAttrs(t, n.attrs)})
	}
	for _, in := range c.ins {
		tt := in.t.Clone()
		tt.Name = in.name
		et, retype := c.inTypes[in.name]
		if in.init {
			tp := tt.ToProto()
			if retype {
				tp.DataType = et // raw bytes of another width: refused first
			}
			g.Initializer = append(g.Initializer, tp)
			continue
		}
		vi := testValueInfo(in.name, tt.DType, tt.Shape)
		if retype {
			vi.GetType().GetTensorType().ElemType = et
		}
		g.Input = append(g.Input, vi)
	}
	for _, o := range c.outs {
		g.Output = append(g.Output, &onnx.ValueInfoProto{Name: o.name, Type: &onnx.TypeProto{Value: &onnx.TypeTensor{
			TensorType: &onnx.TypeProtoTensor{ElemType: o.elem}}}})
	}
	mp := &onnx.ModelProto{IrVersion: irFor(c.opset), Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: int64(c.opset)}}}
	data, err := onnx.Encode(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data, c.name+".onnx", "", onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// one-node case helpers
func onode(op string, ins []string, attrs map[string]any, outs ...string) opsetNode {
	if len(outs) == 0 {
		outs = []string{"y"}
	}
	return opsetNode{op: op, ins: ins, outs: outs, attrs: attrs}
}

var fy = []opsetOut{{"y", 1}}

func fin(name string, t *onnx.Tensor) opIn { return opIn{name: name, t: t} }
func ints(name string, v ...int64) opIn {
	return opIn{name: name, t: onnx.NewInt([]int{len(v)}, v), init: true}
}
func initF(name string, t *onnx.Tensor) opIn { return opIn{name: name, t: t, init: true} }

// randT is a float tensor uniform in [-2, 2).
func randT(r *rand.Rand, shape ...int) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	for i := range t.F {
		t.F[i] = 4*r.Float32() - 2
	}
	return t
}

// posT is a float tensor uniform in [0.5, 2.5) (for logarithms).
func posT(r *rand.Rand, shape ...int) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	for i := range t.F {
		t.F[i] = 0.5 + 2*r.Float32()
	}
	return t
}

func opsetCases() []opsetCase {
	r := rand.New(rand.NewSource(18))
	var cs []opsetCase
	add := func(c opsetCase) { cs = append(cs, c) }
	x := randT(r, 2, 3, 4)
	// Reduce* at 18: axes as input 1, noop_with_empty_axes
	for _, op := range []string{"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"} {
		in := x
		if op == "ReduceLogSum" {
			in = posT(r, 2, 3, 4)
		}
		add(opsetCase{name: op + "-18/axes", op: op, opset: 18, nodes: []opsetNode{onode(op, []string{"x", "axes"}, map[string]any{"keepdims": 0})},
			ins: []opIn{fin("x", in), ints("axes", -1, 0)}, outs: fy})
		add(opsetCase{name: op + "-18/all", opset: 18, nodes: []opsetNode{onode(op, []string{"x"}, nil)},
			ins: []opIn{fin("x", in)}, outs: fy})
		add(opsetCase{name: op + "-18/noop", opset: 18, nodes: []opsetNode{onode(op, []string{"x"}, map[string]any{"noop_with_empty_axes": 1})},
			ins: []opIn{fin("x", in)}, outs: fy})
		add(opsetCase{name: op + "-18/axes-attribute", opset: 18, nodes: []opsetNode{onode(op, []string{"x"}, map[string]any{"axes": []int{1}})},
			ins: []opIn{fin("x", in)}, outs: fy, wantErr: "takes axes as input 1"})
	}
	// ReduceMax and ReduceMin at 20 take bool
	for _, op := range []string{"ReduceMax", "ReduceMin"} {
		add(opsetCase{name: op + "-20/bool", op: op, opset: 20, nodes: []opsetNode{
			onode("Greater", []string{"x", "zero"}, nil, "b"),
			onode(op, []string{"b", "axes"}, map[string]any{"keepdims": 0}, "y"),
		}, ins: []opIn{fin("x", x), initF("zero", onnx.NewFloat(nil, []float32{0})), ints("axes", 2)}, outs: []opsetOut{{"y", 9}}})
	}
	// Split-18: num_outputs, even and uneven
	add(opsetCase{name: "Split-18/num_outputs", op: "Split", opset: 18,
		nodes: []opsetNode{onode("Split", []string{"x"}, map[string]any{"axis": 2, "num_outputs": 2}, "a", "b")},
		ins:   []opIn{fin("x", x)}, outs: []opsetOut{{"a", 1}, {"b", 1}}})
	add(opsetCase{name: "Split-18/uneven", opset: 18,
		nodes: []opsetNode{onode("Split", []string{"x"}, map[string]any{"axis": 1, "num_outputs": 2}, "a", "b")},
		ins:   []opIn{fin("x", x)}, outs: []opsetOut{{"a", 1}, {"b", 1}}})
	add(opsetCase{name: "Split-18/split-input", opset: 18,
		nodes: []opsetNode{onode("Split", []string{"x", "split"}, map[string]any{"axis": 2}, "a", "b")},
		ins:   []opIn{fin("x", x), ints("split", 1, 3)}, outs: []opsetOut{{"a", 1}, {"b", 1}}})
	add(opsetCase{name: "Split-18/neither", opset: 18,
		nodes: []opsetNode{onode("Split", []string{"x"}, map[string]any{"axis": 2}, "a", "b")},
		ins:   []opIn{fin("x", x)}, outs: []opsetOut{{"a", 1}, {"b", 1}}, wantErr: "needs the split input or the num_outputs attribute"})
	// Pad-18: axes input; Pad-19: wrap; Pad-21: unchanged for float
	img := randT(r, 1, 2, 3, 4)
	add(opsetCase{name: "Pad-18/axes", op: "Pad", opset: 18,
		nodes: []opsetNode{onode("Pad", []string{"x", "pads", "", "axes"}, map[string]any{"mode": "reflect"})},
		ins:   []opIn{fin("x", img), ints("pads", 1, 2, 2, 1), ints("axes", -1, 2)}, outs: fy})
	add(opsetCase{name: "Pad-18/axes-constant", opset: 18,
		nodes: []opsetNode{onode("Pad", []string{"x", "pads", "cv", "axes"}, nil)},
		ins:   []opIn{fin("x", img), ints("pads", 1, -1), initF("cv", onnx.NewFloat(nil, []float32{0.5})), ints("axes", 1)}, outs: fy})
	add(opsetCase{name: "Pad-19/wrap", op: "Pad", opset: 19,
		nodes: []opsetNode{onode("Pad", []string{"x", "pads"}, map[string]any{"mode": "wrap"})},
		ins:   []opIn{fin("x", img), ints("pads", 0, 0, 2, 3, 0, 0, 1, 2)}, outs: fy})
	add(opsetCase{name: "Pad-18/wrap", opset: 18,
		nodes: []opsetNode{onode("Pad", []string{"x", "pads"}, map[string]any{"mode": "wrap"})},
		ins:   []opIn{fin("x", img), ints("pads", 0, 0, 2, 5, 0, 0, 1, 3)}, outs: fy, wantErr: "part of Pad from opset 19"})
	add(opsetCase{name: "Pad-21/edge-axes", op: "Pad", opset: 21,
		nodes: []opsetNode{onode("Pad", []string{"x", "pads", "", "axes"}, map[string]any{"mode": "edge"})},
		ins:   []opIn{fin("x", img), ints("pads", 2, 0, 1, 3), ints("axes", 2, 3)}, outs: fy})
	// Resize-18: axes, keep_aspect_ratio_policy, antialias; Resize-19:
	// half_pixel_symmetric
	small := randT(r, 1, 2, 4, 6)
	add(opsetCase{name: "Resize-18/axes-scales", op: "Resize", opset: 18,
		nodes: []opsetNode{onode("Resize", []string{"x", "", "scales"}, map[string]any{"mode": "linear", "axes": []int{3, 2}})},
		ins:   []opIn{fin("x", small), initF("scales", onnx.NewFloat([]int{2}, []float32{1.5, 2}))}, outs: fy})
	for _, pol := range []string{"not_larger", "not_smaller", "stretch"} {
		add(opsetCase{name: "Resize-18/" + pol, opset: 18,
			nodes: []opsetNode{onode("Resize", []string{"x", "", "", "sizes"}, map[string]any{"mode": "cubic", "axes": []int{2, 3}, "keep_aspect_ratio_policy": pol})},
			ins:   []opIn{fin("x", small), ints("sizes", 7, 9)}, outs: fy})
	}
	add(opsetCase{name: "Resize-18/antialias-upscale", opset: 18,
		nodes: []opsetNode{onode("Resize", []string{"x", "", "scales"}, map[string]any{"mode": "linear", "antialias": 1})},
		ins:   []opIn{fin("x", small), initF("scales", onnx.NewFloat([]int{4}, []float32{1, 1, 2, 1.5}))}, outs: fy})
	add(opsetCase{name: "Resize-18/antialias-downscale", opset: 18,
		nodes: []opsetNode{onode("Resize", []string{"x", "", "scales"}, map[string]any{"mode": "linear", "antialias": 1})},
		ins:   []opIn{fin("x", small), initF("scales", onnx.NewFloat([]int{4}, []float32{1, 1, 0.5, 1}))}, outs: fy,
		wantErr: "antialias=1 when downscaling"})
	add(opsetCase{name: "Resize-19/half_pixel_symmetric", op: "Resize", opset: 19,
		nodes: []opsetNode{onode("Resize", []string{"x", "", "scales"}, map[string]any{"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"})},
		ins:   []opIn{fin("x", small), initF("scales", onnx.NewFloat([]int{4}, []float32{1, 1, 1.7, 0.6}))}, outs: fy})
	add(opsetCase{name: "Resize-19/half_pixel_symmetric-nearest", opset: 19,
		nodes: []opsetNode{onode("Resize", []string{"x", "", "", "sizes"}, map[string]any{"coordinate_transformation_mode": "half_pixel_symmetric"})},
		ins:   []opIn{fin("x", small), ints("sizes", 1, 2, 9, 4)}, outs: fy})
	add(opsetCase{name: "Resize-18/half_pixel_symmetric", opset: 18,
		nodes: []opsetNode{onode("Resize", []string{"x", "", "", "sizes"}, map[string]any{"coordinate_transformation_mode": "half_pixel_symmetric"})},
		ins:   []opIn{fin("x", small), ints("sizes", 1, 2, 9, 4)}, outs: fy, wantErr: "part of Resize from opset 19"})
	// AveragePool-19: dilations
	big := randT(r, 1, 2, 7, 8)
	add(opsetCase{name: "AveragePool-19/dilations", op: "AveragePool", opset: 19,
		nodes: []opsetNode{onode("AveragePool", []string{"x"}, map[string]any{"kernel_shape": []int{2, 3}, "dilations": []int{2, 2}, "pads": []int{1, 1, 1, 1}})},
		ins:   []opIn{fin("x", big)}, outs: fy})
	add(opsetCase{name: "AveragePool-19/dilations-include-pad", opset: 19,
		nodes: []opsetNode{onode("AveragePool", []string{"x"}, map[string]any{"kernel_shape": []int{3, 2}, "dilations": []int{2, 3}, "pads": []int{2, 1, 2, 1}, "strides": []int{2, 1}, "count_include_pad": 1})},
		ins:   []opIn{fin("x", big)}, outs: fy})
	add(opsetCase{name: "AveragePool-19/dilations-ceil", opset: 19,
		nodes: []opsetNode{onode("AveragePool", []string{"x"}, map[string]any{"kernel_shape": []int{2, 2}, "dilations": []int{2, 1}, "strides": []int{2, 3}, "ceil_mode": 1})},
		ins:   []opIn{fin("x", big)}, outs: fy})
	add(opsetCase{name: "AveragePool-18/dilations", opset: 18,
		nodes: []opsetNode{onode("AveragePool", []string{"x"}, map[string]any{"kernel_shape": []int{2, 2}, "dilations": []int{2, 2}})},
		ins:   []opIn{fin("x", big)}, outs: fy, wantErr: `"dilations" is not part of AveragePool at opset 18`})
	// type-only revisions: the ops read float and integer tensors as at
	// 17; float8, int4 and string are refused where they enter
	shapeChain := func(op string, opset int) opsetCase {
		return opsetCase{name: fmt.Sprintf("%s-%d", op, opset), op: op, opset: opset, ins: []opIn{fin("x", img)}}
	}
	for _, opset := range []int{19, 21} {
		c := shapeChain("Cast", opset)
		c.nodes = []opsetNode{onode("Cast", []string{"x"}, map[string]any{"to": 7}, "i"), onode("Cast", []string{"i"}, map[string]any{"to": 1}, "y")}
		c.outs = fy
		add(c)
		c = shapeChain("Cast", opset)
		c.name += "/float8"
		c.op = ""
		c.nodes = []opsetNode{onode("Cast", []string{"x"}, map[string]any{"to": 17, "saturate": 1})}
		c.outs = []opsetOut{{"y", 17}}
		c.wantErr = "cast to float8e4m3fn is not supported"
		add(c)
		c = shapeChain("Constant", opset)
		c.nodes = []opsetNode{onode("Constant", nil, map[string]any{"value_floats": []float32{1, -2, 3}}, "k"), onode("Mul", []string{"x", "k"}, nil)}
		c.ins = []opIn{fin("x", randT(r, 2, 3))}
		c.outs = fy
		add(c)
		for _, op := range []string{"Identity", "Shape", "Size", "Reshape"} {
			c = shapeChain(op, opset)
			switch op {
			case "Identity":
				c.nodes = []opsetNode{onode(op, []string{"x"}, nil)}
				c.outs = fy
			case "Shape":
				c.nodes = []opsetNode{onode(op, []string{"x"}, map[string]any{"start": 1, "end": -1}, "s"), onode("Reshape", []string{"x", "s2"}, nil)}
				c.nodes[0].outs = []string{"s"}
				c.nodes = append(c.nodes[:1], onode("Concat", []string{"one", "s"}, map[string]any{"axis": 0}, "s2"), onode("Reshape", []string{"x", "s2"}, nil))
				c.ins = append(c.ins, ints("one", -1))
				c.outs = fy
			case "Size":
				c.nodes = []opsetNode{onode(op, []string{"x"}, nil, "n"), onode("Cast", []string{"n"}, map[string]any{"to": 1}, "nf"), onode("Mul", []string{"x", "nf"}, nil)}
				c.outs = fy
			case "Reshape":
				c.nodes = []opsetNode{onode(op, []string{"x", "s"}, nil)}
				c.ins = append(c.ins, ints("s", 0, -1, 4))
				c.outs = fy
			}
			add(c)
		}
	}
	for _, opset := range []int{20, 21} {
		add(opsetCase{name: fmt.Sprintf("ConstantOfShape-%d", opset), op: "ConstantOfShape", opset: opset, nodes: []opsetNode{
			onode("ConstantOfShape", []string{"s"}, map[string]any{"value": onnx.NewFloat([]int{1}, []float32{0.25})}, "k"),
			onode("Add", []string{"x", "k"}, nil),
		}, ins: []opIn{fin("x", randT(r, 2, 3)), ints("s", 2, 3)}, outs: fy})
	}
	f8 := &onnx.TensorProto{Dims: []int64{1}, DataType: 19, RawData: []byte{0x3c}}
	add(opsetCase{name: "ConstantOfShape-21/float8", opset: 21, nodes: []opsetNode{
		onode("ConstantOfShape", []string{"s"}, map[string]any{"value": f8}, "y"),
	}, ins: []opIn{ints("s", 2, 3)}, outs: []opsetOut{{"y", 19}}, wantErr: "data type float8e5m2 is not supported"})
	for _, op := range []string{"Flatten", "Squeeze", "Unsqueeze", "Transpose"} {
		c := opsetCase{name: op + "-21", op: op, opset: 21, outs: fy}
		switch op {
		case "Flatten":
			c.ins = []opIn{fin("x", img)}
			c.nodes = []opsetNode{onode(op, []string{"x"}, map[string]any{"axis": 2})}
		case "Squeeze":
			c.ins = []opIn{fin("x", img), ints("axes", 0)}
			c.nodes = []opsetNode{onode(op, []string{"x", "axes"}, nil)}
		case "Unsqueeze":
			c.ins = []opIn{fin("x", img), ints("axes", -1, 1)}
			c.nodes = []opsetNode{onode(op, []string{"x", "axes"}, nil)}
		case "Transpose":
			c.ins = []opIn{fin("x", img)}
			c.nodes = []opsetNode{onode(op, []string{"x"}, map[string]any{"perm": []int{0, 3, 1, 2}})}
		}
		add(c)
	}
	add(opsetCase{name: "Equal-19", op: "Equal", opset: 19, nodes: []opsetNode{
		onode("Round", []string{"x"}, nil, "rx"), onode("Equal", []string{"rx", "one"}, nil, "y")},
		ins: []opIn{fin("x", x), initF("one", onnx.NewFloat(nil, []float32{1}))}, outs: []opsetOut{{"y", 9}}})
	inf := onnx.NewFloat([]int{5}, []float32{1, float32(math.Inf(1)), -float32(math.Inf(1)), float32(math.NaN()), 0})
	for _, op := range []string{"IsInf", "IsNaN"} {
		add(opsetCase{name: op + "-20", op: op, opset: 20, nodes: []opsetNode{onode(op, []string{"x"}, nil)},
			ins: []opIn{fin("x", inf)}, outs: []opsetOut{{"y", 9}}})
	}
	add(opsetCase{name: "input-float8", opset: 19, nodes: []opsetNode{onode("Identity", []string{"x"}, nil)},
		ins: []opIn{fin("x", x)}, inTypes: map[string]int32{"x": 17}, outs: []opsetOut{{"y", 17}}, wantErr: "element type float8e4m3fn"})
	add(opsetCase{name: "initializer-int4", opset: 21, nodes: []opsetNode{onode("Identity", []string{"x"}, nil)},
		ins: []opIn{initF("x", x)}, inTypes: map[string]int32{"x": 22}, outs: []opsetOut{{"y", 22}}, wantErr: "data type int4 is not supported"})
	// new ops
	add(opsetCase{name: "Mish-18", op: "Mish", opset: 18, nodes: []opsetNode{onode("Mish", []string{"x"}, nil)},
		ins: []opIn{fin("x", randT(r, 3, 50))}, outs: fy})
	for _, a := range []string{"none", "tanh"} {
		add(opsetCase{name: "Gelu-20/" + a, op: "Gelu", opset: 20, nodes: []opsetNode{onode("Gelu", []string{"x"}, map[string]any{"approximate": a})},
			ins: []opIn{fin("x", randT(r, 3, 50))}, outs: fy})
	}
	gx := randT(r, 2, 6, 3, 4)
	add(opsetCase{name: "GroupNormalization-18", op: "GroupNormalization", opset: 18,
		nodes: []opsetNode{onode("GroupNormalization", []string{"x", "s", "b"}, map[string]any{"num_groups": 3, "epsilon": 1e-3})},
		ins:   []opIn{fin("x", gx), initF("s", randT(r, 3)), initF("b", randT(r, 3))}, outs: fy})
	add(opsetCase{name: "GroupNormalization-21", op: "GroupNormalization", opset: 21,
		nodes: []opsetNode{onode("GroupNormalization", []string{"x", "s", "b"}, map[string]any{"num_groups": 2})},
		ins:   []opIn{fin("x", gx), initF("s", randT(r, 6)), initF("b", randT(r, 6))}, outs: fy})
	add(opsetCase{name: "GroupNormalization-21/per-group-scale", opset: 21,
		nodes: []opsetNode{onode("GroupNormalization", []string{"x", "s", "b"}, map[string]any{"num_groups": 2})},
		ins:   []opIn{fin("x", gx), initF("s", randT(r, 2)), initF("b", randT(r, 2))}, outs: fy, wantErr: "one value per channel at opset 21"})
	// QuantizeLinear and DequantizeLinear at 19 (float8, saturate) and 21
	// (int4, int16, block_size): the uint8 pair reads as before
	for _, op := range []string{"QuantizeLinear", "DequantizeLinear"} {
		for _, opset := range []int{19, 21} {
			add(opsetCase{name: fmt.Sprintf("qdq_%s_%d", op, opset), op: op, opset: opset,
				nodes: []opsetNode{onode("QuantizeLinear", []string{"x", "s"}, nil, "q"), onode("DequantizeLinear", []string{"q", "s"}, nil, "y")},
				ins:   []opIn{fin("x", randT(r, 2, 3, 4)), initF("s", onnx.NewFloat([]int{}, []float32{0.02}))}, outs: fy})
		}
	}
	// ScatterElements and ScatterND at 18: reductions max and min, with
	// several updates to one element
	for _, red := range []string{"max", "min"} {
		add(opsetCase{name: "scatterelements_" + red, op: "ScatterElements", opset: 18,
			nodes: []opsetNode{onode("ScatterElements", []string{"d", "i", "u"}, map[string]any{"axis": 1, "reduction": red})},
			ins: []opIn{fin("d", randT(r, 3, 4)), {name: "i", t: onnx.NewInt([]int{3, 3}, []int64{0, 0, 3, 1, 2, 1, -1, 3, 0}), init: true},
				fin("u", randT(r, 3, 3))}, outs: fy})
		add(opsetCase{name: "scatternd_" + red, op: "ScatterND", opset: 18,
			nodes: []opsetNode{onode("ScatterND", []string{"d", "i", "u"}, map[string]any{"reduction": red})},
			ins: []opIn{fin("d", randT(r, 4, 3)), {name: "i", t: onnx.NewInt([]int{3, 1}, []int64{2, 0, 2}), init: true},
				fin("u", randT(r, 3, 3))}, outs: fy})
	}
	return cs
}

// TestOpset18Cases runs every case with graft and ONNX Runtime.
func TestOpset18Cases(t *testing.T) {
	for _, c := range opsetCases() {
		t.Run(c.name, func(t *testing.T) {
			m := c.model(t)
			got, err := opsetRunGraft(m, c.ins)
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("graft read the model; want an error holding %q", c.wantErr)
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %q does not hold %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ort := onnxtest.ORT(t)
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := onnx.WriteFile(path, m.Proto, true); err != nil {
				t.Fatal(err)
			}
			feed := map[string]*onnx.Tensor{}
			for _, in := range c.ins {
				if !in.init {
					feed[in.name] = in.t
				}
			}
			ref, err := ort.Run(path, feed)
			if err != nil {
				t.Fatalf("ONNX Runtime: %v", err)
			}
			for _, o := range c.outs {
				if err := allClose(got[o.name], ref[o.name], 1e-4, 1e-5); err != nil {
					t.Errorf("output %q vs ONNX Runtime: %v", o.name, err)
				}
			}
		})
	}
}

// opsetRunGraft builds m for the fed inputs' shapes and runs it.
func opsetRunGraft(m *onnx.Model, ins []opIn) (map[string]*onnx.Tensor, error) {
	opt := Options{Shapes: map[string][]int{}}
	feed := map[string]*onnx.Tensor{}
	for _, in := range ins {
		if !in.init {
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

// TestOpRevisionsAudited requires that every op in the op table has been
// checked against ONNX's revisions up to MaxOpset (an onnxRevisions entry).
func TestOpRevisionsAudited(t *testing.T) {
	for op, d := range opTable {
		revs, ok := onnxRevisions[op]
		if !ok {
			t.Errorf("%s: no onnxRevisions entry (graph/revisions.go): list the opsets after 17 at which ONNX revised it", op)
		}
		for _, r := range revs {
			if r < 18 || r > MaxOpset {
				t.Errorf("%s: revision %d is outside 18 to %d", op, r, MaxOpset)
			}
		}
		_ = d
	}
}

// TestOpsetRevisionCases requires a passing case (not only a refusal) in
// opsetCases for every revision at an opset graft reads the op in.
func TestOpsetRevisionCases(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range opsetCases() {
		if c.op != "" && c.wantErr == "" {
			covered[fmt.Sprintf("%s-%d", c.op, c.opset)] = true
		}
	}
	for op, revs := range onnxRevisions {
		d, ok := opTable[op]
		if !ok {
			continue
		}
		for _, r := range revs {
			if r <= d.until && !covered[fmt.Sprintf("%s-%d", op, r)] {
				t.Errorf("%s-%d: graft reads %s at opsets %d to %d but opsetCases has no case for its revision at %d", op, r, op, d.since, d.until, r)
			}
		}
	}
}

// TestPadWrapBeyondAxis: Pad-19 wrap with pads longer than the axis wraps
// again, as ONNX's reference (numpy.pad mode wrap) does; ONNX Runtime 1.30
// gives zeros there, so this case is checked against numpy's values.
func TestPadWrapBeyondAxis(t *testing.T) {
	c := opsetCase{name: "Pad-19/wrap-beyond", opset: 19,
		nodes: []opsetNode{onode("Pad", []string{"x", "pads"}, map[string]any{"mode": "wrap"})},
		ins:   []opIn{fin("x", onnx.NewFloat([]int{3}, []float32{1, 2, 3})), ints("pads", 4, 5)}, outs: fy}
	got, err := opsetRunGraft(c.model(t), c.ins)
	if err != nil {
		t.Fatal(err)
	}
	// numpy.pad([1, 2, 3], (4, 5), "wrap")
	want := onnx.NewFloat([]int{12}, []float32{3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2})
	if err := allClose(got["y"], want, 0, 0); err != nil {
		t.Error(err)
	}
}
