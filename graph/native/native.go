package native

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// NativeOpset is the default-domain opset of the models ExportGorgonia
// writes.
const NativeOpset = 13

// NativeExport configures ExportGorgonia.
type NativeExport struct {
	// Inputs are the graph inputs, in order: input nodes (gorgonia.NewTensor
	// and friends) whose value a caller feeds at run time. Every other input
	// node the outputs depend on must hold a value: it is written as an
	// initializer (a weight) with that value.
	Inputs []*G.Node
	// Outputs are the graph outputs, in order.
	Outputs []*G.Node
	// Names optionally gives the ONNX tensor name of any node. Without it a
	// node is named by its gorgonia name when one was set (WithName), else
	// by the ONNX op and the node's ID, e.g. "Conv_7".
	Names map[*G.Node]string
	// DynamicBatch makes the first dimension of every input symbolic ("N"),
	// and with it the axis of every tensor computed from it. The inputs must
	// share their first dimension (the traced batch size).
	DynamicBatch bool
	// ProducerName is written as producer_name; "" means "graft".
	ProducerName string
}

// NativeOpError reports a gorgonia node that ExportGorgonia cannot write.
type NativeOpError struct {
	Node string // the node's tensor name
	Op   string // the op's String(), "" for input nodes
	Msg  string
}

func (e *NativeOpError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("gorgonia node %q: %s", e.Node, e.Msg)
	}
	return fmt.Sprintf("gorgonia node %q (op %q): %s", e.Node, e.Op, e.Msg)
}

// ExportGorgonia writes the part of g that computes cfg.Outputs as an ONNX
// model (opset 13, float32). Weights are written with their current
// values; float64 graphs are converted to float32. An op without an ONNX
// counterpart is reported as a *NativeOpError naming the node.
func ExportGorgonia(g *G.ExprGraph, cfg NativeExport) (*onnx.ModelProto, error) {
	if g == nil {
		return nil, fmt.Errorf("export: no graph")
	}
	if len(cfg.Outputs) == 0 {
		return nil, fmt.Errorf("export: no outputs given")
	}
	e := &nexp{
		g:     g,
		cfg:   cfg,
		gp:    &onnx.GraphProto{Name: "gorgonia"},
		used:  map[string]bool{},
		named: map[*G.Node]string{},
		vals:  map[*G.Node]*nval{},
		state: map[*G.Node]int8{},
		input: map[*G.Node]bool{},
	}
	if err := e.prepare(); err != nil {
		return nil, err
	}
	for _, n := range cfg.Inputs {
		if err := e.visit(n); err != nil {
			return nil, err
		}
	}
	for _, n := range cfg.Outputs {
		if err := e.visit(n); err != nil {
			return nil, err
		}
	}
	outNames := map[string]bool{}
	for _, n := range cfg.Outputs {
		v, err := e.get(n)
		if err != nil {
			return nil, err
		}
		name := v.name
		// A graph output must be computed by a node of its own: an input,
		// a weight, a value listed twice or a tensor a no-op aliased gets
		// an Identity.
		if !v.produced || outNames[name] || e.vals[n].name != e.tensorNameFor(n) {
			name = e.nodeName(n, "Identity")
			if outNames[name] || name == v.name {
				name = e.fresh(name + "_out")
			}
			e.add("Identity", []string{v.name}, []string{name})
		}
		outNames[name] = true
		e.gp.Output = append(e.gp.Output, e.valueInfo(name, v.shape, v.batch))
	}
	producer := cfg.ProducerName
	if producer == "" {
		producer = "graft"
	}
	mp := &onnx.ModelProto{
		IrVersion:       7,
		ProducerName:    producer,
		ProducerVersion: onnx.GraftVersion(),
		OpsetImport:     []*onnx.OperatorSetIdProto{{Domain: "", Version: NativeOpset}},
		Graph:           e.gp,
	}
	surgery.Prune(mp)
	return mp, nil
}

// nval is the ONNX tensor holding a gorgonia node's value.
type nval struct {
	name  string
	shape []int
	// batch is the axis that follows the batch size under DynamicBatch
	// (its size is a multiple of the traced batch), -1 for none.
	batch int
	// produced tells that name is the output of an ONNX node, not a graph
	// input or an initializer.
	produced bool
	// A lazily broadcast value (a gorgonia repeat of size-1 axes): the
	// node's value is name broadcast to full. fullBatch is the batch axis
	// of full; dynSize maps axes of full whose size is the run-time batch
	// to the sizeOp node giving it.
	full      []int
	fullBatch int
	dynSize   map[int]*G.Node
	// sizeInt is, for a sizeOp computed at run time, a 0-d int64 tensor
	// holding the size.
	sizeInt string
}

func (v *nval) lazy() bool { return v.full != nil }

type nexp struct {
	g     *G.ExprGraph
	cfg   NativeExport
	gp    *onnx.GraphProto
	batch int // traced batch size under DynamicBatch

	used  map[string]bool
	named map[*G.Node]string
	vals  map[*G.Node]*nval
	state map[*G.Node]int8
	input map[*G.Node]bool
}

func (e *nexp) dynamic() bool { return e.cfg.DynamicBatch }

func (e *nexp) prepare() error {
	seen := map[string]*G.Node{}
	for n, name := range e.cfg.Names {
		if name == "" {
			return fmt.Errorf("export: Names gives node %d an empty name", n.ID())
		}
		if o, ok := seen[name]; ok && o != n {
			return fmt.Errorf("export: Names gives the name %q to two nodes", name)
		}
		seen[name] = n
		e.used[name] = true
	}
	for _, n := range append(slices.Clone(e.cfg.Inputs), e.cfg.Outputs...) {
		if n == nil {
			return fmt.Errorf("export: a nil node among Inputs or Outputs")
		}
		if n.Graph() != e.g {
			return fmt.Errorf("export: node %q belongs to another graph", n.Name())
		}
	}
	for _, n := range e.cfg.Inputs {
		if n.Op() != nil {
			return &NativeOpError{Node: e.tensorNameFor(n), Op: fmt.Sprint(n.Op()), Msg: "listed in Inputs but computed by an op; Inputs must be input nodes"}
		}
		if e.input[n] {
			return fmt.Errorf("export: node %q is listed twice in Inputs", n.Name())
		}
		e.input[n] = true
		if e.dynamic() {
			s := n.Shape()
			if len(s) == 0 {
				return &NativeOpError{Node: e.tensorNameFor(n), Msg: "a scalar input has no batch dimension (DynamicBatch)"}
			}
			if e.batch == 0 {
				e.batch = s[0]
			} else if s[0] != e.batch {
				return &NativeOpError{Node: e.tensorNameFor(n), Msg: fmt.Sprintf("first dimension %d differs from the batch size %d of the other inputs (DynamicBatch)", s[0], e.batch)}
			}
		}
	}
	if e.dynamic() && e.batch == 0 {
		return fmt.Errorf("export: DynamicBatch needs at least one input")
	}
	return nil
}

// visit exports n after everything it depends on (depth-first, so the
// ONNX nodes come out in topological order).
func (e *nexp) visit(n *G.Node) error {
	switch e.state[n] {
	case 2:
		return nil
	case 1:
		return fmt.Errorf("export: the graph has a cycle through node %q", n.Name())
	}
	e.state[n] = 1
	p, err := e.plan(n)
	if err != nil {
		return err
	}
	for _, d := range p.deps {
		if err := e.visit(d); err != nil {
			return err
		}
	}
	v, err := p.emit()
	if err != nil {
		return err
	}
	e.vals[n] = v
	e.state[n] = 2
	return nil
}

type nplan struct {
	deps []*G.Node
	emit func() (*nval, error)
}

