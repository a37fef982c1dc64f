package graph

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/hugemem"
	"github.com/graftml/graft/onnx/surgery"
	G "gorgonia.org/gorgonia"
)

// Options control how a model is built. The zero value builds the graph
// outputs for batch size 1.
type Options struct {
	// Batch is the size given to an input's first dimension when the
	// model leaves it symbolic or unknown. Zero means 1.
	Batch int
	// Shapes overrides the shapes of named inputs.
	Shapes map[string][]int
	// Values gives build-time values for inputs. Integer inputs must have
	// one: graft computes integer tensors only at build time.
	Values map[string]*onnx.Tensor
	// Outputs names the tensors to compute. Empty means the graph outputs.
	Outputs []string
	// Freeze folds computations on weights into constants where possible,
	// and lets Run fuse activations and residual Adds into the Conv
	// before them (see fuse.go); it suits inference only.
	Freeze bool
	// Weights supplies tensors for named initializers, used as they are
	// (not copied): graphs built with the same Weights share their
	// storage, so a weight updated in place is seen by all of them.
	Weights map[string]*onnx.Tensor

	training *trainState // set by BuildTraining
}

// Port is one input or output of a built model.
type Port struct {
	Name  string
	Shape []int
	DType onnx.DType
	Node  *G.Node      // nil for an output known at build time
	Const *onnx.Tensor // the output's value when known at build time
}

// Model is an ONNX model built into a gorgonia expression graph for fixed
// input shapes.
type Model struct {
	Src     *onnx.Model
	G       *G.ExprGraph
	Inputs  []Port
	Outputs []Port
	// Params maps initializer names to the gorgonia nodes that hold them
	// (only the initializers the graph computes with).
	Params map[string]*G.Node

	nodes    map[string]*G.Node
	vals     map[string]*value
	vm       G.VM
	exec     *executor // the run plan of an inference graph (exec.go)
	planned  bool      // exec was planned (it stays nil for graphs it cannot run)
	fuse     bool      // an inference-only build (Freeze): exec fuses epilogues into Convs
	training *trainState
}

// Node returns the gorgonia node computing the named ONNX tensor, if any.
func (m *Model) Node(name string) (*G.Node, bool) {
	n, ok := m.nodes[name]
	return n, ok
}

// Shape returns the shape of the named ONNX tensor in this build.
func (m *Model) Shape(name string) ([]int, bool) {
	v, ok := m.vals[name]
	if !ok {
		return nil, false
	}
	return v.shape, true
}

// UnsupportedOpsError lists every node whose op graft cannot build.
type UnsupportedOpsError struct {
	File  string
	Nodes []string // `Loop (node "loop_1")`
}

func (e *UnsupportedOpsError) Error() string {
	s := fmt.Sprintf("%d nodes use ops graft does not support: %s", len(e.Nodes), strings.Join(e.Nodes, ", "))
	if len(e.Nodes) == 1 {
		s = "1 node uses an op graft does not support: " + e.Nodes[0]
	}
	if e.File != "" {
		s = e.File + ": " + s
	}
	return s + " (run `graft ops` for the list of supported ops)"
}

// CheckOps reports, all at once, the nodes whose op (or op version) graft
// does not support.
func CheckOps(m *onnx.Model) error {
	var bad []string
	opset := m.Opset()
	for i, n := range m.Proto.Graph.Node {
		label := fmt.Sprintf("node %q", n.Name)
		if n.Name == "" {
			label = fmt.Sprintf("node #%d", i)
		}
		if n.Domain != "" && n.Domain != "ai.onnx" {
			bad = append(bad, fmt.Sprintf("%s.%s (%s)", n.Domain, n.OpType, label))
			continue
		}
		def, ok := opTable[n.OpType]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s (%s)", n.OpType, label))
		case !def.reads(opset):
			// the op, but not its definition at this opset
			bad = append(bad, fmt.Sprintf("%s at opset %d (%s; graft reads %s at opsets %d to %d)", n.OpType, opset, label, n.OpType, def.since, def.until))
		}
	}
	if len(bad) > 0 {
		return &UnsupportedOpsError{File: m.Path, Nodes: bad}
	}
	return nil
}

