package graph

import (
	"fmt"
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
)

// Shape and data-movement ops. Shapes are fixed when a graph is built, so
// every op here that only looks at shapes (Shape, Size, ConstantOfShape,
// Range, ...) folds to a constant, and every index computation (Reshape
// targets, Slice bounds, Gather indices, Pad amounts) happens at build
// time. The data-movement kernels work on float32 and int64 tensors (the
// latter for folding shape subgraphs) and have float32 backwards.
//
// Axes may be negative at every opset graft reads, even where an early
// opset of the op only allowed non-negative ones: such a model is invalid
// at that opset and the meaning of the axis is not in doubt.

var shapeOps = map[string]opDef{
	"Reshape":         {build: buildReshape, grad: true, passThrough: true},
	"Flatten":         {build: buildFlatten, grad: true, passThrough: true},
	"Squeeze":         {build: buildSqueeze, grad: true, passThrough: true},
	"Unsqueeze":       {build: buildUnsqueeze, grad: true},
	"Transpose":       {build: buildTranspose, grad: true},
	"Concat":          {build: buildConcat, grad: true},
	"Split":           {build: buildSplit, grad: true},
	"Slice":           {build: buildSlice, grad: true},
	"Gather":          {build: buildGather, grad: true},
	"Pad":             {build: buildPad, grad: true},
	"Expand":          {build: buildExpand, grad: true, since: 8},
	"Tile":            {build: buildTile, grad: true},
	"Identity":        {build: buildIdentity, grad: true, passThrough: true},
	"Dropout":         {build: buildDropout, train: buildDropoutTraining, grad: true, passThrough: true, optionalOutputs: []int{1}},
	"Cast":            {build: buildCast, grad: true},
	"Constant":        {build: buildConstant},
	"ConstantOfShape": {build: buildConstantOfShape, since: 9},
	"Shape":           {build: buildShape},
	"Size":            {build: buildSize},
	"Range":           {build: buildRange, since: 11},
}

// ---------------------------------------------------------------------
// Helpers

// rowMajorStrides returns the element strides of a row-major tensor.
func rowMajorStrides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// emptyTensor returns a tensor of the given shape (which has a zero
// dimension) and type.
func emptyTensor(shape []int, dtype onnx.DType) *onnx.Tensor {
	if dtype == onnx.Int64 {
		return onnx.NewInt(shape, nil)
	}
	return onnx.NewFloat(shape, nil)
}

// copyAs returns a copy of t with the given shape (same element count).
func copyAs(t *onnx.Tensor, shape []int) *onnx.Tensor {
	if t.DType == onnx.Int64 {
		return onnx.NewInt(shape, append([]int64(nil), t.I...))
	}
	return onnx.NewFloat(shape, append([]float32(nil), t.F...))
}

// applyMove computes output i with a data-movement kernel. An output
// without elements is known whatever the input holds, so it becomes a
// constant (gorgonia cannot hold tensors without elements).
func (c *nodeCtx) applyMove(i int, k kernel, shape []int, dtype onnx.DType, inputs ...int) error {
	if onnx.NumElems(shape) == 0 {
		c.setConst(i, emptyTensor(shape, dtype))
		return nil
	}
	return c.apply(i, k, shape, dtype, inputs...)
}

// passThrough makes output i the value v unchanged (Identity, Dropout at
// inference, no-op reshapes and slices). A trainable weight keeps its
// node, so its gradient still reaches it and it is never folded.
func (c *nodeCtx) passThrough(i int, v *value) error {
	name := c.outName(i)
	if name == "" {
		return nil
	}
	if onnx.NumElems(v.shape) == 0 {
		c.setConst(i, emptyTensor(v.shape, v.dtype))
		return nil
	}
	trainable := v.param && !c.b.frozen[v.name]
	if trainable {
		if _, err := c.b.nodeOf(v); err != nil {
			return err
		}
	}
	c.alias(i, v)
	nv := c.b.vals[name]
	if nv == nil {
		return nil
	}
	if trainable {
		nv.param = true // not foldable; nodeOf returns v's node
	}
	if nv.node != nil {
		c.b.m.nodes[name] = nv.node
	}
	return nil
}

// maxMoveElems bounds the elements of a tensor whose size a model sets
// directly (ConstantOfShape, Range, Expand, Tile, Pad): 1 GiB of float32.
const maxMoveElems = 1 << 28

// checkSize rejects shapes with negative dimensions or more than
// maxMoveElems elements (without overflowing on the way).
func (c *nodeCtx) checkSize(shape []int) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return c.errorf("shape %v has a negative dimension", shape)
		}
		if d == 0 {
			return nil
		}
	}
	for _, d := range shape {
		if n > maxMoveElems/d {
			return c.errorf("shape %v has more than %d elements", shape, maxMoveElems)
		}
		n *= d
	}
	return nil
}

// reshapeOrPass makes output 0 the input with a new shape.
func (c *nodeCtx) reshapeOrPass(x *value, out []int) error {
	if slices.Equal(out, x.shape) {
		return c.passThrough(0, x)
	}
	return c.applyMove(0, &reshapeKernel{in: slices.Clone(x.shape), out: slices.Clone(out)}, out, x.dtype, 0)
}

// axesInput reads an axes list: the attribute before opset 13, the
// optional constant input 1 from opset 13 on.
func (c *nodeCtx) axesInput() ([]int, bool, error) {
	if c.opset < 13 {
		if !c.has("axes") {
			return nil, false, nil
		}
		a, err := c.attrInts("axes", nil)
		return a, true, err
	}
	return c.constInts(1)
}

