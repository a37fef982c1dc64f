package graph

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
)

// The graph builder's fuzz targets. Models are untrusted input: whatever
// a well-formed ModelProto holds (unknown ops, attributes of the wrong
// type or size, shapes that do not fit), onnx.Decode, CheckOps, Build and
// Run must return an error, never panic, hang or allocate without bound.
// Crashers found are kept in testdata/fuzz/FuzzBuild and
// testdata/fuzz/FuzzBuildFile.

// fuzzLimits keeps a fuzzed model's declared data small.
var fuzzLimits = onnx.Limits{MaxBytes: 1 << 20}

// checkModel runs a decoded-to-be model through everything graft does to
// a model it is given: decode and validate, check the ops, build (for
// inference and, frozen, for inference with folded weights) and run on
// zeros. Errors are fine; panics are what the fuzzer looks for.
func checkModel(t *testing.T, data []byte) {
	src, err := onnx.Decode(data, "fuzz.onnx", "", fuzzLimits)
	if err != nil {
		return
	}
	if CheckOps(src) != nil {
		return
	}
	for _, freeze := range []bool{false, true} {
		m, err := Build(src, Options{Freeze: freeze})
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.onnx") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		in := map[string]*onnx.Tensor{}
		for _, p := range m.Inputs {
			if onnx.NumElems(p.Shape) > 1<<20 {
				return // a declared input too large to feed here
			}
			in[p.Name] = onnx.NewFloat(p.Shape, nil)
		}
		outs, err := m.Run(in)
		if err != nil {
			continue
		}
		for _, p := range m.Outputs {
			o := outs[p.Name]
			if o == nil || o.Len() != onnx.NumElems(p.Shape) {
				t.Fatalf("output %q: got %v, built for shape %v", p.Name, o, p.Shape)
			}
		}
	}
}

// FuzzBuildFile mutates real models (the committed fixtures).
func FuzzBuildFile(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "fixtures", "*", "model.onnx"))
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(checkModel)
}

// FuzzBuild builds small models generated from the fuzz input: op types
// drawn from the op table and a few unknown ones, attributes of every
// type under the names graft's builders read, random shapes and
// initializers. The generator reads the input as a stream of choices, so
// that a mutation of one byte changes one choice.
func FuzzBuild(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x06\x02\x04\x03\x01\x00\x05\x02\x00\x01\x00"))
	for i := range len(fuzzOps()) {
		f.Add([]byte{byte(i % 11), 1, 2, 2, 3, 3, byte(i), 1, 1, 2, 0, byte(i), 2, 0, 1, byte(i * 7), 3, 1, 2})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mp := genModel(&choices{b: data})
		b, err := onnx.Encode(mp)
		if err != nil {
			return
		}
		checkModel(t, b)
	})
}

// choices reads the fuzz input as a stream of small choices; past its end
// every choice is 0.
type choices struct {
	b []byte
	i int
}

func (c *choices) byte() byte {
	if c.i >= len(c.b) {
		return 0
	}
	c.i++
	return c.b[c.i-1]
}

// n returns a choice in [0, n).
func (c *choices) n(n int) int { return int(c.byte()) % n }

// small returns a small signed integer, mostly in [-2, 6], sometimes big.
func (c *choices) small() int64 {
	v := c.byte()
	switch {
	case v < 200:
		return int64(v%9) - 2
	case v < 250:
		return int64(v)
	}
	return []int64{-1 << 40, 1 << 40, 1<<31 - 1, -1 << 31, 1<<63 - 1, -1 << 63}[v%6]
}

func (c *choices) float() float32 {
	v := c.byte()
	switch v {
	case 255:
		return float32(1e38)
	case 254:
		return -0.0
	}
	return float32(int(v)-128) / 16
}

var fuzzExtraOps = []string{"Loop", "If", "NoSuchOp", "", "Conv "}

var fuzzAttrNames = []string{
	"allowzero", "alpha", "auto_pad", "axes", "axis", "beta", "bias", "ceil_mode",
	"count_include_pad", "dilations", "end", "ends", "epsilon", "group", "keepdims",
	"kernel_shape", "max", "min", "mode", "momentum", "noop_with_empty_axes", "pads",
	"perm", "ratio", "size", "spatial", "split", "start", "starts", "strides", "to",
	"training_mode", "value", "value_float", "value_floats", "value_int", "value_ints",
	"transA", "transB", "lambd", "blocksize", "k", "largest", "sorted", "seed", "shape",
	"output_padding", "output_shape", "exclusive", "reverse", "reduction", "equation",
}

var fuzzStrings = []string{"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "constant", "reflect", "edge", "DCR", "CRD", "", "nearest", "linear",
	"add", "mul", "max", "ij,jk->ik", "...ii->...i", "i,i", "ij", "ab...,b...->a...", "i->ii"}

func fuzzOps() []string {
	var ops []string
	for _, o := range Ops() {
		ops = append(ops, o.Op)
	}
	return ops
}