// MinOpset and MaxOpset bound the default-domain opsets graft interprets.
const (
	MinOpset = 7
	MaxOpset = 21
)

// Build interprets the model's nodes by the opset it imports and builds a
// gorgonia graph for the input shapes opt gives.
func Build(src *onnx.Model, opt Options) (*Model, error) {
	file := src.Path
	opset := src.Opset()
	if opset == 0 && src.Proto.IrVersion < 3 {
		opset = 1
	}
	if opset < MinOpset || opset > MaxOpset {
		return nil, &onnx.UnsupportedError{File: file, Msg: fmt.Sprintf("opset %d; graft reads opsets %d to %d (convert the model with onnx.version_converter)", opset, MinOpset, MaxOpset)}
	}
	if err := CheckOps(src); err != nil {
		return nil, err
	}
	if err := CheckShapes(src, opt.Shapes); err != nil {
		return nil, err
	}
	orig := src
	if opt.Freeze && opt.training == nil && len(opt.Weights) == 0 {
		var err error
		if src, err = foldBatchNorm(src, opt.Outputs); err != nil {
			return nil, err
		}
	}
	m := &Model{Src: orig, G: G.NewGraph(), Params: map[string]*G.Node{}, nodes: map[string]*G.Node{}, training: opt.training,
		fuse: opt.Freeze && opt.training == nil}
	b := &builder{m: m, file: file, opset: opset, vals: map[string]*value{}, frozen: map[string]bool{},
		constWeights: opt.Freeze && opt.training == nil && len(opt.Weights) == 0}
	// Symbolic image sizes not given in opt.Shapes come from the
	// preprocessing graft recorded; metadata it cannot read binds nothing.
	b.pre, _ = orig.Preprocessing()
	m.vals = b.vals
	g := src.Proto.Graph

	// The weights' floats share one buffer of 2 MiB pages: page faults
	// of 4 KiB took 25 ms of each build of mobilenet_v2 (3.5 million
	// floats).
	var arena *hugemem.Arena
	if n := initializerFloats(g.Initializer, opt.Weights); n*4 >= hugemem.Min {
		arena = hugemem.NewArena(n)
	}
	for _, tp := range g.Initializer {
		t, ok := opt.Weights[tp.Name]
		if ok {
			if !slices.Equal(t.Shape, int64sToInts(tp.Dims)) {
				return nil, fmt.Errorf("%s: weight %q supplied with shape %v, the model has %v", file, tp.Name, t.Shape, tp.Dims)
			}
		} else {
			var err error
			if t, err = onnx.TensorFromProtoIn(tp, arena); err != nil {
				return nil, &onnx.FormatError{File: file, Elem: fmt.Sprintf("initializer %q", tp.Name), Msg: err.Error()}
			}
		}
		v := &value{name: tp.Name, dtype: t.DType, shape: t.Shape, t: t, param: t.DType == onnx.Float32}
		b.vals[tp.Name] = v
		if opt.Freeze {
			b.frozen[tp.Name] = true
		}
	}
	batch := opt.Batch
	if batch <= 0 {
		batch = 1
	}
	for _, in := range src.Inputs() {
		if err := b.addInput(in, batch, opt); err != nil {
			return nil, err
		}
	}
	constW := surgery.ConstantWeights(src.Proto)
	for name := range surgery.QuantizedWeights(src.Proto) {
		constW[name] = surgery.ConstWeight{} // a folded DequantizeLinear weight
	}
	for i, n := range g.Node {
		c := &nodeCtx{b: b, n: n, index: i, opset: opset}
		for _, name := range n.Input {
			if name == "" {
				c.in = append(c.in, nil)
				continue
			}
			v, ok := b.vals[name]
			if !ok {
				return nil, c.errorf("input %q names no tensor", name)
			}
			c.in = append(c.in, v)
		}
		def := opTable[n.OpType]
		if err := def.builder(m.training != nil)(c); err != nil {
			var ne *NodeError
			if errors.As(err, &ne) {
				return nil, err
			}
			return nil, c.errorf("%v", err)
		}
		for _, out := range n.Output {
			if out != "" && b.vals[out] == nil && !slices.Contains(def.optionalOutputs, slices.Index(n.Output, out)) {
				return nil, c.errorf("graft produced no value for output %q", out)
			}
			if _, ok := constW[out]; ok {
				if err := b.constWeight(out, opt); err != nil {
					return nil, c.errorf("%v", err)
				}
			}
		}
	}
	if src != orig {
		b.aliasFolded(orig)
	}
	outs := opt.Outputs
	if len(outs) == 0 {
		for _, o := range g.Output {
			outs = append(outs, o.Name)
		}
	}
	for _, name := range outs {
		v, ok := b.vals[name]
		if !ok {
			return nil, fmt.Errorf("%s: no tensor named %q", file, name)
		}
		p := Port{Name: name, Shape: v.shape, DType: v.dtype, Node: v.node}
		if v.carried {
			p.DType = onnx.Int64 // Run converts it
		}
		if v.node == nil {
			p.Const = v.t
		}
		if elem := declaredElem(g, name); narrowFloat(elem) != nil && p.DType == onnx.Float32 {
			// a float16 output is written back as float16 values
			if p.Const != nil {
				p.Const = p.Const.Clone()
				roundTensor(p.Const, elem)
			} else {
				r, err := b.narrowNode(name+"#rounded", p.Node, p.Shape, elem)
				if err != nil {
					return nil, err
				}
				p.Node = r
			}
		}
		m.Outputs = append(m.Outputs, p)
	}
	return m, nil
}