// ---------------------------------------------------------------------
// Kernels

// reshapeKernel changes only the shape. It copies the data: gorgonia's
// tape machine reuses the memory of a dead node's value for later
// results (compile.go: prealloc and unsafe in-place ops), so an output
// sharing its input's slice could have a live input overwritten.
type reshapeKernel struct{ in, out []int }

func (k *reshapeKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	return copyAs(in[0], k.out), nil
}

// forwardInto copies the data, unless the executor handed the input's
// own buffer (inPlace): then there is nothing to do.
func (k *reshapeKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	if in[0].DType != onnx.Float32 {
		return errIntUnsupported
	}
	if !sharesData(in[0].F, out.F) {
		copy(out.F, in[0].F)
	}
	return nil
}

func (k *reshapeKernel) inPlace() int { return 0 }

func (k *reshapeKernel) backward(_ int, _ []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	return copyAs(dy, k.in), nil
}

// moveKernel copies elements of its input to its output by an index
// rule separable per axis. The output, viewed with shape view (same
// element count as out), takes at view coordinates (o_0, ..., o_k) the
// input element at offset off[0][o_0] + ... + off[k][o_k], or the fill
// value when any of those is negative. Transpose, Slice, Split, Gather,
// Pad (all modes), Expand and Tile are all of this form. The backward
// pass scatters dy back, adding where input elements were used several
// times.
type moveKernel struct {
	in, out []int   // logical input and output shapes
	view    []int   // the output as iterated; rank >= 1
	off     [][]int // per view axis and coordinate: input offset, or -1
	fillF   float32 // fill value for float tensors
	fillI   int64   // fill value for integer tensors
	fillIn  bool    // the fill value is in[1], a one-element tensor
	contig  bool    // off of the last axis is consecutive: rows copy whole
}

func newMove(in, out, view []int, off [][]int) *moveKernel {
	if len(view) == 0 {
		view, off = []int{1}, [][]int{{0}}
	}
	k := &moveKernel{in: slices.Clone(in), out: slices.Clone(out), view: view, off: off}
	last := off[len(off)-1]
	k.contig = len(last) > 0 && last[0] >= 0
	for j, v := range last {
		if v != last[0]+j {
			k.contig = false
			break
		}
	}
	return k
}

// rowBase returns the input offset of the row at coordinates coord of the
// view's leading axes, or false when the row is fill.
func (k *moveKernel) rowBase(coord []int) (int, bool) {
	base := 0
	for d, o := range coord {
		v := k.off[d][o]
		if v < 0 {
			return 0, false
		}
		base += v
	}
	return base, true
}

// next advances coord over the view's leading axes.
func (k *moveKernel) next(coord []int) {
	for d := len(coord) - 1; d >= 0; d-- {
		coord[d]++
		if coord[d] < k.view[d] {
			return
		}
		coord[d] = 0
	}
}

func moveForward[T float32 | int64](k *moveKernel, src, dst []T, fill T) {
	last := k.off[len(k.off)-1]
	n := len(last)
	coord := make([]int, len(k.view)-1)
	for o := 0; o < len(dst); o += n {
		row := dst[o : o+n]
		base, ok := k.rowBase(coord)
		switch {
		case !ok:
			for j := range row {
				row[j] = fill
			}
		case k.contig:
			copy(row, src[base+last[0]:])
		default:
			for j, v := range last {
				if v < 0 {
					row[j] = fill
				} else {
					row[j] = src[base+v]
				}
			}
		}
		k.next(coord)
	}
}

func (k *moveKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if x.DType == onnx.Int64 {
		out := onnx.NewInt(k.out, nil)
		fill := k.fillI
		if k.fillIn {
			fill = scalarInt(in[1])
		}
		moveForward(k, x.I, out.I, fill)
		return out, nil
	}
	out := onnx.NewFloat(k.out, nil)
	fill := k.fillF
	if k.fillIn {
		fill = scalarFloat(in[1])
	}
	moveForward(k, x.F, out.F, fill)
	return out, nil
}

func (k *moveKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	last := k.off[len(k.off)-1]
	n := len(last)
	coord := make([]int, len(k.view)-1)
	if i == 1 { // d/d fill value: the sum of dy over the filled elements
		var s float64
		for o := 0; o < len(dy.F); o += n {
			row := dy.F[o : o+n]
			if _, ok := k.rowBase(coord); !ok {
				for _, d := range row {
					s += float64(d)
				}
			} else if !k.contig {
				for j, v := range last {
					if v < 0 {
						s += float64(row[j])
					}
				}
			}
			k.next(coord)
		}
		return onnx.NewFloat(in[1].Shape, []float32{float32(s)}), nil
	}
	g := onnx.NewFloat(k.in, nil)
	for o := 0; o < len(dy.F); o += n {
		row := dy.F[o : o+n]
		if base, ok := k.rowBase(coord); ok {
			for j, v := range last {
				if v >= 0 {
					g.F[base+v] += row[j]
				}
			}
		}
		k.next(coord)
	}
	return g, nil
}

func scalarFloat(t *onnx.Tensor) float32 {
	if t.DType == onnx.Int64 {
		return float32(t.I[0])
	}
	return t.F[0]
}

func scalarInt(t *onnx.Tensor) int64 {
	if t.DType == onnx.Int64 {
		return t.I[0]
	}
	return int64(t.F[0])
}

// identityOffsets returns o*stride for o in [0, n).
func identityOffsets(n, stride int) []int {
	off := make([]int, n)
	for o := range off {
		off[o] = o * stride
	}
	return off
}

