package graph

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/hugemem"
	G "gorgonia.org/gorgonia"
)

// The frozen-inference executor. Model.Run does not use gorgonia's
// TapeMachine, which keeps the value of every node until the next run: it
// walks the same gorgonia graph (its nodes in topological order, each a
// graft kernel) itself, keeps a value only until its last reader has run,
// and hands the buffers of dead values to later nodes. Peak memory is then
// the largest set of values alive at once (a few activations), not the sum
// of all of them. Training graphs (BuildTraining) keep the TapeMachine:
// backward needs the forward values.

// execStep runs one kernel node.
type execStep struct {
	op   *kop
	node *G.Node
	in   []int // value slot of each input
	out  int   // value slot of the output
	dead []int // op-output slots whose last reader is this step
	// reuse is the input whose buffer the output takes (its value dies
	// here and the kernel may write over it), or -1.
	reuse int
}

// executor is a Model's compiled run plan.
type executor struct {
	steps  []execStep
	leaves map[int]*G.Node // slot -> input or weight node (values bound by gorgonia)
	shapes [][]int         // logical shape per slot
	outs   []int           // slot of each Model output, -1 if known at build time
	vals   []*onnx.Tensor  // current values, by slot
	pool   bufPool
	// hook, when set, is called after every step with the time the step's
	// kernel took (bench's per-op breakdown).
	hook func(op *kop, d time.Duration)
}

// newExecutor plans the run of m's graph. It returns nil when the graph
// holds a node that is not a graft kernel (none does for Build's graphs).
//
// With fusion set (inference-only builds, Options.Freeze), Convs absorb
// the elementwise nodes after them (fuse.go).
func newExecutor(m *Model, fusion bool) (*executor, error) {
	sorted, err := G.Sort(m.G)
	if err != nil {
		return nil, fmt.Errorf("sorting the graph: %w", err)
	}
	slices.Reverse(sorted)
	slot := make(map[*G.Node]int, len(sorted))
	e := &executor{leaves: map[int]*G.Node{}, shapes: make([][]int, len(sorted))}
	for i, n := range sorted {
		slot[n] = i
	}
	for _, n := range sorted {
		s := slot[n]
		if n.Op() == nil {
			e.leaves[s] = n
			continue
		}
		op, ok := n.Op().(*kop)
		if !ok {
			return nil, nil
		}
		st := execStep{op: op, node: n, out: s}
		kids := m.G.From(n.ID())
		for kids.Next() {
			kid := kids.Node().(*G.Node)
			k, ok := slot[kid]
			if !ok {
				return nil, fmt.Errorf("node %s reads a node outside the graph", op)
			}
			st.in = append(st.in, k)
		}
		if len(st.in) != len(op.in) {
			return nil, fmt.Errorf("node %s has %d inputs in the graph, its kernel %d", op, len(st.in), len(op.in))
		}
		for j, k := range st.in {
			if e.shapes[k] == nil {
				e.shapes[k] = op.in[j]
			}
		}
		e.shapes[s] = op.out
		e.steps = append(e.steps, st)
	}
	keep := map[int]bool{}
	for _, p := range m.Outputs {
		if p.Node == nil {
			e.outs = append(e.outs, -1)
			continue
		}
		s, ok := slot[p.Node]
		if !ok {
			return nil, fmt.Errorf("output %q is not in the graph", p.Name)
		}
		e.outs = append(e.outs, s)
		keep[s] = true
		if e.shapes[s] == nil {
			e.shapes[s] = p.Shape
		}
	}
	e.steps = needed(e.steps, keep)
	if fusion {
		e.steps = fuse(e.steps, e.shapes, keep)
	}
	lastUse := make([]int, len(sorted)) // step index of the last reader
	for i := range lastUse {
		lastUse[i] = -1
	}
	for i, st := range e.steps {
		for _, k := range st.in {
			lastUse[k] = i
		}
	}
	for s, at := range lastUse {
		if at >= 0 && !keep[s] && e.leaves[s] == nil {
			e.steps[at].dead = append(e.steps[at].dead, s)
		}
	}
	for i := range e.steps {
		e.steps[i].reuse = e.reusable(&e.steps[i])
	}
	e.vals = make([]*onnx.Tensor, len(sorted))
	e.pool.limit = e.maxLive()
	return e, nil
}

// needed returns the steps that the values in keep depend on, in order.
// A model built for some of its tensors (Options.Outputs: a frozen front,
// features before the classifier) still holds the nodes after them;
// running those would waste their time, and their outputs, read by no
// step and returned to no caller, would never go back to the pool.
func needed(steps []execStep, keep map[int]bool) []execStep {
	want := maps.Clone(keep)
	out := make([]execStep, 0, len(steps))
	for i := len(steps) - 1; i >= 0; i-- {
		if !want[steps[i].out] {
			continue
		}
		for _, k := range steps[i].in {
			want[k] = true
		}
		out = append(out, steps[i])
	}
	slices.Reverse(out)
	return out
}

// reusable returns the input of st whose buffer its output can take, or
// -1: the kernel must allow it (an inPlacer), and the input must be an
// op output of the output's size that dies at st.
func (e *executor) reusable(st *execStep) int {
	ip, ok := st.op.k.(inPlacer)
	if !ok {
		return -1
	}
	j := ip.inPlace()
	if j < 0 || j >= len(st.in) {
		return -1
	}
	s := st.in[j]
	if e.leaves[s] != nil || !slices.Contains(st.dead, s) || onnx.NumElems(e.shapes[s]) != onnx.NumElems(st.op.out) {
		return -1
	}
	return j
}