// foldBatchNorm returns src with BatchNormalization folded into the Conv
// or Gemm before it (surgery.FoldBatchNorm), on a copy of its graph that
// shares every tensor and node the fold leaves alone: src itself, which
// exports are written from, never changes. keep names tensors the caller
// asks for. It returns src when there is nothing to fold.
func foldBatchNorm(src *onnx.Model, keep []string) (*onnx.Model, error) {
	g := src.Proto.GetGraph()
	if g == nil || !slices.ContainsFunc(g.Node, func(n *onnx.NodeProto) bool { return n.OpType == "BatchNormalization" }) {
		return src, nil
	}
	cg := &onnx.GraphProto{Name: g.Name, Node: slices.Clone(g.Node), Initializer: slices.Clone(g.Initializer),
		Input: g.Input, Output: g.Output, ValueInfo: g.ValueInfo}
	mp := &onnx.ModelProto{IrVersion: src.Proto.IrVersion, OpsetImport: src.Proto.OpsetImport, Graph: cg}
	n, err := surgery.FoldBatchNorm(mp, keep...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	if n == 0 {
		return src, nil
	}
	return &onnx.Model{Proto: mp, Path: src.Path, Raw: src.Raw}, nil
}

// aliasFolded gives the tensors a BatchNormalization fold removed (the
// Conv or Gemm outputs it read) the shape of its output, which is
// theirs, so Model.Shape still answers for every tensor of the model.
func (b *builder) aliasFolded(orig *onnx.Model) {
	for _, n := range orig.Proto.Graph.Node {
		if n.OpType != "BatchNormalization" || len(n.Input) == 0 || len(n.Output) == 0 {
			continue
		}
		x, y := n.Input[0], n.Output[0]
		if _, ok := b.vals[x]; ok {
			continue
		}
		if v, ok := b.vals[y]; ok {
			b.vals[x] = &value{name: x, dtype: v.dtype, shape: v.shape}
		}
	}
}

// constWeight makes the Constant (or Identity of a Constant) output name
// a weight, like a float initializer: a parameter that training updates
// and export writes back into its Constant node.
func (b *builder) constWeight(name string, opt Options) error {
	v := b.vals[name]
	if v == nil || v.t == nil || v.dtype != onnx.Float32 || v.node != nil {
		return nil
	}
	t := v.t.Clone()
	if w, ok := opt.Weights[name]; ok {
		if !slices.Equal(w.Shape, v.shape) {
			return fmt.Errorf("weight %q supplied with shape %v, the model has %v", name, w.Shape, v.shape)
		}
		t = w
	}
	t.Name = name
	b.vals[name] = &value{name: name, dtype: onnx.Float32, shape: v.shape, t: t, param: true}
	if opt.Freeze {
		b.frozen[name] = true
	}
	return nil
}

func (b *builder) addInput(in *onnx.ValueInfoProto, batch int, opt Options) error {
	elem := fmt.Sprintf("input %q", in.Name)
	tt := in.GetType().GetTensorType()
	if tt == nil {
		return &onnx.UnsupportedError{File: b.file, Elem: elem, Msg: "not a tensor"}
	}
	dtype := onnx.Float32
	switch {
	case isFloatElem(tt.ElemType):
	case slices.Contains([]int32{2, 3, 4, 5, 6, 7, 9, 12, 13}, tt.ElemType): // integers and bool
		dtype = onnx.Int64
	default:
		return &onnx.UnsupportedError{File: b.file, Elem: elem, Msg: fmt.Sprintf("element type %s", onnx.ElemTypeName(tt.ElemType))}
	}
	if t, ok := opt.Values[in.Name]; ok {
		t = t.Clone()
		t.Name = in.Name
		b.vals[in.Name] = &value{name: in.Name, dtype: t.DType, shape: t.Shape, t: t}
		return nil
	}
	if dtype != onnx.Float32 {
		return &onnx.UnsupportedError{File: b.file, Elem: elem, Msg: "integer inputs must be given a value when the graph is built"}
	}
	shape, ok := opt.Shapes[in.Name] // checked by CheckShapes
	if !ok {
		var err error
		shape, err = ImageShape(in, batch, b.pre)
		if err != nil {
			return &onnx.UnsupportedError{File: b.file, Elem: elem, Msg: err.Error()}
		}
	}
	gs := gshape(shape)
	n := G.NewTensor(b.m.G, G.Float32, len(gs), G.WithShape(gs...), G.WithName(in.Name))
	// a float16 input holds float16 values whatever float32 it is fed
	r, err := b.narrowNode(in.Name+"#rounded", n, shape, int(tt.ElemType))
	if err != nil {
		return err
	}
	b.vals[in.Name] = &value{name: in.Name, dtype: dtype, shape: shape, node: r}
	b.m.nodes[in.Name] = r
	b.m.Inputs = append(b.m.Inputs, Port{Name: in.Name, Shape: shape, DType: dtype, Node: n})
	return nil
}

func int64sToInts(s []int64) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}

