package graph

import (
	"slices"

	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
)

// Fused epilogues for frozen inference. The executor of a model built
// with Options.Freeze (and not for training) rewrites its run plan so
// that a Conv absorbs the elementwise nodes that follow it: an
// activation (Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid,
// ... any unaryKernel), x*f(x) written as f and Mul of the same input
// (SiLU = x*Sigmoid(x), HardSwish before opset 14 = x*HardSigmoid(x)),
// and a residual Add of a tensor of the same shape. The Conv applies
// them to each block of its output right after computing it, while it
// is in cache, and the intermediate tensors are never stored.
//
// A node is absorbed only when the tensor it reads from the chain has no
// other reader and is not a requested output, so every value the caller
// can see is the unfused one. Only the run plan changes: the gorgonia
// graph, Model.Node and Model.Shape still show every node, and exports,
// written from the original ModelProto, never see a fusion.

// epilogue is a chain of elementwise stages applied to a Conv's output.
type epilogue struct {
	stages []epStage
	// means, when set, receives the mean of each output plane, taken
	// once the plane is final and still in cache, for a
	// GlobalAveragePool that reads the output (see fuseMeans).
	means []float32
	// scale, when not 0, is the index among the kernel's inputs of a
	// per-image, per-input-channel scale [N, C, 1, 1] that multiplies the
	// convolution's input (squeeze-excitation's Mul, see fuseScale): the
	// weights are scaled instead, per image.
	scale int
}

// epStage is one stage: y += in[add] when f is nil, y = f(y) or, with
// self, y = y*f(y).
type epStage struct {
	add  int // index of the residual among the fused kernel's inputs
	f    func(float32) float32
	vf   func(dst, x []float32) // f over a slice (graph/internal/vec), when the kernel has one
	relu bool                   // f is Relu's: a branch-free loop does it
	// clamp, when set, is vf's bounds: vf is vec.Clip (Relu, Clip)
	clamp *[2]float32
	self  bool
	silu  bool // self with Sigmoid: vec.SiLU
}

// apply runs the epilogue over y, which is the block at element offset
// off of the output; residual inputs are read at the same offsets.
func (e *epilogue) apply(y []float32, off int, in []*onnx.Tensor) {
	if e == nil {
		return
	}
	e.applyFrom(0, y, off, in)
}

// applyBias adds bias to y, then runs the epilogue: in one pass when the
// epilogue starts with a clamp (a Conv's bias, then Relu or Clip, as in
// MobileNet's blocks), with the same bits as the two.
func (e *epilogue) applyBias(y []float32, bias float32, off int, in []*onnx.Tensor) {
	if e != nil && len(e.stages) > 0 && e.stages[0].clamp != nil {
		c := e.stages[0].clamp
		vec.AffineClamp(y, y, 1, bias, c[0], c[1])
		e.applyFrom(1, y, off, in)
		return
	}
	vec.AddScalar(y, y, bias)
	e.apply(y, off, in)
}

// applyFrom runs the stages from the first-th on.
func (e *epilogue) applyFrom(first int, y []float32, off int, in []*onnx.Tensor) {
	for _, s := range e.stages[first:] {
		switch {
		case s.f == nil:
			vec.Add(y, y, in[s.add].F[off:][:len(y)])
		case s.silu:
			vec.SiLU(y, y)
		case s.vf != nil && !s.self:
			s.vf(y, y)
		case s.relu:
			for i, v := range y {
				if !(v > 0) { // Relu's NaN goes to 0, as its kernel does
					v = 0
				}
				y[i] = v
			}
		case s.self:
			for i, v := range y {
				y[i] = v * s.f(v)
			}
		default:
			for i, v := range y {
				y[i] = s.f(v)
			}
		}
	}
}

// fusedConv is a Conv with an epilogue, as the executor runs it.
type fusedConv struct {
	*convKernel
	epi *epilogue
}

func (k *fusedConv) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	out := onnx.NewFloat(k.outShape, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (k *fusedConv) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	return k.forwardEpi(in, out, k.epi)
}