// maxLive counts the most buffers alive at once: the pool never needs
// to keep more than that. A step that writes in place (reuse >= 0) takes
// over its input's buffer, so it adds none and its input's death frees
// none.
func (e *executor) maxLive() int {
	live, most := 0, 0
	for _, st := range e.steps {
		taken := -1
		if st.reuse >= 0 {
			taken = st.in[st.reuse]
		} else {
			live++
			most = max(most, live)
		}
		for _, s := range st.dead {
			if s != taken {
				live--
			}
		}
	}
	return most
}

// value returns the tensor in slot s: a step's output, or a leaf's bound
// value viewed with its logical shape.
func (e *executor) value(s int) (*onnx.Tensor, error) {
	if t := e.vals[s]; t != nil {
		return t, nil
	}
	n, ok := e.leaves[s]
	if !ok || n.Value() == nil {
		return nil, fmt.Errorf("value of %s is not available", n)
	}
	ts, err := unwrap([]G.Value{n.Value()}, [][]int{e.shapes[s]})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Name(), err)
	}
	e.vals[s] = ts[0]
	return ts[0], nil
}

// run executes every step and returns the outputs' values (copies, which
// stay valid after the next run). Buffers of values that died go back to
// the pool for later steps and runs.
func (e *executor) run() (outs []*onnx.Tensor, err error) {
	defer func() {
		for s := range e.vals {
			e.vals[s] = nil
		}
	}()
	in := make([]*onnx.Tensor, 0, 8)
	for i := range e.steps {
		st := &e.steps[i]
		in = in[:0]
		for _, s := range st.in {
			t, err := e.value(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", st.op, err)
			}
			in = append(in, t)
		}
		var t0 time.Time
		if e.hook != nil {
			t0 = time.Now()
		}
		out, err := e.forward(st, in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.op, err)
		}
		e.vals[st.out] = out
		for _, s := range st.dead {
			if t := e.vals[s]; t != nil && !sharesData(t.F, out.F) {
				e.pool.put(t.F)
			}
			e.vals[s] = nil
		}
		if e.hook != nil {
			e.hook(st.op, time.Since(t0))
		}
	}
	outs = make([]*onnx.Tensor, len(e.outs))
	for i, s := range e.outs {
		if s < 0 {
			continue
		}
		t, err := e.value(s)
		if err != nil {
			return nil, err
		}
		outs[i] = t.Clone()
	}
	for _, s := range e.outs {
		if s >= 0 && e.leaves[s] == nil && e.vals[s] != nil {
			e.pool.put(e.vals[s].F)
			e.vals[s] = nil // an output named twice is put back once
		}
	}
	return outs, nil
}

// forward runs one kernel, into a recycled buffer when it can write into
// one (an intoKernel).
func (e *executor) forward(st *execStep, in []*onnx.Tensor) (*onnx.Tensor, error) {
	ik, ok := st.op.k.(intoKernel)
	if !ok {
		out, err := st.op.k.forward(in)
		if err != nil {
			return nil, err
		}
		if len(out.F) != onnx.NumElems(st.op.out) {
			return nil, fmt.Errorf("kernel returned %d values for shape %v", len(out.F), st.op.out)
		}
		for _, t := range in {
			if sharesData(out.F, t.F) {
				// a buffer must belong to one value, or recycling it
				// would overwrite the other
				out = out.Clone()
				break
			}
		}
		return out, nil
	}
	out := &onnx.Tensor{DType: onnx.Float32, Shape: st.op.out}
	if st.reuse >= 0 {
		out.F = in[st.reuse].F // its value dies here: the kernel writes over it
	} else {
		out.F = e.pool.get(onnx.NumElems(st.op.out))
	}
	if err := ik.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// An intoKernel can write its output into a buffer it is given (of the
// output's size, with arbitrary contents), so the executor can recycle
// buffers instead of allocating one per node and run.
type intoKernel interface {
	kernel
	forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error
}

// An inPlacer's forwardInto can take as out the buffer of one of its
// inputs (elementwise kernels that read each input element before
// writing the output element at the same index): inPlace returns that
// input, or -1 when this instance cannot (a broadcast input).
type inPlacer interface {
	intoKernel
	inPlace() int
}

// sharesData reports whether two slices have the same first element.
func sharesData(a, b []float32) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// bufPool keeps float32 buffers for reuse within one executor (one
// Model, used by one goroutine at a time). A request takes the smallest
// free buffer that holds it (best fit), sliced to its length, so a buffer
// serves values of many sizes in turn; at most limit buffers are kept
// free (more are never alive at once), the smallest going first. Keeping
// buffers by exact length instead kept one set per distinct size: 272 MB
// for the frozen front of a MobileNetV2 at batch 8, where a few buffers
// of the largest sizes do.
type bufPool struct {
	free  [][]float32 // at full capacity
	limit int
	made  int // buffers allocated so far (tests read it)
}

// actMem holds the executors' buffers in 2 MiB pages (see hugemem).
var actMem hugemem.Chunks

func (p *bufPool) get(n int) []float32 {
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best < 0 {
		p.made++
		return actMem.Floats(n)
	}
	b := p.free[best]
	p.free[best] = p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return b[:n]
}

func (p *bufPool) put(b []float32) {
	if cap(b) == 0 {
		return
	}
	p.free = append(p.free, b[:cap(b)])
	if len(p.free) > p.limit {
		small := 0
		for i, f := range p.free {
			if cap(f) < cap(p.free[small]) {
				small = i
			}
		}
		p.free[small] = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	}
}