// InputShape reads an input's declared shape, giving batch to a symbolic
// or unknown first dimension. Other symbolic dimensions (an image input
// x: [N, 3, H, W]) are an error naming them: bind them with
// Options.Shapes, or record the image size in the model's preprocessing
// metadata (see ImageShape).
func InputShape(in *onnx.ValueInfoProto, batch int) ([]int, error) {
	return ImageShape(in, batch, nil)
}

// ImageShape is InputShape that also binds the symbolic height, width
// and channel dimensions of a rank-4 input from the preprocessing that
// images go through (Layout, Channels, Height, Width), when pre is not
// nil. Fixed dimensions must agree with it.
func ImageShape(in *onnx.ValueInfoProto, batch int, pre *onnx.Preprocessing) ([]int, error) {
	sp := in.GetType().GetTensorType().GetShape()
	if sp == nil {
		return nil, fmt.Errorf("the model declares no shape for it; give one")
	}
	var known []int // from pre, per dimension; 0 for the batch
	if pre != nil && len(sp.Dim) == 4 && pre.Height > 0 && pre.Width > 0 {
		ch := pre.Channels
		if pre.Layout == "NHWC" {
			known = []int{0, pre.Height, pre.Width, ch}
		} else {
			known = []int{0, ch, pre.Height, pre.Width}
		}
	}
	shape := make([]int, len(sp.Dim))
	for i, d := range sp.Dim {
		v := int(d.GetDimValue())
		switch {
		case v > 0 && known != nil && known[i] > 0 && known[i] != v:
			return nil, fmt.Errorf("dimension %d is %d, but the preprocessing metadata makes it %d", i, v, known[i])
		case v > 0:
		case i == 0:
			v = batch
		case known != nil && known[i] > 0:
			v = known[i]
		default:
			name := d.GetDimParam()
			if name == "" {
				name = "?"
			}
			return nil, fmt.Errorf("dimension %d is symbolic (%q) and nothing binds it: give the input's shape (graph.Options.Shapes; `--input-shape %s=...` on the command line) or record the image size in the model's %q metadata", i, name, in.Name, onnx.KeyPreprocessing)
		}
		shape[i] = v
	}
	return shape, nil
}