// genTensor makes a small float or int64 tensor proto.
func genTensor(c *choices, name string) *onnx.TensorProto {
	rank := c.n(5)
	shape := make([]int, rank)
	for i := range shape {
		shape[i] = 1 + c.n(4)
		if c.n(16) == 0 {
			shape[i] = 0
		}
	}
	var t *onnx.Tensor
	if c.n(2) == 0 {
		t = onnx.NewFloat(shape, nil)
		for i := range t.F {
			t.F[i] = c.float()
		}
	} else {
		t = onnx.NewInt(shape, nil)
		for i := range t.I {
			t.I[i] = c.small()
		}
	}
	t.Name = name
	return t.ToProto()
}

func genAttr(c *choices) *onnx.AttributeProto {
	a := &onnx.AttributeProto{Name: fuzzAttrNames[c.n(len(fuzzAttrNames))]}
	switch c.n(8) {
	case 0:
		a.Type, a.F = onnx.AttrFloat, c.float()
	case 1:
		a.Type, a.I = onnx.AttrInt, c.small()
	case 2:
		a.Type, a.S = onnx.AttrString, []byte(fuzzStrings[c.n(len(fuzzStrings))])
	case 3:
		a.Type, a.T = onnx.AttrTensor, genTensor(c, "")
	case 4:
		a.Type = onnx.AttrFloats
		for range c.n(6) {
			a.Floats = append(a.Floats, c.float())
		}
	case 5:
		a.Type = onnx.AttrInts
		for range c.n(9) {
			a.Ints = append(a.Ints, c.small())
		}
	case 6:
		a.Type = onnx.AttrStrings
		for range c.n(3) {
			a.Strings = append(a.Strings, []byte(fuzzStrings[c.n(len(fuzzStrings))]))
		}
	case 7: // no type: older exporters leave it out
		a.I = c.small()
	}
	return a
}

func genModel(c *choices) *onnx.ModelProto {
	ops := fuzzOps()
	opset := 7 + c.n(11)
	vi := func(name string, shape []int) *onnx.ValueInfoProto {
		var dims []*onnx.TensorShapeDimension
		for _, d := range shape {
			dims = append(dims, &onnx.TensorShapeDimension{Value: &onnx.DimValue{DimValue: int64(d)}})
		}
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeTensor{TensorType: &onnx.TypeProtoTensor{
			ElemType: 1, Shape: &onnx.TensorShapeProto{Dim: dims}}}}}
	}
	g := &onnx.GraphProto{Name: "fuzz"}
	var names []string
	for i := range 1 + c.n(2) {
		shape := make([]int, c.n(5))
		for j := range shape {
			shape[j] = 1 + c.n(5)
		}
		name := fmt.Sprintf("x%d", i)
		g.Input = append(g.Input, vi(name, shape))
		names = append(names, name)
	}
	for i := range c.n(4) {
		name := fmt.Sprintf("w%d", i)
		g.Initializer = append(g.Initializer, genTensor(c, name))
		names = append(names, name)
	}
	for i := range 1 + c.n(6) {
		op := ops[c.n(len(ops))]
		if c.n(32) == 0 {
			op = fuzzExtraOps[c.n(len(fuzzExtraOps))]
		}
		n := &onnx.NodeProto{Name: fmt.Sprintf("n%d", i), OpType: op}
		for range 1 + c.n(3) {
			in := names[c.n(len(names))]
			if c.n(16) == 0 {
				in = ""
			}
			n.Input = append(n.Input, in)
		}
		for range c.n(4) {
			n.Attribute = append(n.Attribute, genAttr(c))
		}
		for j := range 1 + c.n(2) {
			out := fmt.Sprintf("y%d_%d", i, j)
			n.Output = append(n.Output, out)
			names = append(names, out)
		}
		g.Node = append(g.Node, n)
	}
	last := g.Node[len(g.Node)-1]
	g.Output = append(g.Output, vi(last.Output[0], nil))
	if c.n(4) == 0 {
		g.Output = append(g.Output, vi(names[c.n(len(names))], nil))
	}
	return &onnx.ModelProto{IrVersion: 8, OpsetImport: []*onnx.OperatorSetIdProto{{Version: int64(opset)}}, Graph: g}
}

// TestErrorsBrief: a node error about a list the model made huge prints
// its first values and its length, not millions of values (formatting
// them was most of a fuzzed Pad's build time).
func TestErrorsBrief(t *testing.T) {
	c := &nodeCtx{b: &builder{file: "m.onnx"}, n: &onnx.NodeProto{Name: "p", OpType: "Pad"}}
	err := c.errorf("pads %v, shape %v, scales %v", make([]int, 1<<20), []int64{1, 2}, make([]float32, 17))
	want := `m.onnx: node "p" (Pad): pads [0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ...] (1048576 values), shape [1 2], scales [0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ...] (17 values)`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}