// opKind is the name of an op's type without package and pointer, e.g.
// "elemBinOp".
func opKind(op G.Op) string {
	s := fmt.Sprintf("%T", op)
	s = strings.TrimPrefix(s, "*")
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func (e *nexp) children(n *G.Node) []*G.Node {
	var out []*G.Node
	for it := e.g.From(n.ID()); it.Next(); {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

// ---------------------------------------------------------------- naming

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/\-]*$`)

// userName returns the name a user gave n (WithName), or "".
func (e *nexp) userName(n *G.Node) string {
	if s, ok := e.cfg.Names[n]; ok {
		return s
	}
	name := n.Name()
	if n.Op() == nil {
		if strings.HasPrefix(name, "%!") {
			return ""
		}
		return name
	}
	if _, ok := n.Op().(interface{ Value() G.Value }); ok {
		// gorgonia names an unnamed constant by its printed value.
		if identRE.MatchString(name) {
			return name
		}
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s(", n.Op())
	kids := e.children(n)
	for i, c := range kids {
		fmt.Fprintf(&b, "%%%x", c.ID())
		if i < len(kids)-1 {
			b.WriteString(", ")
		}
	}
	b.WriteString(")")
	if name == b.String() {
		return ""
	}
	return name
}

// baseName is n's tensor name once assigned, else the name it would be
// given; kind names unnamed nodes. Helper tensors of n are named after it.
func (e *nexp) baseName(n *G.Node, kind string) string {
	if s, ok := e.named[n]; ok {
		return s
	}
	if s := e.userName(n); s != "" {
		return s
	}
	return fmt.Sprintf("%s_%d", kind, n.ID())
}

// tensorNameFor is n's name for messages.
func (e *nexp) tensorNameFor(n *G.Node) string {
	if n.Op() == nil {
		return e.baseName(n, "input")
	}
	return e.baseName(n, "node")
}

// nodeName assigns n its ONNX tensor name; kind names unnamed nodes.
func (e *nexp) nodeName(n *G.Node, kind string) string {
	if s, ok := e.named[n]; ok {
		return s
	}
	var name string
	if s, ok := e.cfg.Names[n]; ok {
		name = s // reserved in prepare
	} else if s := e.userName(n); s != "" {
		name = s
		if e.used[name] {
			name = e.fresh(fmt.Sprintf("%s_%d", s, n.ID()))
		}
	} else {
		name = e.fresh(fmt.Sprintf("%s_%d", kind, n.ID()))
	}
	e.used[name] = true
	e.named[n] = name
	return name
}

// fresh returns an unused tensor name based on base.
func (e *nexp) fresh(base string) string {
	name := base
	for i := 2; e.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	e.used[name] = true
	return name
}

// ---------------------------------------------------------------- emitting

func (e *nexp) add(op string, in, out []string, attrs ...*onnx.AttributeProto) {
	e.gp.Node = append(e.gp.Node, &onnx.NodeProto{Name: out[0], OpType: op, Input: in, Output: out, Attribute: attrs})
}

// op1 adds a one-output node and returns its output name, fresh from base.
func (e *nexp) op1(op, base string, in []string, attrs ...*onnx.AttributeProto) string {
	out := e.fresh(base)
	e.add(op, in, []string{out}, attrs...)
	return out
}

func (e *nexp) initFloat(base string, shape []int, data []float32) string {
	name := e.fresh(base)
	t := onnx.NewFloat(shape, data)
	t.Name = name
	e.gp.Initializer = append(e.gp.Initializer, t.ToProto())
	return name
}

func (e *nexp) initInts(base string, shape []int, data []int64) string {
	name := e.fresh(base)
	t := onnx.NewInt(shape, data)
	t.Name = name
	e.gp.Initializer = append(e.gp.Initializer, t.ToProto())
	return name
}

func (e *nexp) ints1(base string, vals ...int) string {
	d := make([]int64, len(vals))
	for i, v := range vals {
		d[i] = int64(v)
	}
	return e.initInts(base, []int{len(d)}, d)
}

func (e *nexp) scalar(base string, v float32) string {
	return e.initFloat(base, nil, []float32{v})
}

// valueInfo is a float32 ValueInfoProto; under DynamicBatch the batch axis
// is "N" (or left unnamed where it holds a multiple of the batch).
func (e *nexp) valueInfo(name string, shape []int, batch int) *onnx.ValueInfoProto {
	if !e.dynamic() || batch < 0 {
		return onnx.ValueInfo(name, shape, 1, "")
	}
	if batch == 0 && shape[0] == e.batch {
		return onnx.ValueInfo(name, shape, 1, "N")
	}
	vi := onnx.ValueInfo(name, shape, 1, "")
	dims := vi.Type.Value.(*onnx.TypeTensor).TensorType.Shape.Dim
	if shape[batch] == e.batch {
		dims[batch].Value = &onnx.DimParam{DimParam: "N"}
	} else {
		dims[batch].Value = nil
	}
	return vi
}

// get returns the exported value of n, broadcasting a lazy one.
func (e *nexp) get(n *G.Node) (*nval, error) {
	v, ok := e.vals[n]
	if !ok {
		return nil, fmt.Errorf("export: internal: node %q used before it was exported", n.Name())
	}
	if !v.lazy() {
		return v, nil
	}
	m, err := e.materialize(n, v)
	if err != nil {
		return nil, err
	}
	e.vals[n] = m
	return m, nil
}

// materialize writes the Expand that a lazy value stands for.
func (e *nexp) materialize(n *G.Node, v *nval) (*nval, error) {
	name := e.nodeName(n, "Expand")
	target := slices.Clone(v.full)
	if e.dynamic() && v.batch >= 0 {
		// 1 keeps the input's (run-time) size: Expand broadcasts both ways.
		target[len(v.full)-len(v.shape)+v.batch] = 1
	}
	var shape string
	if len(v.dynSize) == 0 || !e.dynamic() {
		shape = e.ints1(name+"/shape", target...)
	} else {
		var parts []string
		for ax, d := range target {
			if sn, ok := v.dynSize[ax]; ok {
				sv := e.vals[sn]
				parts = append(parts, e.op1("Unsqueeze", name+"/size", []string{sv.sizeInt, e.ints1(name+"/axes", 0)}))
			} else {
				parts = append(parts, e.ints1(name+"/dim", d))
			}
		}
		shape = e.op1("Concat", name+"/shape", parts, onnx.IntAttr("axis", 0))
	}
	e.add("Expand", []string{v.name, shape}, []string{name})
	return &nval{name: name, shape: slices.Clone(v.full), batch: v.fullBatch, produced: true}, nil
}

// reshape returns x reshaped to target, keeping a run-time batch axis.
func (e *nexp) reshape(base string, x *nval, target []int) (*nval, error) {
	if slices.Equal(x.shape, target) {
		return x, nil
	}
	spec := slices.Clone(target)
	batch := -1
	if e.dynamic() && x.batch >= 0 {
		b := x.batch
		switch {
		case len(target) > b && slices.Equal(target[:b+1], x.shape[:b+1]):
			spec[b] = 0 // copied from the input
			batch = b
		case b == 0 && len(target) > 0 && target[0]%e.batch == 0:
			spec[0] = -1 // the batch is folded into the first axis
			batch = 0
		default:
			return nil, fmt.Errorf("reshape %v -> %v moves the batch axis %d (DynamicBatch)", x.shape, target, b)
		}
	}
	out := e.op1("Reshape", base, []string{x.name, e.ints1(base+"/shape", spec...)})
	return &nval{name: out, shape: slices.Clone(target), batch: batch, produced: true}, nil
}

// finish gives the last tensor computed for n the node's own name, by
// renaming the producing node's output, and reshapes it to want when the
// ONNX shape differs from gorgonia's.
func (e *nexp) finish(n *G.Node, kind string, v *nval) (*nval, error) {
	want := []int(n.Shape())
	if !slices.Equal(v.shape, want) {
		r, err := e.reshape(v.name+"/reshape", v, want)
		if err != nil {
			return nil, err
		}
		v = r
	}
	renamable := false
	var last *onnx.NodeProto
	if k := len(e.gp.Node); k > 0 && v.produced {
		last = e.gp.Node[k-1]
		renamable = len(last.Output) == 1 && last.Output[0] == v.name && !e.isReferenced(v.name)
	}
	if _, done := e.named[n]; !done && renamable && v.name == e.baseName(n, kind) {
		e.named[n] = v.name // the last node already carries the node's name
		return v, nil
	}
	name := e.nodeName(n, kind)
	if renamable {
		last.Output[0] = name
		last.Name = name
		delete(e.used, v.name)
		return &nval{name: name, shape: v.shape, batch: v.batch, produced: true}, nil
	}
	e.add("Identity", []string{v.name}, []string{name})
	return &nval{name: name, shape: v.shape, batch: v.batch, produced: true}, nil
}

// isReferenced tells whether a tensor is the value of some node already.
func (e *nexp) isReferenced(name string) bool {
	for _, v := range e.vals {
		if v.name == name {
			return true
		}
	}
	return false
}

func (e *nexp) opErr(n *G.Node, format string, args ...any) error {
	op := ""
	if n.Op() != nil {
		op = fmt.Sprint(n.Op())
	}
	return &NativeOpError{Node: e.tensorNameFor(n), Op: op, Msg: fmt.Sprintf(format, args...)}
}

// noCounterpart is the error for an op graft does not map.
func (e *nexp) noCounterpart(n *G.Node, why string) error {
	msg := fmt.Sprintf("gorgonia op %s has no ONNX counterpart in graft", opKind(n.Op()))
	if why != "" {
		msg += ": " + why
	}
	return e.opErr(n, "%s", msg)
}

// ---------------------------------------------------------------- planning

// nativeOp is how ExportGorgonia writes one gorgonia op type, or why it
// does not.
type nativeOp struct {
	// onnx lists the ONNX ops the op may become (a pattern it heads may
	// become others: an elemBinOp heading Rectify becomes Relu).
	onnx []string
	// plan returns the nodes to export first and how to write the node;
	// nil for ops ExportGorgonia does not write.
	plan planFunc
	// why says why the op is not written, when plan is nil.
	why string
}

type planFunc func(e *nexp, n *G.Node, kids []*G.Node) *nplan

// emitFunc writes a node whose children are exported.
type emitFunc func(e *nexp, n *G.Node, kids []*G.Node) (*nval, error)

// afterKids plans a node written after all its children.
func afterKids(f emitFunc) planFunc {
	return func(e *nexp, n *G.Node, kids []*G.Node) *nplan {
		return &nplan{deps: kids, emit: func() (*nval, error) { return f(e, n, kids) }}
	}
}

// gorgoniaOps is the table of gorgonia op types, by opKind, that
// ExportGorgonia knows: every op it writes, and the ops it refuses with a
// reason. Any other op is reported as having no ONNX counterpart.
var gorgoniaOps = map[string]nativeOp{
	"constantScalar":      {onnx: []string{"(initializer)"}, plan: afterKids((*nexp).emitConstant)},
	"constantTensor":      {onnx: []string{"(initializer)"}, plan: afterKids((*nexp).emitConstant)},
	"elemBinOp":           {onnx: []string{"Add", "Sub", "Mul", "Div", "Pow", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Equal", "Not", "Cast", "Relu"}, plan: (*nexp).planElemBin},
	"elemUnaryOp":         {onnx: []string{"Abs", "Sign", "Ceil", "Floor", "Sin", "Cos", "Exp", "Log", "Neg", "Sqrt", "Reciprocal", "Tanh", "Sigmoid", "Softplus", "Mul", "Div", "Add", "Sub"}, plan: afterKids((*nexp).emitUnaryOp)},
	"linAlgBinOp":         {onnx: []string{"MatMul", "Gemm", "Mul", "Transpose", "Reshape"}, plan: afterKids((*nexp).emitLinAlg)},
	"transposeOp":         {onnx: []string{"Transpose", "Conv"}, plan: (*nexp).planTranspose},
	"reshapeOp":           {onnx: []string{"Reshape"}, plan: afterKids((*nexp).emitReshape)},
	"concatOp":            {onnx: []string{"Concat"}, plan: afterKids((*nexp).emitConcat)},
	"sumOp":               {onnx: []string{"ReduceSum"}, plan: afterKids((*nexp).emitReduce)},
	"maxOp":               {onnx: []string{"ReduceMax"}, plan: afterKids((*nexp).emitReduce)},
	"softmaxOp":           {onnx: []string{"Softmax", "LogSoftmax"}, plan: afterKids((*nexp).emitSoftmax)},
	"maxPoolOp":           {onnx: []string{"MaxPool"}, plan: afterKids((*nexp).emitMaxPool)},
	"im2colOp":            {onnx: []string{"Conv", "Transpose"}, plan: afterKids((*nexp).emitIm2Col)},
	"dropoutOp":           {onnx: []string{"(none: the identity at inference)"}, plan: afterKids((*nexp).emitDropout)},
	"sizeOp":              {onnx: []string{"(initializer)", "Shape", "Gather", "Cast"}, plan: afterKids((*nexp).emitSize)},
	"repeatOp":            {onnx: []string{"Expand", "Unsqueeze", "Concat", "Reshape"}, plan: afterKids((*nexp).emitRepeat)},
	"sliceOp":             {onnx: []string{"Slice"}, plan: afterKids((*nexp).emitSlice)},
	"minBetween":          {onnx: []string{"Min"}, plan: afterKids((*nexp).emitMinMax)},
	"maxBetween":          {onnx: []string{"Max"}, plan: afterKids((*nexp).emitMinMax)},
	"globalAveragePoolOp": {onnx: []string{"GlobalAveragePool"}, plan: afterKids((*nexp).emitGlobalAveragePool)},

	"avgPoolOp":   {why: "gorgonia v0.9.18's AvgPool2D divides each window's sum by the input width, which no ONNX op computes"},
	"BatchNormOp": {why: "write a frozen batch norm as arithmetic ((x-mean)*scale/sqrt(var+eps)+bias), which exports"},
	"kop":         {why: "graft's own kernel op: a graph graft built from an ONNX model is exported from that model's ModelProto (surgery.UpdateWeights, graph.Convert), not from gorgonia"},
	"gradOp":      {why: "the backward pass of graft's own kernel op: gradients are not part of an exported model"},
}

// plan looks n's op up in gorgoniaOps.
func (e *nexp) plan(n *G.Node) (*nplan, error) {
	if n.Op() == nil {
		return &nplan{emit: func() (*nval, error) { return e.emitInput(n) }}, nil
	}
	if dt := n.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, e.opErr(n, "element type %v: graft exports float32 and float64 graphs only", dt)
	}
	op, ok := gorgoniaOps[opKind(n.Op())]
	if !ok || op.plan == nil {
		return nil, e.noCounterpart(n, op.why)
	}
	return op.plan(e, n, e.children(n)), nil
}

// planElemBin writes gorgonia.Rectify's pattern as one Relu.
func (e *nexp) planElemBin(n *G.Node, kids []*G.Node) *nplan {
	if x := e.matchRelu(n, kids); x != nil {
		return &nplan{deps: []*G.Node{x}, emit: func() (*nval, error) { return e.emitUnary(n, "Relu", x) }}
	}
	return afterKids((*nexp).emitBinary)(e, n, kids)
}

// planTranspose writes gorgonia.Conv2d's pattern, which ends in a
// transpose, as one Conv.
func (e *nexp) planTranspose(n *G.Node, kids []*G.Node) *nplan {
	if x, w, col := e.matchConv(n); x != nil {
		return &nplan{deps: []*G.Node{x, w}, emit: func() (*nval, error) { return e.emitConv(n, x, w, col) }}
	}
	return afterKids((*nexp).emitTranspose)(e, n, kids)
}

func (e *nexp) emitConstant(n *G.Node, _ []*G.Node) (*nval, error) { return e.emitValue(n, "const") }

func (e *nexp) emitReshape(n *G.Node, kids []*G.Node) (*nval, error) {
	x, err := e.get(kids[0])
	if err != nil {
		return nil, err
	}
	if slices.Equal(x.shape, n.Shape()) {
		return x, nil
	}
	return e.finishErr(n, "Reshape", func() (*nval, error) { return e.reshape(e.baseName(n, "Reshape"), x, n.Shape()) })
}

// emitDropout: Dropout is the identity at inference (gorgonia scales at
// training).
func (e *nexp) emitDropout(_ *G.Node, kids []*G.Node) (*nval, error) { return e.get(kids[0]) }

func (e *nexp) emitMinMax(n *G.Node, kids []*G.Node) (*nval, error) {
	op := "Min"
	if opKind(n.Op()) == "maxBetween" {
		op = "Max"
	}
	return e.emitBroadcasting(n, op, kids[0], kids[1])
}

func (e *nexp) emitGlobalAveragePool(n *G.Node, kids []*G.Node) (*nval, error) {
	return e.emitSimple(n, "GlobalAveragePool", kids[0])
}

func (e *nexp) finishErr(n *G.Node, kind string, f func() (*nval, error)) (*nval, error) {
	v, err := f()
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	return e.finish(n, kind, v)
}

// ---------------------------------------------------------------- inputs and values

func (e *nexp) emitInput(n *G.Node) (*nval, error) {
	if e.input[n] {
		name := e.nodeName(n, "input")
		batch := -1
		if e.dynamic() {
			batch = 0
		}
		if dt := n.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
			return nil, e.opErr(n, "input element type %v: graft exports float inputs only", dt)
		}
		e.gp.Input = append(e.gp.Input, e.valueInfo(name, n.Shape(), batch))
		return &nval{name: name, shape: n.Shape(), batch: batch}, nil
	}
	if n.Value() == nil {
		return nil, e.opErr(n, "an input node with no value that is not listed in Inputs: list it there, or give it a value to export it as a weight")
	}
	return e.emitValue(n, "weight")
}

// emitValue writes n's value as an initializer.
func (e *nexp) emitValue(n *G.Node, kind string) (*nval, error) {
	data, err := floats(n.Value())
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	shape := []int(n.Shape())
	if onnx.NumElems(shape) != len(data) {
		return nil, e.opErr(n, "value has %d elements, node shape %v", len(data), shape)
	}
	name := e.nodeName(n, kind)
	delete(e.used, name) // initFloat takes it
	e.initFloat(name, shape, data)
	return &nval{name: name, shape: shape, batch: -1}, nil
}

// floats returns a gorgonia value's elements as float32.
func floats(v G.Value) ([]float32, error) {
	if v == nil {
		return nil, fmt.Errorf("no value")
	}
	if d, ok := v.(*tensor.Dense); ok && d.IsMaterializable() {
		v = d.Materialize()
	}
	switch x := v.Data().(type) {
	case []float32:
		return slices.Clone(x), nil
	case []float64:
		out := make([]float32, len(x))
		for i, f := range x {
			out[i] = float32(f)
		}
		return out, nil
	case float32:
		return []float32{x}, nil
	case float64:
		return []float32{float32(x)}, nil
	}
	return nil, fmt.Errorf("value of type %v: graft exports float32 and float64 values only", v.Dtype())
}

// ---------------------------------------------------------------- elementwise

// matchRelu recognises gorgonia.Rectify: x ⊙ (x ≥ 0), returning x.
func (e *nexp) matchRelu(n *G.Node, kids []*G.Node) *G.Node {
	if len(kids) != 2 || !strings.HasPrefix(fmt.Sprint(n.Op()), "⊙ ") {
		return nil
	}
	for i := range 2 {
		x, m := kids[i], kids[1-i]
		if m.Op() == nil || opKind(m.Op()) != "elemBinOp" || fmt.Sprint(m.Op()) != ">= true" {
			continue
		}
		mk := e.children(m)
		if len(mk) != 2 || mk[0] != x || !isZeroConst(mk[1]) {
			continue
		}
		if !slices.Equal(x.Shape(), n.Shape()) {
			continue
		}
		return x
	}
	return nil
}

func isZeroConst(n *G.Node) bool {
	if n.Op() == nil || opKind(n.Op()) != "constantScalar" {
		return false
	}
	f, err := floats(n.Value())
	return err == nil && len(f) == 1 && f[0] == 0
}

var binaryOps = map[string]string{
	"+": "Add", "-": "Sub", "⊙": "Mul", "÷": "Div", "^": "Pow",
	"<": "Less", ">": "Greater", "<=": "LessOrEqual", ">=": "GreaterOrEqual", "==": "Equal", "!=": "Equal",
}

func (e *nexp) emitBinary(n *G.Node, kids []*G.Node) (*nval, error) {
	s := fmt.Sprint(n.Op())
	f := strings.Fields(s)
	if len(f) != 2 || len(kids) != 2 {
		return nil, e.noCounterpart(n, "unknown binary operator")
	}
	op, ok := binaryOps[f[0]]
	if !ok {
		return nil, e.noCounterpart(n, fmt.Sprintf("unknown binary operator %q", f[0]))
	}
	switch f[0] {
	case "+", "-", "⊙", "÷", "^":
		return e.emitBroadcasting(n, op, kids[0], kids[1])
	}
	// Comparisons: retSame=true gives 1 and 0 in the float type; false
	// gives bools, which graft does not export.
	if f[1] != "true" {
		return nil, e.noCounterpart(n, "comparisons returning bool tensors are not exported (use retSame=true)")
	}
	name := e.nodeName(n, op)
	a, b, err := e.operands(n, kids[0], kids[1])
	if err != nil {
		return nil, err
	}
	out := e.op1(op, name+"/"+op, []string{a.name, b.name})
	if f[0] == "!=" {
		out = e.op1("Not", name+"/Not", []string{out})
	}
	e.add("Cast", []string{out}, []string{name}, onnx.IntAttr("to", 1))
	return &nval{name: name, shape: n.Shape(), batch: e.outBatch(a, b, n.Shape()), produced: true}, nil
}

// emitBroadcasting writes an elementwise op with numpy broadcasting.
func (e *nexp) emitBroadcasting(n *G.Node, op string, ca, cb *G.Node) (*nval, error) {
	a, b, err := e.operands(n, ca, cb)
	if err != nil {
		return nil, err
	}
	name := e.nodeName(n, op)
	e.add(op, []string{a.name, b.name}, []string{name})
	return &nval{name: name, shape: n.Shape(), batch: e.outBatch(a, b, n.Shape()), produced: true}, nil
}

// operands returns the tensors an elementwise op reads: a lazily broadcast
// operand is used as it is where ONNX broadcasting gives the node's shape,
// and broadcast with Expand otherwise.
func (e *nexp) operands(n *G.Node, ca, cb *G.Node) (*nval, *nval, error) {
	want := []int(n.Shape())
	a, b := e.vals[ca], e.vals[cb]
	if e.fits(a, b, want) {
		return a, b, nil
	}
	var err error
	if a, err = e.get(ca); err != nil {
		return nil, nil, err
	}
	if b, err = e.get(cb); err != nil {
		return nil, nil, err
	}
	if e.fits(a, b, want) {
		return a, b, nil
	}
	// gorgonia also combines tensors of equal size and different shapes.
	total := onnx.NumElems(want)
	for _, p := range []**nval{&a, &b} {
		if !slices.Equal((*p).shape, want) && len((*p).shape) > 0 && onnx.NumElems((*p).shape) == total {
			r, err := e.reshape(e.baseName(n, "Reshape")+"/operand", *p, want)
			if err != nil {
				return nil, nil, e.opErr(n, "%v", err)
			}
			*p = r
		}
	}
	if e.fits(a, b, want) {
		return a, b, nil
	}
	if e.dynamic() {
		return nil, nil, e.opErr(n, "operand shapes %v (batch axis %d) and %v (batch axis %d) do not broadcast to %v with a run-time batch size (DynamicBatch)", a.shape, a.batch, b.shape, b.batch, want)
	}
	return nil, nil, e.opErr(n, "operand shapes %v and %v do not broadcast to %v", a.shape, b.shape, want)
}

// fits tells whether ONNX broadcasting of a and b (as stored) yields
// shape want, with the batch axis where it must be.
func (e *nexp) fits(a, b *nval, want []int) bool {
	bs, ok := broadcastShapes(a.shape, b.shape)
	if !ok || !slices.Equal(bs, want) {
		return false
	}
	if !e.dynamic() {
		return true
	}
	r := len(want)
	need := -1
	for _, v := range []*nval{a, b} {
		fb, fr := v.batch, len(v.shape)
		if v.lazy() {
			fb, fr = v.fullBatch, len(v.full)
		}
		if fb >= 0 {
			ax := r - fr + fb
			if need >= 0 && need != ax {
				return false
			}
			need = ax
		}
	}
	if need < 0 {
		return true
	}
	carried := false
	for _, v := range []*nval{a, b} {
		ax := need - (r - len(v.shape))
		switch {
		case ax < 0:
		case v.batch == ax:
			carried = true
		case v.shape[ax] != 1:
			return false // a fixed size where the batch size varies
		}
	}
	return carried
}

// outBatch is the batch axis of an elementwise result.
func (e *nexp) outBatch(a, b *nval, out []int) int {
	if !e.dynamic() {
		return -1
	}
	for _, v := range []*nval{a, b} {
		if v.batch >= 0 {
			return len(out) - len(v.shape) + v.batch
		}
	}
	return -1
}

func broadcastShapes(a, b []int) ([]int, bool) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := range r {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

var unaryOps = map[string]string{
	"abs": "Abs", "sign": "Sign", "ceil": "Ceil", "floor": "Floor", "sin": "Sin", "cos": "Cos",
	"exp": "Exp", "ln": "Log", "neg": "Neg", "sqrt": "Sqrt", "inv": "Reciprocal",
	"tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus",
}

func (e *nexp) emitUnaryOp(n *G.Node, kids []*G.Node) (*nval, error) {
	s, c := fmt.Sprint(n.Op()), kids[0]
	if op, ok := unaryOps[s]; ok {
		return e.emitUnary(n, op, c)
	}
	x, err := e.get(c)
	if err != nil {
		return nil, err
	}
	// Composite unaries, by the ONNX op that computes the result.
	kind, ok := map[string]string{"square": "Mul", "cube": "Mul", "log2": "Div", "log1p": "Log", "invSqrt": "Reciprocal", "expm1": "Sub"}[s]
	if !ok {
		return nil, e.noCounterpart(n, fmt.Sprintf("unknown unary operator %q", s))
	}
	name := e.nodeName(n, kind)
	switch s {
	case "square":
		e.add("Mul", []string{x.name, x.name}, []string{name})
	case "cube":
		sq := e.op1("Mul", name+"/square", []string{x.name, x.name})
		e.add("Mul", []string{sq, x.name}, []string{name})
	case "log2":
		ln := e.op1("Log", name+"/ln", []string{x.name})
		e.add("Div", []string{ln, e.scalar(name+"/ln2", float32(math.Ln2))}, []string{name})
	case "log1p":
		p := e.op1("Add", name+"/plus1", []string{x.name, e.scalar(name+"/one", 1)})
		e.add("Log", []string{p}, []string{name})
	case "invSqrt":
		r := e.op1("Sqrt", name+"/sqrt", []string{x.name})
		e.add("Reciprocal", []string{r}, []string{name})
	case "expm1":
		ex := e.op1("Exp", name+"/exp", []string{x.name})
		e.add("Sub", []string{ex, e.scalar(name+"/one", 1)}, []string{name})
	}
	return &nval{name: name, shape: x.shape, batch: x.batch, produced: true}, nil
}

// emitUnary writes a one-input op that keeps the shape.
func (e *nexp) emitUnary(n *G.Node, op string, c *G.Node, attrs ...*onnx.AttributeProto) (*nval, error) {
	x, err := e.get(c)
	if err != nil {
		return nil, err
	}
	name := e.nodeName(n, op)
	e.add(op, []string{x.name}, []string{name}, attrs...)
	return &nval{name: name, shape: slices.Clone(x.shape), batch: x.batch, produced: true}, nil
}

// emitSimple writes a one-input op whose output has the node's shape.
func (e *nexp) emitSimple(n *G.Node, op string, c *G.Node, attrs ...*onnx.AttributeProto) (*nval, error) {
	x, err := e.get(c)
	if err != nil {
		return nil, err
	}
	if e.dynamic() && x.batch > 0 {
		return nil, e.opErr(n, "the batch must be axis 0 (DynamicBatch), it is axis %d", x.batch)
	}
	name := e.nodeName(n, op)
	e.add(op, []string{x.name}, []string{name}, attrs...)
	return &nval{name: name, shape: n.Shape(), batch: x.batch, produced: true}, nil
}

// ---------------------------------------------------------------- linear algebra

// linOperands are the operands of a gorgonia linear algebra op, exported.
type linOperands struct {
	a, b           *nval
	transA, transB bool
	base           string // the name helper tensors are named after
}

// emitLinAlg writes gorgonia's linear algebra ops (its String() is
// "A × B", "Aᵀ × B", "a ⋅ b", "a ⊗ b", "A ××× B" ...).
func (e *nexp) emitLinAlg(n *G.Node, kids []*G.Node) (*nval, error) {
	f := strings.Fields(fmt.Sprint(n.Op()))
	if len(f) != 3 || len(kids) != 2 {
		return nil, e.noCounterpart(n, "unknown linear algebra operator")
	}
	l := linOperands{transA: strings.HasSuffix(f[0], "ᵀ"), transB: strings.HasSuffix(f[2], "ᵀ")}
	var err error
	if l.a, err = e.get(kids[0]); err != nil {
		return nil, err
	}
	if l.b, err = e.get(kids[1]); err != nil {
		return nil, err
	}
	kind := "MatMul"
	switch {
	case f[1] == "⊗":
		kind = "Mul"
	case f[1] == "×" && (l.transA || l.transB) && len(l.b.shape) == 2:
		kind = "Gemm"
	}
	l.base = e.baseName(n, kind)
	if e.dynamic() && l.b.batch >= 0 && f[1] != "×××" && f[1] != "⊗" {
		return nil, e.opErr(n, "the right operand follows the batch size (DynamicBatch): only the left one may")
	}
	var v *nval
	switch f[1] {
	case "×":
		v, err = e.matMul(n, l)
	case "⋅":
		v = e.dot(l)
	case "⊗":
		v, err = e.outer(n, l)
	case "×××":
		v, err = e.batchedMatMul(n, l)
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, e.noCounterpart(n, fmt.Sprintf("operand shapes %v and %v", l.a.shape, l.b.shape))
	}
	return e.finish(n, kind, v)
}

// matMul writes A × B (a matrix times a matrix or a vector, either
// transposed); nil when the shapes are others.
func (e *nexp) matMul(n *G.Node, l linOperands) (*nval, error) {
	a, b := l.a, l.b
	if len(a.shape) != 2 || len(b.shape) > 2 {
		return nil, nil
	}
	// The row axis of op(A) carries the batch; the other is contracted.
	rows, cols := 0, 1
	if l.transA {
		rows, cols = 1, 0
	}
	if a.batch == cols {
		return nil, e.opErr(n, "the batch is the contracted axis (DynamicBatch)")
	}
	batch := -1
	if a.batch == rows {
		batch = 0
	}
	if len(b.shape) == 2 { // A × B as Gemm (a Transpose before a MatMul is fused by ONNX Runtime)
		if l.transA || l.transB {
			m, nn := a.shape[rows], b.shape[1]
			if l.transB {
				nn = b.shape[0]
			}
			out := e.op1("Gemm", l.base+"/Gemm", []string{a.name, b.name}, onnx.IntAttr("transA", btoi64(l.transA)), onnx.IntAttr("transB", btoi64(l.transB)))
			return &nval{name: out, shape: []int{m, nn}, batch: batch, produced: true}, nil
		}
		out := e.op1("MatMul", l.base+"/MatMul", []string{a.name, b.name})
		return &nval{name: out, shape: []int{a.shape[0], b.shape[1]}, batch: batch, produced: true}, nil
	}
	// A × b, and Aᵀ × b as b × A (numpy's matmul of a vector and a
	// matrix; ONNX Runtime 1.30 gets Transpose then MatMul by a vector
	// wrong).
	in := []string{a.name, b.name}
	if l.transA {
		in = []string{b.name, a.name}
	}
	out := e.op1("MatMul", l.base+"/MatMul", in)
	return &nval{name: out, shape: []int{a.shape[rows]}, batch: batch, produced: true}, nil
}

// dot writes a ⋅ b of two vectors; nil for other shapes.
func (e *nexp) dot(l linOperands) *nval {
	if len(l.a.shape) != 1 || len(l.b.shape) != 1 {
		return nil
	}
	out := e.op1("MatMul", l.base+"/MatMul", []string{l.a.name, l.b.name})
	return &nval{name: out, shape: []int{}, batch: -1, produced: true}
}

// outer writes a ⊗ b of two vectors as a column times a row; nil for
// other shapes.
func (e *nexp) outer(n *G.Node, l linOperands) (*nval, error) {
	a, b := l.a, l.b
	if len(a.shape) != 1 || len(b.shape) != 1 {
		return nil, nil
	}
	col, err := e.reshape(l.base+"/col", a, []int{a.shape[0], 1})
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	batch := col.batch
	if b.batch >= 0 {
		batch = 1
	}
	out := e.op1("Mul", l.base+"/Mul", []string{col.name, b.name})
	return &nval{name: out, shape: []int{a.shape[0], b.shape[0]}, batch: batch, produced: true}, nil
}

// batchedMatMul writes A ××× B over tensors of equal rank 3 or more; nil
// for other shapes.
func (e *nexp) batchedMatMul(n *G.Node, l linOperands) (*nval, error) {
	a, b := l.a, l.b
	if len(a.shape) < 3 || len(a.shape) != len(b.shape) {
		return nil, nil
	}
	if l.transA {
		a = e.transposeLast(a, l.base+"/At")
	}
	if l.transB {
		b = e.transposeLast(b, l.base+"/Bt")
	}
	r := len(a.shape)
	if e.dynamic() && (a.batch >= r-2 || b.batch >= r-2 || (b.batch >= 0 && b.batch != a.batch)) {
		return nil, e.opErr(n, "the batch must be a leading axis of both operands (DynamicBatch)")
	}
	sh := slices.Clone(a.shape)
	sh[r-1] = b.shape[r-1]
	out := e.op1("MatMul", l.base+"/MatMul", []string{a.name, b.name})
	return &nval{name: out, shape: sh, batch: a.batch, produced: true}, nil
}

// transposeLast swaps the last two axes of v.
func (e *nexp) transposeLast(v *nval, name string) *nval {
	r := len(v.shape)
	perm := make([]int, r)
	for i := range perm {
		perm[i] = i
	}
	perm[r-1], perm[r-2] = perm[r-2], perm[r-1]
	sh := slices.Clone(v.shape)
	sh[r-1], sh[r-2] = sh[r-2], sh[r-1]
	bt := v.batch
	if bt >= r-2 {
		bt = perm[bt]
	}
	return &nval{name: e.op1("Transpose", name, []string{v.name}, onnx.IntsAttr("perm", perm...)), shape: sh, batch: bt, produced: true}
}

// ---------------------------------------------------------------- shapes

func btoi64(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// parseInts returns the integers in s, in order.
func parseInts(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r != '-' && (r < '0' || r > '9') }) {
		if v, err := strconv.Atoi(f); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func (e *nexp) emitTranspose(n *G.Node, kids []*G.Node) (*nval, error) {
	s := fmt.Sprint(n.Op())
	x, err := e.get(kids[0])
	if err != nil {
		return nil, err
	}
	perm := parseInts(strings.TrimPrefix(s, "Aᵀ"))
	if len(perm) != len(x.shape) {
		return nil, e.noCounterpart(n, fmt.Sprintf("cannot read the permutation from %q", s))
	}
	name := e.nodeName(n, "Transpose")
	e.add("Transpose", []string{x.name}, []string{name}, onnx.IntsAttr("perm", perm...))
	batch := -1
	if x.batch >= 0 {
		batch = slices.Index(perm, x.batch)
	}
	return &nval{name: name, shape: n.Shape(), batch: batch, produced: true}, nil
}

func (e *nexp) emitConcat(n *G.Node, kids []*G.Node) (*nval, error) {
	s := fmt.Sprint(n.Op())
	axis := parseInts(s)
	if len(axis) != 1 {
		return nil, e.noCounterpart(n, fmt.Sprintf("cannot read the axis from %q", s))
	}
	var names []string
	batch := -2
	for _, c := range kids {
		v, err := e.get(c)
		if err != nil {
			return nil, err
		}
		if batch != -2 && v.batch != batch && e.dynamic() {
			return nil, e.opErr(n, "inputs follow the batch size on different axes (DynamicBatch)")
		}
		batch = v.batch
		names = append(names, v.name)
	}
	name := e.nodeName(n, "Concat")
	e.add("Concat", names, []string{name}, onnx.IntAttr("axis", int64(axis[0])))
	return &nval{name: name, shape: n.Shape(), batch: batch, produced: true}, nil
}

func (e *nexp) emitReduce(n *G.Node, kids []*G.Node) (*nval, error) {
	kind, s := opKind(n.Op()), fmt.Sprint(n.Op())
	x, err := e.get(kids[0])
	if err != nil {
		return nil, err
	}
	axes := parseInts(s)
	if len(axes) == 0 {
		return nil, e.noCounterpart(n, fmt.Sprintf("cannot read the axes from %q", s))
	}
	slices.Sort(axes)
	axes = slices.Compact(axes)
	var shape []int
	batch := -1
	for i, d := range x.shape {
		if slices.Contains(axes, i) {
			continue
		}
		if i == x.batch {
			batch = len(shape)
		}
		shape = append(shape, d)
	}
	var out string
	if kind == "sumOp" {
		kind = "ReduceSum"
		base := e.baseName(n, kind)
		out = e.op1(kind, base+"/"+kind, []string{x.name, e.ints1(base+"/axes", axes...)}, onnx.IntAttr("keepdims", 0))
	} else {
		kind = "ReduceMax"
		base := e.baseName(n, kind)
		out = e.op1(kind, base+"/"+kind, []string{x.name}, onnx.IntsAttr("axes", axes...), onnx.IntAttr("keepdims", 0))
	}
	return e.finish(n, kind, &nval{name: out, shape: shape, batch: batch, produced: true})
}

func (e *nexp) emitSoftmax(n *G.Node, kids []*G.Node) (*nval, error) {
	s, c := fmt.Sprint(n.Op()), kids[0]
	ints := parseInts(s)
	if len(ints) != 1 {
		return nil, e.noCounterpart(n, fmt.Sprintf("cannot read the axis from %q", s))
	}
	axis := ints[0]
	shape := n.Shape()
	if axis == -1 { // gorgonia's default: the last axis, 0 for column vectors
		axis = len(shape) - 1
		if shape.IsColVec() || len(shape) == 1 {
			axis = 0
		}
	}
	op := "Softmax"
	if strings.Contains(s, "true") {
		op = "LogSoftmax"
	}
	return e.emitUnary(n, op, c, onnx.IntAttr("axis", int64(axis)))
}

func (e *nexp) emitSize(n *G.Node, kids []*G.Node) (*nval, error) {
	c := kids[0]
	axis, err := opInt(n.Op(), "axis")
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	cs := c.Shape()
	if axis < 0 || axis >= len(cs) {
		return nil, e.opErr(n, "axis %d of a tensor of shape %v", axis, cs)
	}
	x := e.vals[c]
	fb := x.batch
	if x.lazy() {
		fb = x.fullBatch
	}
	if !e.dynamic() || fb != axis {
		return e.emitConst(n, "SizeOf", float32(cs[axis]))
	}
	// The size of the batch axis is known at run time only.
	if x, err = e.get(c); err != nil {
		return nil, err
	}
	name := e.nodeName(n, "SizeOf")
	shp := e.op1("Shape", name+"/shape", []string{x.name})
	size := e.op1("Gather", name+"/size", []string{shp, e.initInts(name+"/axis", nil, []int64{int64(axis)})})
	e.add("Cast", []string{size}, []string{name}, onnx.IntAttr("to", 1))
	return &nval{name: name, shape: []int{}, batch: -1, produced: true, sizeInt: size}, nil
}

// emitConst writes a scalar node known at export time as an initializer.
func (e *nexp) emitConst(n *G.Node, kind string, v float32) (*nval, error) {
	name := e.nodeName(n, kind)
	delete(e.used, name)
	e.initFloat(name, nil, []float32{v})
	return &nval{name: name, shape: []int{}, batch: -1}, nil
}

// emitRepeat handles gorgonia's repeat (numpy's repeat along one axis). A
// repeat of a size-1 axis, which is how gorgonia's Broadcast* functions
// broadcast, stays lazy: see nval.
func (e *nexp) emitRepeat(n *G.Node, kids []*G.Node) (*nval, error) {
	s := fmt.Sprint(n.Op())
	ax := parseInts(s)
	if len(ax) != 1 || len(kids) != 2 {
		return nil, e.noCounterpart(n, fmt.Sprintf("cannot read the axis from %q", s))
	}
	axis := ax[0]
	out := []int(n.Shape())
	x := e.vals[kids[0]]
	in := x.shape
	if x.lazy() {
		in = x.full
	}
	// gorgonia's repeat pads a vector with trailing 1s and makes a scalar [1].
	ext := slices.Clone(in)
	if len(ext) == 0 {
		ext = []int{1}
	}
	for len(ext) < len(out) {
		ext = append(ext, 1)
	}
	if len(ext) != len(out) || axis >= len(out) || ext[axis] == 0 || out[axis]%ext[axis] != 0 {
		return nil, e.opErr(n, "repeat of shape %v along %d to %v", in, axis, out)
	}
	rep := out[axis] / ext[axis]
	dynRep := false
	if e.dynamic() {
		if sv := e.vals[kids[1]]; sv != nil && sv.sizeInt != "" {
			dynRep = true
		}
	}
	if !slices.Equal(ext, in) {
		var err error
		if x, err = e.get(kids[0]); err != nil {
			return nil, err
		}
		if x, err = e.reshape(e.baseName(n, "Repeat")+"/in", x, ext); err != nil {
			return nil, e.opErr(n, "%v", err)
		}
	}
	if ext[axis] == 1 {
		l := &nval{name: x.name, shape: x.shape, batch: x.batch, produced: x.produced, full: out, fullBatch: x.batch, dynSize: map[int]*G.Node{}}
		if x.lazy() {
			l.fullBatch = x.fullBatch
			for k, v := range x.dynSize {
				l.dynSize[k] = v
			}
		} else if x.batch >= 0 {
			l.fullBatch = len(out) - len(x.shape) + x.batch
		}
		if dynRep {
			if l.fullBatch >= 0 && l.fullBatch != axis {
				return nil, e.opErr(n, "repeats to the batch size on axis %d of a value whose batch is axis %d (DynamicBatch)", axis, l.fullBatch)
			}
			l.fullBatch = axis
			l.dynSize[axis] = kids[1]
		}
		return l, nil
	}
	// A true repeat: x[..., i, ...] -> x[..., i, i, ..., i, ...].
	if dynRep {
		return nil, e.opErr(n, "repeats each element by the batch size (DynamicBatch)")
	}
	var err error
	if x, err = e.get(kids[0]); err != nil {
		return nil, err
	}
	if e.dynamic() && x.batch == axis {
		return nil, e.opErr(n, "repeats along the batch axis (DynamicBatch)")
	}
	base := e.baseName(n, "Repeat")
	u := e.op1("Unsqueeze", base+"/unsqueeze", []string{x.name, e.ints1(base+"/axes", axis+1)})
	target := slices.Insert(slices.Clone(ext), axis+1, rep)
	spec := slices.Clone(target)
	if e.dynamic() && x.batch >= 0 {
		spec[x.batch] = 1
	}
	ex := e.op1("Expand", base+"/expand", []string{u, e.ints1(base+"/shape", spec...)})
	bt := x.batch
	if bt > axis {
		bt++
	}
	return e.finish(n, "Repeat", &nval{name: ex, shape: target, batch: bt, produced: true})
}

func (e *nexp) emitSlice(n *G.Node, kids []*G.Node) (*nval, error) {
	s := fmt.Sprint(n.Op())
	x, err := e.get(kids[0])
	if err != nil {
		return nil, err
	}
	sl, ok := n.Op().(interface{ IsSlice() tensor.Slice })
	if !ok {
		return nil, e.noCounterpart(n, "cannot read the slice")
	}
	along := strings.Count(s, ":, ")
	rs := sl.IsSlice()
	if rs == nil {
		if !slices.Equal(x.shape, n.Shape()) {
			return nil, e.opErr(n, "slice [:] changes the shape %v to %v", x.shape, n.Shape())
		}
		return x, nil
	}
	if along >= len(x.shape) {
		return nil, e.opErr(n, "slice along axis %d of shape %v", along, x.shape)
	}
	if e.dynamic() && x.batch == along {
		return nil, e.opErr(n, "slices the batch axis (DynamicBatch)")
	}
	start, end, step := rs.Start(), rs.End(), rs.Step()
	if step <= 0 {
		step = 1
	}
	if end <= start || end > x.shape[along] {
		end = x.shape[along]
	}
	length := (end - start + step - 1) / step
	shape := slices.Clone(x.shape)
	shape[along] = length
	want := n.Shape()
	if onnx.NumElems(shape) != onnx.NumElems(want) {
		return nil, e.opErr(n, "slice %d:%d:%d along %d of %v gives %v elements, gorgonia's result %v", start, end, step, along, x.shape, shape, want)
	}
	base := e.baseName(n, "Slice")
	out := e.op1("Slice", base+"/Slice", []string{x.name, e.ints1(base+"/starts", start), e.ints1(base+"/ends", end),
		e.ints1(base+"/axes", along), e.ints1(base+"/steps", step)})
	return e.finish(n, "Slice", &nval{name: out, shape: shape, batch: x.batch, produced: true})
}

// ---------------------------------------------------------------- convolution and pooling

// matchConv recognises gorgonia.Conv2d: transpose{0,3,1,2}(reshape(
// reshape(im2col(x)) × reshape(w)ᵀ)). It returns x, w and the im2col
// node, or nils.
func (e *nexp) matchConv(t *G.Node) (x, w, col *G.Node) {
	one := func(n *G.Node, kind string) *G.Node {
		if n.Op() == nil || opKind(n.Op()) != kind {
			return nil
		}
		k := e.children(n)
		if len(k) != 1 {
			return nil
		}
		return k[0]
	}
	if !slices.Equal(parseInts(strings.TrimPrefix(fmt.Sprint(t.Op()), "Aᵀ")), []int{0, 3, 1, 2}) {
		return nil, nil, nil
	}
	r2 := one(t, "transposeOp")
	if r2 == nil {
		return nil, nil, nil
	}
	mm := one(r2, "reshapeOp")
	if mm == nil || mm.Op() == nil || opKind(mm.Op()) != "linAlgBinOp" || fmt.Sprint(mm.Op()) != "A × Bᵀ" {
		return nil, nil, nil
	}
	mk := e.children(mm)
	if len(mk) != 2 {
		return nil, nil, nil
	}
	col = one(mk[0], "reshapeOp")
	w = one(mk[1], "reshapeOp")
	if col == nil || w == nil {
		return nil, nil, nil
	}
	if x = one(col, "im2colOp"); x == nil {
		return nil, nil, nil
	}
	ws, xs, ts, cs := w.Shape(), x.Shape(), t.Shape(), col.Shape()
	if len(ws) != 4 || len(xs) != 4 || len(ts) != 4 || len(cs) != 4 || ws[1] != xs[1] ||
		!slices.Equal(mk[1].Shape(), tensor.Shape{ws[0], ws[1] * ws[2] * ws[3]}) ||
		cs[3] != ws[1]*ws[2]*ws[3] || ts[1] != ws[0] || ts[0] != xs[0] ||
		!slices.Equal(r2.Shape(), tensor.Shape{cs[0], cs[1], cs[2], ws[0]}) {
		return nil, nil, nil
	}
	return x, w, col
}

// convAttrs reads an im2col op's parameters as ONNX Conv attributes.
func convAttrs(op G.Op) ([]*onnx.AttributeProto, []int, error) {
	var v [8]int
	for i, f := range []string{"h", "w", "padH", "padW", "strideH", "strideW", "dilationH", "dilationW"} {
		x, err := opInt(op, f)
		if err != nil {
			return nil, nil, err
		}
		v[i] = x
	}
	return []*onnx.AttributeProto{
		onnx.IntsAttr("kernel_shape", v[0], v[1]),
		onnx.IntsAttr("pads", v[2], v[3], v[2], v[3]),
		onnx.IntsAttr("strides", v[4], v[5]),
		onnx.IntsAttr("dilations", v[6], v[7]),
	}, v[:2], nil
}

func (e *nexp) emitConv(n, xn, wn, col *G.Node) (*nval, error) {
	x, err := e.get(xn)
	if err != nil {
		return nil, err
	}
	w, err := e.get(wn)
	if err != nil {
		return nil, err
	}
	if e.dynamic() && (x.batch > 0 || w.batch >= 0) {
		return nil, e.opErr(n, "Conv2d needs the batch on axis 0 of the image only (DynamicBatch)")
	}
	attrs, kernel, err := convAttrs(col.Op())
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	if ws := w.shape; ws[2] != kernel[0] || ws[3] != kernel[1] {
		return nil, e.opErr(n, "filter shape %v and kernel %v differ", ws, kernel)
	}
	name := e.nodeName(n, "Conv")
	e.add("Conv", []string{x.name, w.name}, []string{name}, attrs...)
	return &nval{name: name, shape: n.Shape(), batch: x.batch, produced: true}, nil
}

// emitIm2Col writes a lone im2col (not part of a Conv2d) as a convolution
// with a one-hot filter, which copies every patch element to its own
// channel, and a transpose to gorgonia's [B, H, W, C*kh*kw] layout.
func (e *nexp) emitIm2Col(n *G.Node, kids []*G.Node) (*nval, error) {
	x, err := e.get(kids[0])
	if err != nil {
		return nil, err
	}
	if e.dynamic() && x.batch > 0 {
		return nil, e.opErr(n, "the batch must be axis 0 (DynamicBatch)")
	}
	attrs, k, err := convAttrs(n.Op())
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	ch := x.shape[1]
	z := ch * k[0] * k[1]
	eye := make([]float32, z*z)
	for i := range z {
		eye[i*z+i] = 1 // filter [z, ch, kh, kw] holds z*z elements
	}
	name := e.nodeName(n, "Im2Col")
	f := e.initFloat(name+"/onehot", []int{z, ch, k[0], k[1]}, eye)
	cv := e.op1("Conv", name+"/conv", []string{x.name, f}, attrs...)
	e.add("Transpose", []string{cv}, []string{name}, onnx.IntsAttr("perm", 0, 2, 3, 1))
	return &nval{name: name, shape: n.Shape(), batch: x.batch, produced: true}, nil
}

func (e *nexp) emitMaxPool(n *G.Node, kids []*G.Node) (*nval, error) {
	c := kids[0]
	op := n.Op()
	var v [8]int
	for i, f := range []string{"h", "w", "padNorth", "padWest", "padSouth", "padEast", "strideH", "strideW"} {
		x, err := opInt(op, f)
		if err != nil {
			return nil, e.opErr(n, "%v", err)
		}
		v[i] = x
	}
	explicit, err := opBool(op, "explicitPadding")
	if err != nil {
		return nil, e.opErr(n, "%v", err)
	}
	kh, kw, pn, pw, ps, pe, sh, sw := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	// gorgonia starts the windows at -padSouth/-padEast when the padding is
	// explicit (four values) and at -padNorth/-padWest otherwise; the total
	// padding of an axis is north+south (west+east) either way.
	top, left := pn, pw
	if explicit {
		top, left = ps, pe
	}
	pads := []int{top, left, pn + ps - top, pw + pe - left}
	xs := c.Shape()
	oh := (xs[2]+pads[0]+pads[2]-kh)/sh + 1
	ow := (xs[3]+pads[1]+pads[3]-kw)/sw + 1
	if s := n.Shape(); s[2] != oh || s[3] != ow {
		return nil, e.opErr(n, "output %v differs from ONNX MaxPool's %dx%d", s, oh, ow)
	}
	return e.emitSimple(n, "MaxPool", c, onnx.IntsAttr("kernel_shape", kh, kw), onnx.IntsAttr("pads", pads...), onnx.IntsAttr("strides", sh, sw))
}

// ---------------------------------------------------------------- reflection

// opField returns an unexported field of a gorgonia op (read-only).
func opField(op G.Op, name string) (reflect.Value, error) {
	v := reflect.ValueOf(op)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName(name); f.IsValid() {
			return f, nil
		}
	}
	return reflect.Value{}, fmt.Errorf("gorgonia op %T has no field %q: a gorgonia version graft does not know (graft reads gorgonia v0.9.18)", op, name)
}

func opInt(op G.Op, name string) (int, error) {
	f, err := opField(op, name)
	if err != nil {
		return 0, err
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(f.Int()), nil
	}
	return 0, fmt.Errorf("gorgonia op %T: field %q is a %v, not an int", op, name, f.Kind())
}

func opBool(op G.Op, name string) (bool, error) {
	f, err := opField(op, name)
	if err != nil {
		return false, err
	}
	if f.Kind() != reflect.Bool {
		return false, fmt.Errorf("gorgonia op %T: field %q is a %v, not a bool", op, name, f.Kind())
	}
	return f.Bool(), nil
}