// isFloatElem tells whether an ONNX element type is one graft computes in
// float32: float, float16, double, bfloat16.
func isFloatElem(t int32) bool {
	return t == 1 || t == 10 || t == 11 || t == 16
}

// CheckShapes checks shapes given for a model's inputs by name
// (Options.Shapes, --input-shape): each names a graph input and agrees
// with its declaration (see checkGivenShape).
func CheckShapes(src *onnx.Model, shapes map[string][]int) error {
	if len(shapes) == 0 {
		return nil
	}
	ins := map[string]*onnx.ValueInfoProto{}
	var names []string
	for _, in := range src.Inputs() {
		ins[in.Name] = in
		names = append(names, in.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		in, ok := ins[name]
		if !ok {
			return fmt.Errorf("%s: a shape is given for input %q, but the model's inputs are %q", src.Path, name, names)
		}
		if err := checkGivenShape(in, shapes[name]); err != nil {
			return fmt.Errorf("%s: input %q: %w", src.Path, name, err)
		}
	}
	return nil
}

// checkGivenShape checks a shape given for an input (Options.Shapes)
// against its declaration: the same rank (when declared), no negative
// dimension, and the declared fixed dimensions after the first (the
// batch, which graft may rebind).
func checkGivenShape(in *onnx.ValueInfoProto, shape []int) error {
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("the shape given for it, %v, has dimension %d = %d; dimensions cannot be negative", shape, i, d)
		}
	}
	sp := in.GetType().GetTensorType().GetShape()
	if sp == nil {
		return nil
	}
	if len(sp.Dim) != len(shape) {
		return fmt.Errorf("the shape given for it, %v, has %d dimensions; the model declares %d (%s)", shape, len(shape), len(sp.Dim), onnx.ShapeString(sp))
	}
	for i, d := range sp.Dim {
		if v := int(d.GetDimValue()); i > 0 && v > 0 && v != shape[i] {
			return fmt.Errorf("the shape given for it, %v, makes dimension %d %d; the model fixes it at %d (%s)", shape, i, shape[i], v, onnx.ShapeString(sp))
		}
	}
	return nil
}

// Run computes the outputs for the given inputs (by name). Inputs must
// have the shapes the model was built for. Run is not safe for concurrent
// use; build one Model per goroutine.
func (m *Model) Run(inputs map[string]*onnx.Tensor) (map[string]*onnx.Tensor, error) {
	for _, p := range m.Inputs {
		t, ok := inputs[p.Name]
		if !ok {
			return nil, fmt.Errorf("input %q is missing", p.Name)
		}
		if t.DType != onnx.Float32 {
			return nil, fmt.Errorf("input %q: model wants float32, got %s", p.Name, t.DType)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return nil, fmt.Errorf("input %q: model was built for shape %v, got %v", p.Name, p.Shape, t.Shape)
		}
		if err := G.Let(p.Node, wrap(t, false)); err != nil {
			return nil, fmt.Errorf("input %q: %w", p.Name, err)
		}
	}
	for name := range inputs {
		if !slices.ContainsFunc(m.Inputs, func(p Port) bool { return p.Name == name }) {
			return nil, fmt.Errorf("the model has no input %q (inputs: %s)", name, portNames(m.Inputs))
		}
	}
	if !m.planned && m.training == nil && len(m.G.AllNodes()) > 0 {
		e, err := newExecutor(m, m.fuse)
		if err != nil {
			return nil, err
		}
		m.exec, m.planned = e, true
	}
	if m.exec != nil {
		out, err := m.runExec()
		if err != nil {
			return nil, err
		}
		return m.uncarry(out), nil
	}
	if err := m.runGraph(); err != nil {
		return nil, err
	}
	out := make(map[string]*onnx.Tensor, len(m.Outputs))
	for _, p := range m.Outputs {
		if p.Const != nil {
			t := p.Const.Clone()
			t.Name = p.Name
			out[p.Name] = t
			continue
		}
		t, err := valueTensor(p.Node.Value(), p.Shape)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", p.Name, err)
		}
		t.Name = p.Name
		out[p.Name] = t
	}
	return m.uncarry(out), nil
}