// fuse rewrites the plan's steps (in topological order, before liveness
// is computed): each Conv absorbs the chain of nodes after it that its
// epilogue can run. keep holds the slots of requested outputs. The
// absorbed nodes' steps go away; the fused step takes the place of the
// last of them, where every input it reads (a residual computed after
// the Conv, too) is available.
func fuse(steps []execStep, shapes [][]int, keep map[int]bool) []execStep {
	readers := readersOf(steps)
	only := func(slot, step int) bool { // slot's sole reader is step, once
		r := readers[slot]
		return !keep[slot] && len(r) == 1 && r[0] == step
	}
	removed := make([]bool, len(steps))
	for i := range steps {
		ck, ok := steps[i].op.k.(*convKernel)
		if !ok || removed[i] {
			continue
		}
		st := steps[i]
		st.in = slices.Clone(st.in)
		op := *st.op
		op.in = slices.Clone(op.in)
		epi := &epilogue{}
		at := i // where the fused step goes
		cur := st.out
		for !keep[cur] {
			r := readers[cur]
			if slices.ContainsFunc(r, func(j int) bool { return removed[j] }) {
				break // read by a node another Conv absorbed
			}
			if len(r) == 1 {
				nx := steps[r[0]]
				if f, relu, ok := unaryOf(nx); ok {
					epi.stages = append(epi.stages, epStage{f: f, vf: vecOf(nx), relu: relu, clamp: clampOf(nx)})
				} else if other, ok := residualOf(nx, cur, shapes); ok {
					epi.stages = append(epi.stages, epStage{add: len(st.in)})
					st.in = append(st.in, other)
					op.in = append(op.in, shapes[other])
				} else {
					break
				}
				op.opType += "+" + nx.op.opType
				removed[r[0]], at, cur = true, r[0], nx.out
				continue
			}
			if len(r) != 2 {
				break
			}
			// x*f(x): f reads cur, and Mul reads cur and f's output
			u, mul := steps[r[0]], steps[r[1]]
			ui, mi := r[0], r[1]
			if _, _, ok := unaryOf(u); !ok {
				u, mul, ui, mi = mul, u, mi, ui
			}
			f, _, ok := unaryOf(u)
			if !ok || !isSameShapeNary(mul, "Mul", shapes) || !only(u.out, mi) ||
				!(slices.Equal(mul.in, []int{cur, u.out}) || slices.Equal(mul.in, []int{u.out, cur})) {
				break
			}
			epi.stages = append(epi.stages, epStage{f: f, self: true, silu: u.op.opType == "Sigmoid" && vecOf(u) != nil})
			op.opType += "+" + u.op.opType + "+Mul"
			removed[ui], removed[mi] = true, true
			at, cur = mi, mul.out
		}
		if len(epi.stages) == 0 {
			continue
		}
		op.k = &fusedConv{convKernel: ck, epi: epi}
		op.out = shapes[cur]
		st.op, st.out = &op, cur
		removed[i] = true
		steps[at] = st
		removed[at] = false
	}
	return fuseMeans(fuseScale(dropRemoved(steps, removed), shapes, keep))
}

// fuseScale folds a per-channel Mul ([N,C,H,W] times [N,C,1,1], as
// squeeze-excitation scales a block) into the convolution that alone
// reads its output: the convolution scales its weights by the channel's
// factor for each image, which is far less work than rewriting the
// activations (Mul read and wrote the whole tensor).
func fuseScale(steps []execStep, shapes [][]int, keep map[int]bool) []execStep {
	readers := readersOf(steps)
	removed := make([]bool, len(steps))
	for j, st := range steps {
		nk, ok := st.op.k.(*naryKernel)
		if !ok || nk.op != "Mul" || !nk.plane || len(st.in) != 2 || keep[st.out] || len(readers[st.out]) != 1 {
			continue
		}
		full, small := st.in[nk.full], st.in[nk.small]
		ci := readers[st.out][0]
		cs := steps[ci]
		if len(cs.in) == 0 || cs.in[0] != st.out || slices.Contains(cs.in[1:], st.out) {
			continue
		}
		var ck *convKernel
		var epi epilogue
		switch k := cs.op.k.(type) {
		case *convKernel:
			ck = k
		case *fusedConv:
			ck, epi = k.convKernel, *k.epi
		}
		if ck == nil || ck.depthwise || epi.scale != 0 || onnx.NumElems(shapes[small]) != ck.n*ck.c || nk.inner != ck.g.h*ck.g.w {
			continue
		}
		// scaling (and packing) the weights for every image pays only
		// where they are much smaller than the image's activations: the
		// early, large planes, not the late 7x7 ones
		if 4*ck.m*ck.cg*ck.g.kh*ck.g.kw > ck.c*ck.g.h*ck.g.w {
			continue
		}
		op := *cs.op
		op.in = slices.Clone(op.in)
		op.in[0] = shapes[full]
		op.in = append(op.in, shapes[small])
		op.opType = "Mul+" + op.opType
		in := slices.Clone(cs.in)
		in[0] = full
		epi.scale = len(in)
		in = append(in, small)
		op.k = &fusedConv{convKernel: ck, epi: &epi}
		steps[ci].op, steps[ci].in = &op, in
		removed[j] = true
	}
	return dropRemoved(steps, removed)
}