// newTranspose: output axis d is input axis perm[d].
func newTranspose(in []int, perm []int) *moveKernel {
	st := rowMajorStrides(in)
	out := make([]int, len(in))
	off := make([][]int, len(in))
	for d, p := range perm {
		out[d] = in[p]
		off[d] = identityOffsets(in[p], st[p])
	}
	return newMove(in, out, out, off)
}

// newSliceMove takes count[d] elements along each axis d, from start[d]
// by step[d] (which may be negative).
func newSliceMove(in, start, step, count []int) *moveKernel {
	st := rowMajorStrides(in)
	off := make([][]int, len(in))
	for d := range in {
		off[d] = make([]int, count[d])
		for o := range off[d] {
			off[d][o] = (start[d] + o*step[d]) * st[d]
		}
	}
	return newMove(in, count, slices.Clone(count), off)
}

// newGatherMove takes, along axis, the (non-negative) indices idx; the
// output's shape puts idxShape in place of that axis.
func newGatherMove(in []int, axis int, idx []int, idxShape []int) *moveKernel {
	st := rowMajorStrides(in)
	view := slices.Clone(in)
	view[axis] = len(idx)
	off := make([][]int, len(in))
	for d := range in {
		if d == axis {
			off[d] = make([]int, len(idx))
			for j, v := range idx {
				off[d][j] = v * st[d]
			}
		} else {
			off[d] = identityOffsets(in[d], st[d])
		}
	}
	out := append(append(slices.Clone(in[:axis]), idxShape...), in[axis+1:]...)
	return newMove(in, out, view, off)
}

// newExpandMove broadcasts in to out (numpy rules, out already checked).
func newExpandMove(in, out []int) *moveKernel {
	st := rowMajorStrides(in)
	lead := len(out) - len(in)
	off := make([][]int, len(out))
	for d := range out {
		off[d] = make([]int, out[d])
		if d < lead || in[d-lead] == 1 {
			continue // every coordinate reads offset 0 along this axis
		}
		for o := range off[d] {
			off[d][o] = o * st[d-lead]
		}
	}
	return newMove(in, out, slices.Clone(out), off)
}

// newTileMove repeats in reps[d] times along each axis d. The output is
// viewed as [reps[0], in[0], reps[1], in[1], ...].
func newTileMove(in, reps []int) *moveKernel {
	st := rowMajorStrides(in)
	out := make([]int, len(in))
	var view []int
	var off [][]int
	for d := range in {
		out[d] = in[d] * reps[d]
		view = append(view, reps[d], in[d])
		off = append(off, make([]int, reps[d]), identityOffsets(in[d], st[d]))
	}
	return newMove(in, out, view, off)
}

// newPadMove pads (or crops, for negative amounts) each axis d with
// begin[d] and end[d] elements; mode is constant, reflect or edge.
func newPadMove(in, begin, end []int, mode string) *moveKernel {
	st := rowMajorStrides(in)
	out := make([]int, len(in))
	off := make([][]int, len(in))
	for d, n := range in {
		out[d] = n + begin[d] + end[d]
		off[d] = make([]int, out[d])
		for o := range off[d] {
			i := o - begin[d]
			if i < 0 || i >= n {
				switch mode {
				case "edge":
					i = min(max(i, 0), n-1)
				case "wrap":
					i = ((i % n) + n) % n
				case "reflect":
					if n == 1 {
						i = 0
					} else {
						p := 2 * (n - 1)
						i = ((i % p) + p) % p
						if i >= n {
							i = p - i
						}
					}
				default:
					off[d][o] = -1
					continue
				}
			}
			off[d][o] = i * st[d]
		}
	}
	return newMove(in, out, slices.Clone(out), off)
}

// concatKernel joins its inputs along axis.
type concatKernel struct {
	in   [][]int
	out  []int
	axis int
}

func (k *concatKernel) outer() (pre, post int) {
	return onnx.NumElems(k.out[:k.axis]), onnx.NumElems(k.out[k.axis+1:])
}

func concatForward[T float32 | int64](k *concatKernel, srcs [][]T, dst []T) {
	pre, post := k.outer()
	pos := 0
	for p := 0; p < pre; p++ {
		for j, src := range srcs {
			n := k.in[j][k.axis] * post
			copy(dst[pos:pos+n], src[p*n:(p+1)*n])
			pos += n
		}
	}
}