// uncarry turns outputs that graft carried as float32 (bool and integer
// results computed at run time, see logic.go) into the int64 tensors their
// ports declare.
func (m *Model) uncarry(out map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	for _, p := range m.Outputs {
		t := out[p.Name]
		if p.DType != onnx.Int64 || t == nil || t.DType != onnx.Float32 {
			continue
		}
		it := onnx.NewInt(t.Shape, nil)
		for i, v := range t.F {
			it.I[i] = int64(v)
		}
		it.Name = t.Name
		out[p.Name] = it
	}
	return out
}

// runExec runs the graph on the executor and names its outputs.
func (m *Model) runExec() (map[string]*onnx.Tensor, error) {
	vals, err := m.exec.run()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*onnx.Tensor, len(m.Outputs))
	for i, p := range m.Outputs {
		t := vals[i]
		if p.Const != nil {
			t = p.Const.Clone()
		}
		t.Name = p.Name
		out[p.Name] = t
	}
	return out, nil
}

// runGraph executes the tape once: Run uses it for graphs the executor
// does not run (a training build's).
func (m *Model) runGraph() error {
	if len(m.G.AllNodes()) == 0 {
		return nil // every output is known at build time
	}
	if m.vm == nil {
		vm, err := newTapeMachine(m.G)
		if err != nil {
			return err
		}
		m.vm = vm
	}
	defer m.vm.Reset()
	// No recover here: the TapeMachine executes its instructions on a
	// goroutine of its own, so a recover in this one never caught a
	// kernel's panic (it crashed the program all the same); kernels
	// report failures as errors, which RunAll returns.
	return m.vm.RunAll()
}

// newTapeMachine compiles g into a TapeMachine. gorgonia's
// NewTapeMachine panics with the error when compiling fails.
func newTapeMachine(g *G.ExprGraph) (vm G.VM, err error) {
	defer recoverGorgonia("compiling the graph", &err)
	return G.NewTapeMachine(g), nil
}

// recoverGorgonia, deferred around a call into gorgonia's graph
// construction (NewTapeMachine, Grad), turns the errors gorgonia reports
// by panicking (its Must idiom: the panic value is an error it made) into
// an error. Anything else (a runtime error such as an index out of range,
// a string) is a bug and panics on, so no bug is hidden.
func recoverGorgonia(what string, errp *error) {
	r := recover()
	if r == nil {
		return
	}
	var re runtime.Error
	if e, ok := r.(error); ok && !errors.As(e, &re) {
		*errp = fmt.Errorf("gorgonia: %s: %w", what, e)
		return
	}
	panic(r)
}

// valueTensor copies a gorgonia value into a tensor of the logical shape.
func valueTensor(v G.Value, shape []int) (*onnx.Tensor, error) {
	ts, err := unwrap([]G.Value{v}, [][]int{shape})
	if err != nil {
		return nil, err
	}
	return ts[0].Clone(), nil
}

func portNames(ps []Port) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Weights returns the current value of every float initializer and
// Constant weight (see surgery.ConstantWeights) the graph computes with,
// by name. Training updates these tensors in place.
func (m *Model) Weights() map[string]*onnx.Tensor {
	out := map[string]*onnx.Tensor{}
	for name, v := range m.vals {
		if v.param && v.t != nil {
			out[name] = v.t
		}
	}
	return out
}

// initializerFloats counts the floats TensorFromProtoIn takes from an
// arena for the initializers not replaced by weights.
func initializerFloats(inits []*onnx.TensorProto, weights map[string]*onnx.Tensor) int {
	n := 0
	for _, tp := range inits {
		if _, ok := weights[tp.Name]; !ok {
			n += onnx.ArenaFloats(tp)
		}
	}
	return n
}