// fuseMeans lets a depthwise convolution whose output a
// GlobalAveragePool reads (squeeze-excitation, in efficientnet and
// mobilenet_v3) compute each plane's mean as it finishes the plane, while
// it is in cache; the pool then copies them instead of reading the whole
// tensor again. The means are the same bits the pool computes.
func fuseMeans(steps []execStep) []execStep {
	readers := readersOf(steps)
	for i, st := range steps {
		var fc *fusedConv
		switch k := st.op.k.(type) {
		case *fusedConv:
			e := *k.epi
			fc = &fusedConv{convKernel: k.convKernel, epi: &e}
		case *convKernel:
			fc = &fusedConv{convKernel: k, epi: &epilogue{}}
		}
		if fc == nil || !fc.depthwise {
			continue
		}
		for _, j := range readers[st.out] {
			gk, ok := steps[j].op.k.(*globalPoolKernel)
			if !ok || gk.max || len(steps[j].in) != 1 || gk.planes != fc.n*fc.m || gk.size != fc.g.oh*fc.g.ow {
				continue
			}
			fc.epi.means = make([]float32, gk.planes)
			op := *st.op
			op.k = fc
			op.opType += "+mean"
			steps[i].op = &op
			pool := *steps[j].op
			pool.k = &poolOfMeans{globalPoolKernel: gk, means: fc.epi.means}
			steps[j].op = &pool
			break
		}
	}
	return steps
}

// poolOfMeans is a GlobalAveragePool whose means the convolution before
// it computed (fuseMeans).
type poolOfMeans struct {
	*globalPoolKernel
	means []float32
}

func (k *poolOfMeans) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	out := onnx.NewFloat(k.outShape, nil)
	return out, k.forwardInto(in, out)
}

func (k *poolOfMeans) forwardInto(_ []*onnx.Tensor, out *onnx.Tensor) error {
	copy(out.F, k.means)
	return nil
}

// readersOf maps each slot to the steps that read it (once per input).
func readersOf(steps []execStep) map[int][]int {
	readers := map[int][]int{}
	for i, st := range steps {
		for _, s := range st.in {
			readers[s] = append(readers[s], i)
		}
	}
	return readers
}

// dropRemoved returns steps without those marked removed, in order.
func dropRemoved(steps []execStep, removed []bool) []execStep {
	out := steps[:0]
	for i, st := range steps {
		if !removed[i] {
			out = append(out, st)
		}
	}
	return out
}

// unaryOf returns the function of an elementwise activation step.
func unaryOf(st execStep) (f func(float32) float32, relu, ok bool) {
	k, ok := st.op.k.(*unaryKernel)
	if !ok || len(st.in) != 1 {
		return nil, false, false
	}
	return k.f, st.op.opType == "Relu", true
}

// clampOf returns the bounds of st's activation when it is a clamp.
func clampOf(st execStep) *[2]float32 {
	if k, ok := st.op.k.(*unaryKernel); ok {
		return k.clamp
	}
	return nil
}

// vecOf returns the slice form of an elementwise activation step's
// function, or nil.
func vecOf(st execStep) func(dst, x []float32) {
	if k, ok := st.op.k.(*unaryKernel); ok {
		return k.vf
	}
	return nil
}

// residualOf reports whether st is an Add of cur and another tensor of
// the same shape, and returns the other's slot.
func residualOf(st execStep, cur int, shapes [][]int) (int, bool) {
	if !isSameShapeNary(st, "Add", shapes) {
		return 0, false
	}
	switch {
	case st.in[0] == cur && st.in[1] != cur:
		return st.in[1], true
	case st.in[1] == cur && st.in[0] != cur:
		return st.in[0], true
	}
	return 0, false
}

// isSameShapeNary reports whether st is the binary elementwise op op
// over two inputs of its output's shape.
func isSameShapeNary(st execStep, op string, shapes [][]int) bool {
	k, ok := st.op.k.(*naryKernel)
	if !ok || k.op != op || len(st.in) != 2 {
		return false
	}
	for _, s := range st.in {
		if !slices.Equal(shapes[s], k.out) {
			return false
		}
	}
	return true
}