func (k *concatKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType == onnx.Int64 {
		srcs := make([][]int64, len(in))
		for j, t := range in {
			if t.DType != onnx.Int64 {
				return nil, constError("Concat inputs mix int64 and float32")
			}
			srcs[j] = t.I
		}
		out := onnx.NewInt(k.out, nil)
		concatForward(k, srcs, out.I)
		return out, nil
	}
	out := onnx.NewFloat(k.out, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (k *concatKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	srcs := make([][]float32, len(in))
	for j, t := range in {
		if t.DType != onnx.Float32 {
			return constError("Concat inputs mix float32 and int64")
		}
		srcs[j] = t.F
	}
	concatForward(k, srcs, out.F)
	return nil
}

func (k *concatKernel) backward(i int, _ []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	pre, post := k.outer()
	g := onnx.NewFloat(k.in[i], nil)
	row := k.out[k.axis] * post
	at := 0
	for j := 0; j < i; j++ {
		at += k.in[j][k.axis] * post
	}
	n := k.in[i][k.axis] * post
	for p := 0; p < pre; p++ {
		copy(g.F[p*n:(p+1)*n], dy.F[p*row+at:])
	}
	return g, nil
}

// castKernel converts between graft's two element types. It only runs on
// constants (integers exist only at build time), so it has no backward.
type castKernel struct {
	to      onnx.DType
	boolean bool // ONNX BOOL: nonzero becomes 1
	carry   bool // to an integer type, held as float32 (a carried value)
}

func (k *castKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if k.carry {
		out := onnx.NewFloat(x.Shape, nil)
		for i, f := range x.F {
			switch {
			case k.boolean && f != 0:
				out.F[i] = 1
			case !k.boolean:
				out.F[i] = float32(math.Trunc(float64(f)))
			}
		}
		return out, nil
	}
	if k.to == onnx.Int64 {
		out := onnx.NewInt(x.Shape, nil)
		for i := range out.I {
			var v int64
			if x.DType == onnx.Int64 {
				v = x.I[i]
				if k.boolean && v != 0 {
					v = 1
				}
			} else {
				f := x.F[i]
				if k.boolean {
					if f != 0 {
						v = 1
					}
				} else {
					v = int64(f) // truncates toward zero, as C does
				}
			}
			out.I[i] = v
		}
		return out, nil
	}
	out := onnx.NewFloat(x.Shape, nil)
	for i := range out.F {
		if x.DType == onnx.Int64 {
			out.F[i] = float32(x.I[i])
		} else {
			out.F[i] = x.F[i]
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------
// Converters: reshapes

// reshapeTarget resolves a Reshape shape spec against the input shape: 0
// copies the input's dimension (unless allowZero), -1 is inferred.
func reshapeTarget(in, spec []int, allowZero bool) ([]int, error) {
	out := make([]int, len(spec))
	infer := -1
	known := 1
	for i, d := range spec {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, constError("the shape has more than one -1")
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v: dimension %d is 0 (copy the input's), but the input %v has rank %d", spec, i, in, len(in))
			}
			d = in[i]
		case d < 0:
			return nil, fmt.Errorf("shape %v has a negative dimension %d", spec, d)
		}
		out[i] = d
		known *= d
	}
	n := onnx.NumElems(in)
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, n, spec)
		}
		out[infer] = n / known
	} else if known != n {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v (%d elements)", in, n, spec, known)
	}
	return out, nil
}

func buildReshape(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	spec, ok, err := c.constInts(1)
	if err != nil {
		return err
	}
	if !ok {
		return c.errorf("input 1 (shape) is required")
	}
	allowZero := 0
	if c.opset >= 14 {
		if allowZero, err = c.attrInt("allowzero", 0); err != nil {
			return err
		}
	}
	if allowZero != 0 && slices.Contains(spec, 0) && slices.Contains(spec, -1) {
		return c.errorf("shape %v has both 0 and -1 with allowzero=1", spec)
	}
	out, err := reshapeTarget(x.shape, spec, allowZero != 0)
	if err != nil {
		return c.errorf("%v", err)
	}
	return c.reshapeOrPass(x, out)
}

func buildFlatten(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	r := len(x.shape)
	axis, err := c.attrInt("axis", 1)
	if err != nil {
		return err
	}
	if axis < -r || axis > r {
		return c.errorf("axis %d is out of range for rank %d", axis, r)
	}
	if axis < 0 {
		axis += r
	}
	out := []int{onnx.NumElems(x.shape[:axis]), onnx.NumElems(x.shape[axis:])}
	return c.reshapeOrPass(x, out)
}

func buildSqueeze(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	axes, _, err := c.axesInput()
	if err != nil {
		return err
	}
	r := len(x.shape)
	drop := make([]bool, r)
	if len(axes) == 0 { // no axes: every dimension of size 1 (as ONNX Runtime does for an empty list too)
		for d, n := range x.shape {
			drop[d] = n == 1
		}
	}
	for _, a := range axes {
		d, err := c.normAxis(a, r)
		if err != nil {
			return err
		}
		if x.shape[d] != 1 {
			return c.errorf("cannot squeeze axis %d of shape %v: its size is not 1", a, x.shape)
		}
		drop[d] = true
	}
	out := []int{}
	for d, n := range x.shape {
		if !drop[d] {
			out = append(out, n)
		}
	}
	return c.reshapeOrPass(x, out)
}

func buildUnsqueeze(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	axes, ok, err := c.axesInput()
	if err != nil {
		return err
	}
	if !ok {
		return c.errorf("axes are required")
	}
	r := len(x.shape) + len(axes)
	ones := make([]bool, r)
	for _, a := range axes {
		d, err := c.normAxis(a, r)
		if err != nil {
			return err
		}
		if ones[d] {
			return c.errorf("axes %v repeat axis %d", axes, a)
		}
		ones[d] = true
	}
	out := make([]int, 0, r)
	rest := x.shape
	for d := range r {
		if ones[d] {
			out = append(out, 1)
		} else {
			out = append(out, rest[0])
			rest = rest[1:]
		}
	}
	return c.reshapeOrPass(x, out)
}

// ---------------------------------------------------------------------
// Converters: data movement

func buildTranspose(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	r := len(x.shape)
	def := make([]int, r)
	for d := range def {
		def[d] = r - 1 - d
	}
	perm, err := c.attrInts("perm", def)
	if err != nil {
		return err
	}
	if len(perm) != r {
		return c.errorf("perm %v does not match rank %d", perm, r)
	}
	seen := make([]bool, r)
	identity := true
	for d, p := range perm {
		if p < 0 || p >= r || seen[p] {
			return c.errorf("perm %v is not a permutation of 0..%d", perm, r-1)
		}
		seen[p] = true
		identity = identity && p == d
	}
	if identity {
		return c.passThrough(0, x)
	}
	k := newTranspose(x.shape, perm)
	return c.applyMove(0, k, k.out, x.dtype, 0)
}

func buildConcat(c *nodeCtx) error {
	if !c.has("axis") {
		return c.errorf("attribute \"axis\" is required")
	}
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	if len(c.in) == 0 {
		return c.errorf("needs at least one input")
	}
	var first *value
	var out []int
	for i := range c.in {
		v, err := c.input(i)
		if err != nil {
			return err
		}
		if first == nil {
			first = v
			if len(v.shape) == 0 {
				return c.errorf("cannot concatenate scalars")
			}
			if axis, err = c.normAxis(axis, len(v.shape)); err != nil {
				return err
			}
			out = slices.Clone(v.shape)
			continue
		}
		if v.dtype != first.dtype {
			return c.errorf("inputs mix %s and %s", first.dtype, v.dtype)
		}
		if len(v.shape) != len(out) {
			return c.errorf("input %d has shape %v, input 0 %v: ranks differ", i, v.shape, first.shape)
		}
		for d := range out {
			if d != axis && v.shape[d] != out[d] {
				return c.errorf("input %d has shape %v, input 0 %v: they differ off axis %d", i, v.shape, first.shape, axis)
			}
		}
		out[axis] += v.shape[axis]
	}
	var idx []int
	var shapes [][]int
	for i, v := range c.in {
		if onnx.NumElems(v.shape) > 0 { // empty inputs add nothing
			idx = append(idx, i)
			shapes = append(shapes, slices.Clone(v.shape))
		}
	}
	if len(idx) == 1 && onnx.NumElems(out) > 0 {
		return c.passThrough(0, c.in[idx[0]])
	}
	return c.applyMove(0, &concatKernel{in: shapes, out: out, axis: axis}, out, first.dtype, idx...)
}

func buildSplit(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	if axis, err = c.normAxis(axis, len(x.shape)); err != nil {
		return err
	}
	var split []int
	if c.opset < 13 {
		split, err = c.attrInts("split", nil)
	} else {
		split, _, err = c.constInts(1)
	}
	if err != nil {
		return err
	}
	if len(x.shape) == 0 {
		return c.errorf("cannot split a scalar")
	}
	n := len(c.n.Output)
	dim := x.shape[axis]
	if c.opset >= 18 {
		if split, err = splitParts18(c, split, dim, n); err != nil {
			return err
		}
	}
	if len(split) == 0 {
		if n == 0 || dim%n != 0 {
			return c.errorf("cannot split axis %d of shape %v into %d equal parts", axis, x.shape, n)
		}
		split = make([]int, n)
		for j := range split {
			split[j] = dim / n
		}
	}
	if len(split) != n {
		return c.errorf("split %v has %d parts for %d outputs", split, len(split), n)
	}
	sum := 0
	for _, s := range split {
		if s < 0 {
			return c.errorf("split %v has a negative part", split)
		}
		sum += s
	}
	if sum != dim {
		return c.errorf("split %v sums to %d, axis %d of shape %v has %d", split, sum, axis, x.shape, dim)
	}
	start := make([]int, len(x.shape))
	step := make([]int, len(x.shape))
	for d := range step {
		step[d] = 1
	}
	for j, s := range split {
		count := slices.Clone(x.shape)
		count[axis] = s
		if c.outName(j) != "" {
			if s == dim {
				if err := c.passThrough(j, x); err != nil {
					return err
				}
			} else if err := c.applyMove(j, newSliceMove(x.shape, slices.Clone(start), step, count), count, x.dtype, 0); err != nil {
				return err
			}
		}
		start[axis] += s
	}
	return nil
}

// splitParts18 applies Split-18's rule: the split input, or else the
// num_outputs attribute, which cuts dim into parts of ceil(dim/n) and a
// smaller last part.
func splitParts18(c *nodeCtx, split []int, dim, outputs int) ([]int, error) {
	if !c.has("num_outputs") {
		if !c.optional(1) {
			return nil, c.errorf("Split at opset %d needs the split input or the num_outputs attribute", c.opset)
		}
		return split, nil
	}
	if c.optional(1) {
		return nil, c.errorf("give the split input or the num_outputs attribute, not both")
	}
	n, err := c.attrInt("num_outputs", 0)
	if err != nil {
		return nil, err
	}
	if n < 1 || n != outputs {
		return nil, c.errorf("num_outputs is %d; the node has %d outputs", n, outputs)
	}
	chunk := (dim + n - 1) / n
	parts := make([]int, n)
	for j := range parts {
		parts[j] = chunk
	}
	parts[n-1] = dim - chunk*(n-1)
	if parts[n-1] < 0 {
		return nil, c.errorf("axis of length %d cannot be split into %d parts of %d", dim, n, chunk)
	}
	return parts, nil
}

// sliceBounds resolves one axis of a Slice: the first index and the
// number of elements, following ONNX's clamping rules.
func sliceBounds(n, start, end, step int) (first, count int) {
	if n == 0 {
		return 0, 0
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start = min(max(start, 0), n)
		end = min(max(end, 0), n)
		if end > start {
			count = (end - start + step - 1) / step
		}
	} else {
		start = min(max(start, 0), n-1)
		end = min(max(end, -1), n-1)
		if start > end {
			count = (start - end - step - 1) / -step
		}
	}
	return start, count
}

func buildSlice(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	var starts, ends, axes, steps []int
	if c.opset < 10 {
		if !c.has("starts") || !c.has("ends") {
			return c.errorf("attributes \"starts\" and \"ends\" are required")
		}
		if starts, err = c.attrInts("starts", nil); err != nil {
			return err
		}
		if ends, err = c.attrInts("ends", nil); err != nil {
			return err
		}
		if axes, err = c.attrInts("axes", nil); err != nil {
			return err
		}
	} else {
		var ok1, ok2 bool
		if starts, ok1, err = c.constInts(1); err != nil {
			return err
		}
		if ends, ok2, err = c.constInts(2); err != nil {
			return err
		}
		if !ok1 || !ok2 {
			return c.errorf("inputs 1 (starts) and 2 (ends) are required")
		}
		var ok3, ok4 bool
		if axes, ok3, err = c.constInts(3); err != nil {
			return err
		}
		if steps, ok4, err = c.constInts(4); err != nil {
			return err
		}
		if !ok3 {
			axes = nil
		}
		if !ok4 {
			steps = nil
		}
	}
	r := len(x.shape)
	if axes == nil {
		axes = make([]int, len(starts))
		for i := range axes {
			axes[i] = i
		}
	}
	if steps == nil {
		steps = make([]int, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return c.errorf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	if r == 0 && len(axes) > 0 {
		return c.errorf("axes %v: a scalar cannot be sliced", axes)
	}
	first := make([]int, r)
	step := make([]int, r)
	count := slices.Clone(x.shape)
	for d := range step {
		step[d] = 1
	}
	seen := make([]bool, r)
	for i, a := range axes {
		d, err := c.normAxis(a, r)
		if err != nil {
			return err
		}
		if seen[d] {
			return c.errorf("axes %v repeat axis %d", axes, a)
		}
		seen[d] = true
		if steps[i] == 0 {
			return c.errorf("step 0 on axis %d", a)
		}
		step[d] = steps[i]
		first[d], count[d] = sliceBounds(x.shape[d], starts[i], ends[i], steps[i])
	}
	if slices.Equal(count, x.shape) && !slices.ContainsFunc(step, func(s int) bool { return s != 1 }) {
		return c.passThrough(0, x)
	}
	return c.applyMove(0, newSliceMove(x.shape, first, step, count), count, x.dtype, 0)
}

func buildGather(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	idx, err := c.constInput(1)
	if err != nil {
		return err
	}
	if idx.DType != onnx.Int64 {
		return c.errorf("indices must be an integer tensor")
	}
	r := len(x.shape)
	if r == 0 {
		return c.errorf("cannot gather from a scalar")
	}
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	if axis, err = c.normAxis(axis, r); err != nil {
		return err
	}
	n := x.shape[axis]
	ids := make([]int, len(idx.I))
	for j, v := range idx.I {
		if v < -int64(n) || v >= int64(n) {
			return c.errorf("index %d is out of range for axis %d of shape %v", v, axis, x.shape)
		}
		if v < 0 {
			v += int64(n)
		}
		ids[j] = int(v)
	}
	k := newGatherMove(x.shape, axis, ids, idx.Shape)
	return c.applyMove(0, k, k.out, x.dtype, 0)
}

func buildPad(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	r := len(x.shape)
	mode, err := c.attrString("mode", "constant")
	if err != nil {
		return err
	}
	switch {
	case mode == "wrap" && c.opset < 19:
		return c.errorf("mode \"wrap\" is part of Pad from opset 19 (this model imports opset %d)", c.opset)
	case mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap":
		return c.errorf("mode %q is not supported (constant, reflect, edge, wrap)", mode)
	}
	var pads []int
	var fill float32
	fillInput := false
	if c.opset < 11 {
		if !c.has("pads") {
			return c.errorf("attribute \"pads\" is required")
		}
		if pads, err = c.attrInts("pads", nil); err != nil {
			return err
		}
		if fill, err = c.attrFloat("value", 0); err != nil {
			return err
		}
	} else {
		var ok bool
		if pads, ok, err = c.constInts(1); err != nil {
			return err
		}
		if !ok {
			return c.errorf("input 1 (pads) is required")
		}
		if mode == "constant" && c.optional(2) {
			v := c.in[2]
			if onnx.NumElems(v.shape) != 1 {
				return c.errorf("constant_value has shape %v; it must be a scalar", v.shape)
			}
			if v.t == nil || v.param && !c.b.frozen[v.name] {
				fillInput = true
			} else {
				fill = scalarFloat(v.t)
			}
		}
	}
	if c.opset >= 18 && c.optional(3) {
		if pads, err = padsForAxes(c, pads, r); err != nil {
			return err
		}
	}
	if len(pads) != 2*r {
		return c.errorf("pads %v: want %d values for rank %d", pads, 2*r, r)
	}
	begin, end := pads[:r], pads[r:]
	zero := true
	padded := make([]int, r)
	for d, n := range x.shape {
		if max(begin[d], end[d]) > maxMoveElems {
			return c.errorf("pads %v are too large", pads)
		}
		padded[d] = n + begin[d] + end[d]
		if padded[d] < 0 || min(begin[d], end[d]) < -n {
			return c.errorf("pads %v crop axis %d of shape %v below zero", pads, d, x.shape)
		}
		if mode != "constant" && n == 0 && (begin[d] > 0 || end[d] > 0) {
			return c.errorf("%s padding of an empty axis %d", mode, d)
		}
		if mode == "wrap" && min(begin[d], end[d]) < 0 && max(begin[d], end[d]) > 0 {
			return c.errorf("wrap padding that crops one side of axis %d and pads the other (pads %v) is not supported", d, pads)
		}
		zero = zero && begin[d] == 0 && end[d] == 0
	}
	if err := c.checkSize(padded); err != nil {
		return err
	}
	if zero {
		return c.passThrough(0, x)
	}
	k := newPadMove(x.shape, begin, end, mode)
	if fillInput {
		k.fillIn = true
		return c.applyMove(0, k, k.out, x.dtype, 0, 2)
	}
	if mode == "constant" && c.opset >= 11 && c.optional(2) {
		k.fillI = scalarInt(c.in[2].t)
	} else {
		k.fillI = int64(fill)
	}
	k.fillF = fill
	return c.applyMove(0, k, k.out, x.dtype, 0)
}

// padsForAxes expands Pad-18's pads for the axes input (begin values
// then end values, one per listed axis) to pads for every axis of a
// rank-r input.
func padsForAxes(c *nodeCtx, pads []int, r int) ([]int, error) {
	axes, _, err := c.constInts(3)
	if err != nil {
		return nil, err
	}
	if len(pads) != 2*len(axes) {
		return nil, c.errorf("pads %v: want %d values for the %d axes %v", pads, 2*len(axes), len(axes), axes)
	}
	if r == 0 && len(axes) > 0 {
		return nil, c.errorf("axes %v: a scalar has no axes to pad", axes)
	}
	full := make([]int, 2*r)
	seen := make([]bool, r)
	for j, a := range axes {
		d, err := c.normAxis(a, r)
		if err != nil {
			return nil, err
		}
		if seen[d] {
			return nil, c.errorf("axis %d is given twice in axes %v", a, axes)
		}
		seen[d] = true
		full[d], full[r+d] = pads[j], pads[len(axes)+j]
	}
	return full, nil
}

func buildExpand(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	shape, ok, err := c.constInts(1)
	if err != nil {
		return err
	}
	if !ok {
		return c.errorf("input 1 (shape) is required")
	}
	out, ok := broadcastShape(x.shape, shape)
	if !ok {
		return c.errorf("shape %v does not broadcast to %v", x.shape, shape)
	}
	if err := c.checkSize(out); err != nil {
		return err
	}
	if slices.Equal(out, x.shape) {
		return c.passThrough(0, x)
	}
	return c.applyMove(0, newExpandMove(x.shape, out), out, x.dtype, 0)
}

func buildTile(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	reps, ok, err := c.constInts(1)
	if err != nil {
		return err
	}
	if !ok {
		return c.errorf("input 1 (repeats) is required")
	}
	if len(reps) != len(x.shape) {
		return c.errorf("repeats %v do not match rank %d", reps, len(x.shape))
	}
	ones := true
	for _, n := range reps {
		if n < 0 {
			return c.errorf("repeats %v has a negative count", reps)
		}
		ones = ones && n == 1
	}
	if ones {
		return c.passThrough(0, x)
	}
	if err := c.checkSize(append(slices.Clone(reps), x.shape...)); err != nil {
		return err
	}
	k := newTileMove(x.shape, reps)
	return c.applyMove(0, k, k.out, x.dtype, 0)
}

// ---------------------------------------------------------------------
// Converters: pass-through and type

func buildIdentity(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	return c.passThrough(0, x)
}

// buildDropout computes inference-mode dropout: the identity, with an
// all-true mask when one is asked for.
func buildDropout(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if c.opset >= 12 && c.optional(2) {
		tm, err := c.constInput(2)
		if err != nil {
			return err
		}
		if tm.Len() > 0 && scalarInt(tm) != 0 {
			ratio := float32(0.5)
			if c.optional(1) {
				rt, err := c.constInput(1)
				if err != nil {
					return err
				}
				if rt.Len() > 0 {
					ratio = scalarFloat(rt)
				}
			}
			if ratio != 0 {
				return c.errorf("training_mode is true: random dropout is not supported (graft computes Dropout as at inference); export the model in eval mode")
			}
		}
	}
	if err := c.passThrough(0, x); err != nil {
		return err
	}
	if c.outName(1) != "" {
		mask := onnx.NewInt(x.shape, nil)
		for i := range mask.I {
			mask.I[i] = 1
		}
		c.setConst(1, mask)
	}
	return nil
}

// castTarget maps an ONNX element type to graft's type for it.
func castTarget(to int) (onnx.DType, bool, bool) {
	switch to {
	case 1, 10, 11, 16: // float, float16, double, bfloat16
		return onnx.Float32, false, true
	case 2, 3, 4, 5, 6, 7, 12, 13: // integers
		return onnx.Int64, false, true
	case 9: // bool
		return onnx.Int64, true, true
	}
	return 0, false, false
}

func buildCast(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if !c.has("to") {
		return c.errorf("attribute \"to\" is required")
	}
	to, err := c.attrInt("to", 0)
	if err != nil {
		return err
	}
	dtype, boolean, ok := castTarget(to)
	if !ok {
		return c.errorf("cast to %s is not supported (graft holds float and integer tensors)", onnx.ElemTypeName(int32(to)))
	}
	if done, err := castNarrow(c, to, x); done || err != nil {
		return err
	}
	if dtype == x.dtype && !boolean {
		// graft holds every float as float32, every integer as int64
		if err := c.passThrough(0, x); err != nil {
			return err
		}
		if v := c.b.vals[c.outName(0)]; v != nil && x.carried {
			v.carried = false // a carried integer cast to float is that float
		}
		return nil
	}
	k := &castKernel{to: dtype, boolean: boolean}
	if dtype == onnx.Int64 && x.t != nil {
		// Integers carry no gradient, so a cast of a weight to an integer
		// type folds with the weight's value.
		r, err := k.forward([]*onnx.Tensor{x.t})
		if err != nil {
			return c.errorf("%v", err)
		}
		c.setConst(0, r)
		return nil
	}
	if dtype == onnx.Int64 && x.t == nil {
		// A run-time value cast to an integer or bool type is carried as
		// float32 holding the integer (see logic.go).
		k.carry = true
		if err := c.applyMove(0, k, x.shape, onnx.Float32, 0); err != nil {
			return err
		}
		if v := c.b.vals[c.outName(0)]; v != nil {
			v.carried = true
		}
		return nil
	}
	return c.applyMove(0, k, x.shape, dtype, 0)
}

// ---------------------------------------------------------------------
// Converters: constants and shapes

func buildConstant(c *nodeCtx) error {
	var t *onnx.Tensor
	var err error
	switch {
	case c.has("value"):
		t, err = c.attrTensor("value")
	case c.has("value_float"):
		var f float32
		f, err = c.attrFloat("value_float", 0)
		t = onnx.NewFloat([]int{}, []float32{f})
	case c.has("value_floats"):
		var fs []float32
		fs, err = c.attrFloats("value_floats", nil)
		t = onnx.NewFloat([]int{len(fs)}, fs)
	case c.has("value_int"):
		var i int
		i, err = c.attrInt("value_int", 0)
		t = onnx.NewInt([]int{}, []int64{int64(i)})
	case c.has("value_ints"):
		var is []int
		is, err = c.attrInts("value_ints", nil)
		t = onnx.NewInt([]int{len(is)}, nil)
		for j, v := range is {
			t.I[j] = int64(v)
		}
	case c.has("sparse_value"), c.has("value_string"), c.has("value_strings"):
		return c.errorf("sparse and string constants are not supported")
	default:
		return c.errorf("has no value attribute")
	}
	if err != nil {
		return err
	}
	if t.F == nil && t.DType == onnx.Float32 {
		t.F = []float32{}
	}
	c.setConst(0, t)
	return nil
}

func buildConstantOfShape(c *nodeCtx) error {
	shape, ok, err := c.constInts(0)
	if err != nil {
		return err
	}
	if !ok {
		return c.errorf("input 0 (shape) is required")
	}
	if err := c.checkSize(shape); err != nil {
		return err
	}
	val := onnx.NewFloat([]int{1}, nil)
	if c.has("value") {
		if val, err = c.attrTensor("value"); err != nil {
			return err
		}
		if val.Len() != 1 {
			return c.errorf("value must hold one element, holds %d", val.Len())
		}
	}
	var t *onnx.Tensor
	if val.DType == onnx.Int64 {
		t = onnx.NewInt(shape, nil)
		for i := range t.I {
			t.I[i] = val.I[0]
		}
	} else {
		t = onnx.NewFloat(shape, nil)
		for i := range t.F {
			t.F[i] = val.F[0]
		}
	}
	c.setConst(0, t)
	return nil
}

func buildShape(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	r := len(x.shape)
	start, end := 0, r
	if c.opset >= 15 {
		if start, err = c.attrInt("start", 0); err != nil {
			return err
		}
		if end, err = c.attrInt("end", r); err != nil {
			return err
		}
		if start < 0 {
			start += r
		}
		if end < 0 {
			end += r
		}
		start = min(max(start, 0), r)
		end = min(max(end, 0), r)
	}
	dims := []int64{}
	for d := start; d < end; d++ {
		dims = append(dims, int64(x.shape[d]))
	}
	c.setConst(0, onnx.NewInt([]int{len(dims)}, dims))
	return nil
}

func buildSize(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	c.setConst(0, onnx.NewInt([]int{}, []int64{int64(onnx.NumElems(x.shape))}))
	return nil
}

func buildRange(c *nodeCtx) error {
	var ts [3]*onnx.Tensor
	for i := range ts {
		t, err := c.constInput(i)
		if err != nil {
			return err
		}
		if t.Len() != 1 {
			return c.errorf("input %d must be a scalar, has shape %v", i, t.Shape)
		}
		ts[i] = t
	}
	if ts[0].DType != ts[1].DType || ts[0].DType != ts[2].DType {
		return c.errorf("start, limit and delta mix float32 and int64")
	}
	if ts[0].DType == onnx.Int64 {
		start, limit, delta := ts[0].I[0], ts[1].I[0], ts[2].I[0]
		if delta == 0 {
			return c.errorf("delta is 0")
		}
		n := max(int64(math.Ceil(float64(limit-start)/float64(delta))), 0)
		if n > maxMoveElems {
			return c.errorf("range of %d elements is too large", n)
		}
		t := onnx.NewInt([]int{int(n)}, nil)
		for i := range t.I {
			t.I[i] = start + int64(i)*delta
		}
		c.setConst(0, t)
		return nil
	}
	start, limit, delta := ts[0].F[0], ts[1].F[0], ts[2].F[0]
	if delta == 0 {
		return c.errorf("delta is 0")
	}
	nf := math.Ceil(float64(limit-start) / float64(delta))
	if math.IsNaN(nf) || nf > maxMoveElems {
		return c.errorf("range from %g to %g by %g is too large", start, limit, delta)
	}
	n := max(int(nf), 0)
	t := onnx.NewFloat([]int{n}, nil)
	v := start
	for i := range t.F {
		t.F[i] = v
		v += delta
	}
	c.setConst(0, t)
	return nil
}
