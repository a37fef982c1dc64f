package graph

import (
	"math"
	"slices"
	"sync"

	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
)

// Elementwise arithmetic with numpy-style (multidirectional) broadcasting,
// and elementwise unary math.

var elementwiseOps = map[string]opDef{
	"Add":        {build: buildBroadcast, grad: true},
	"Sub":        {build: buildBroadcast, grad: true},
	"Mul":        {build: buildBroadcast, grad: true},
	"Div":        {build: buildBroadcast, grad: true},
	"Pow":        {build: buildBroadcast, grad: true},
	"Sum":        {build: buildBroadcast, grad: true},
	"Min":        {build: buildBroadcast, grad: true},
	"Max":        {build: buildBroadcast, grad: true},
	"Mean":       {build: buildBroadcast, grad: true},
	"Sqrt":       {build: buildUnary(sqrtKernel), grad: true},
	"Exp":        {build: buildUnary(expKernel), grad: true},
	"Log":        {build: buildUnary(logKernel), grad: true},
	"Neg":        {build: buildUnary(negKernel), grad: true},
	"Abs":        {build: buildUnary(absKernel), grad: true},
	"Reciprocal": {build: buildUnary(reciprocalKernel), grad: true},
	"Erf":        {build: buildUnary(erfKernel), grad: true, since: 9},
	"Floor":      {build: buildUnary(floorKernel), grad: true},
	"Ceil":       {build: buildUnary(ceilKernel), grad: true},
}

// broadcastShape returns the numpy broadcast of shapes, or false.
func broadcastShape(shapes ...[]int) ([]int, bool) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch {
			case d == out[off+i] || d == 1:
			case out[off+i] == 1:
				out[off+i] = d
			default:
				return nil, false
			}
		}
	}
	return out, true
}

// broadcastIndex maps each element of out to its element in s (s
// broadcasts to out).
func broadcastIndex(s, out []int) []int32 {
	n := onnx.NumElems(out)
	idx := make([]int32, n)
	if slices.Equal(s, out) {
		for i := range idx {
			idx[i] = int32(i)
		}
		return idx
	}
	if onnx.NumElems(s) == 1 {
		return idx
	}
	rank := len(out)
	strides := make([]int, rank) // strides of s aligned to out, 0 where broadcast
	st := 1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 1 {
			strides[rank-len(s)+i] = st
		}
		st *= s[i]
	}
	coord := make([]int, rank)
	off := 0
	for i := 0; i < n; i++ {
		idx[i] = int32(off)
		for d := rank - 1; d >= 0; d-- {
			coord[d]++
			off += strides[d]
			if coord[d] < out[d] {
				break
			}
			off -= strides[d] * coord[d]
			coord[d] = 0
		}
	}
	return idx
}

// naryKernel applies a binary function left to right over broadcast
// inputs: Add, Sub, Mul, Div, Pow, Min, Max, Sum, Mean.
type naryKernel struct {
	op   string
	in   [][]int
	out  []int
	same bool // every input has the output's shape
	// plane: two inputs, one of the output's shape (full) and one that
	// holds a value per leading index of the output and broadcasts over
	// the trailing inner elements (a per-channel scale [N,C,1,1] against
	// [N,C,H,W], a bias [C,1,1]): done plane by plane, with no index arrays
	plane       bool
	full, small int // which input is which
	inner       int // elements per value of the small input

	indexOnce sync.Once
	index     [][]int32 // per input, built on first use (ix)
}

func newNary(op string, in [][]int, out []int) *naryKernel {
	k := &naryKernel{op: op, in: in, out: out, same: true}
	for _, s := range in {
		k.same = k.same && slices.Equal(s, out)
	}
	if !k.same && len(in) == 2 && (op == "Add" || op == "Mul" || op == "Sub" || op == "Div") {
		for full := range 2 {
			small := 1 - full
			if (op == "Sub" || op == "Div") && full != 0 {
				continue // a - b and a / b need a full
			}
			if inner, ok := planeBroadcast(in[small], out); ok && slices.Equal(in[full], out) {
				k.plane, k.full, k.small, k.inner = true, full, small, inner
				break
			}
		}
	}
	return k
}

// planeBroadcast reports whether shape s, broadcast to out, holds one
// value per index of out's leading axes and is constant over the rest:
// s (left-padded with 1s) equals out on axes < r and is 1 from r on. It
// returns the number of elements of the trailing axes.
func planeBroadcast(s, out []int) (int, bool) {
	if len(s) > len(out) {
		return 0, false
	}
	pad := make([]int, len(out))
	for i := range pad {
		pad[i] = 1
	}
	copy(pad[len(out)-len(s):], s)
	r := 0
	for r < len(out) && pad[r] == out[r] {
		r++
	}
	inner := 1
	for _, d := range pad[r:] {
		if d != 1 {
			return 0, false
		}
	}
	for _, d := range out[r:] {
		inner *= d
	}
	return inner, r > 0 && inner > 1
}

// ix returns the broadcast index arrays, building them on first use (a
// same-shape or plane op in inference never needs them).
func (k *naryKernel) ix() [][]int32 {
	k.indexOnce.Do(func() {
		for _, s := range k.in {
			k.index = append(k.index, broadcastIndex(s, k.out))
		}
	})
	return k.index
}

func (k *naryKernel) apply(a, b float32) float32 {
	switch k.op {
	case "Add", "Sum", "Mean":
		return a + b
	case "Sub":
		return a - b
	case "Mul":
		return a * b
	case "Div":
		return a / b
	case "Pow":
		return float32(math.Pow(float64(a), float64(b)))
	case "Min":
		return min(a, b)
	case "Max":
		return max(a, b)
	}
	panic("graft: unknown elementwise op " + k.op)
}

func (k *naryKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType == onnx.Int64 {
		return k.forwardInt(in), nil
	}
	out := onnx.NewFloat(k.out, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// inPlace: the output can take input 0's buffer when it is not
// broadcast (each output element then reads the inputs at its own index
// only, or at broadcast indices of the other, smaller inputs).
func (k *naryKernel) inPlace() int {
	if slices.Equal(k.in[0], k.out) {
		return 0
	}
	return -1
}

// forwardInto is forward on float tensors, into out.
func (k *naryKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return errIntUnsupported
		}
	}
	o := out.F
	if k.same && k.forwardSame(in, o) {
		return nil
	}
	if k.plane {
		k.forwardPlane(in, o)
		return nil
	}
	a, ia := in[0].F, k.ix()[0]
	for i := range o {
		o[i] = a[ia[i]]
	}
	for j := 1; j < len(in); j++ {
		b, ib := in[j].F, k.ix()[j]
		switch k.op { // fast paths for the common ops
		case "Add", "Sum", "Mean":
			for i := range o {
				o[i] += b[ib[i]]
			}
		case "Mul":
			for i := range o {
				o[i] *= b[ib[i]]
			}
		default:
			for i := range o {
				o[i] = k.apply(o[i], b[ib[i]])
			}
		}
	}
	if k.op == "Mean" {
		s := 1 / float32(len(in))
		for i := range o {
			o[i] *= s
		}
	}
	return nil
}

// planeTask is about how many elements a task of a plane-by-plane loop
// takes: planes smaller than this are grouped.
const planeTask = 4096

// forwardPlane is forward for a plane broadcast (see naryKernel.plane).
func (k *naryKernel) forwardPlane(in []*onnx.Tensor, o []float32) {
	a, b, n := in[k.full].F, in[k.small].F, k.inner
	workers := 0
	if len(o) < vec.ParMin {
		workers = 1
	}
	// tasks of several planes when they are small: a task per 7x7 plane
	// (9,216 of them in an EfficientNet-B0 block at batch 8) spent most
	// of its time taking its index
	per := max(1, planeTask/n)
	forEachPar(workers, (len(b)+per-1)/per, func(t int) {
		for i := t * per; i < min(len(b), (t+1)*per); i++ {
			dst, src, v := o[i*n:(i+1)*n], a[i*n:(i+1)*n], b[i]
			switch k.op {
			case "Add":
				vec.AddScalar(dst, src, v)
			case "Sub":
				vec.AddScalar(dst, src, -v)
			case "Mul":
				vec.MulScalar(dst, src, v)
			case "Div":
				for j, x := range src {
					dst[j] = x / v
				}
			}
		}
	})
}

// forwardSame is forward for inputs of the output's shape, with the vec
// kernels and no index arrays; it reports false for ops it does not do.
func (k *naryKernel) forwardSame(in []*onnx.Tensor, o []float32) bool {
	var f func(dst, a, b []float32)
	switch k.op {
	case "Add", "Sum", "Mean":
		f = vec.Add
	case "Sub":
		f = vec.Sub
	case "Mul":
		f = vec.Mul
	case "Div":
		f = vec.Div
	default:
		return false
	}
	vec.Par(len(o), func(lo, hi int) {
		dst, src := o[lo:hi], in[0].F[lo:hi]
		if len(in) == 1 {
			copy(dst, src)
		}
		for j := 1; j < len(in); j++ {
			f(dst, src, in[j].F[lo:hi])
			src = dst
		}
		if k.op == "Mean" {
			vec.MulScalar(dst, dst, 1/float32(len(in)))
		}
	})
	return true
}

func (k *naryKernel) forwardInt(in []*onnx.Tensor) *onnx.Tensor {
	out := onnx.NewInt(k.out, nil)
	o := out.I
	for i := range o {
		o[i] = in[0].I[k.ix()[0][i]]
	}
	for j := 1; j < len(in); j++ {
		b, ib := in[j].I, k.ix()[j]
		for i := range o {
			x, y := o[i], b[ib[i]]
			switch k.op {
			case "Add", "Sum":
				o[i] = x + y
			case "Sub":
				o[i] = x - y
			case "Mul":
				o[i] = x * y
			case "Div":
				if y != 0 {
					o[i] = x / y
				}
			case "Min":
				o[i] = min(x, y)
			case "Max":
				o[i] = max(x, y)
			case "Pow":
				o[i] = int64(math.Pow(float64(x), float64(y)))
			case "Mean":
				o[i] = x + y
			}
		}
	}
	if k.op == "Mean" {
		for i := range o {
			o[i] /= int64(len(in))
		}
	}
	return out
}

// backward: d out / d in[i] per output element, summed over the elements
// that broadcast from the same input element.
func (k *naryKernel) backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(k.in[i], nil)
	gi, idx := g.F, k.ix()[i]
	x := in[i].F
	switch k.op {
	case "Add", "Sum":
		for e, d := range dy.F {
			gi[idx[e]] += d
		}
	case "Mean":
		s := 1 / float32(len(in))
		for e, d := range dy.F {
			gi[idx[e]] += d * s
		}
	case "Sub":
		s := float32(1)
		if i == 1 {
			s = -1
		}
		for e, d := range dy.F {
			gi[idx[e]] += s * d
		}
	case "Mul": // product of the other inputs = out / x, computed directly
		for e, d := range dy.F {
			p := d
			for j := range in {
				if j != i {
					p *= in[j].F[k.ix()[j][e]]
				}
			}
			gi[idx[e]] += p
		}
	case "Div":
		a, b := in[0].F, in[1].F
		ia, ib := k.ix()[0], k.ix()[1]
		for e, d := range dy.F {
			bv := b[ib[e]]
			if i == 0 {
				gi[ia[e]] += d / bv
			} else {
				gi[ib[e]] -= d * a[ia[e]] / (bv * bv)
			}
		}
	case "Pow":
		a, b := in[0].F, in[1].F
		ia, ib := k.ix()[0], k.ix()[1]
		for e, d := range dy.F {
			av, bv := float64(a[ia[e]]), float64(b[ib[e]])
			if i == 0 {
				gi[ia[e]] += d * float32(bv*math.Pow(av, bv-1))
			} else if av > 0 {
				gi[ib[e]] += d * float32(math.Pow(av, bv)*math.Log(av))
			}
		}
	case "Min", "Max": // the gradient goes to the (first) input that won
		for e, d := range dy.F {
			win := 0
			for j := 1; j < len(in); j++ {
				if in[j].F[k.ix()[j][e]] == out.F[e] && in[win].F[k.ix()[win][e]] != out.F[e] {
					win = j
				}
			}
			if win == i {
				gi[idx[e]] += d
			}
		}
	}
	_ = x
	return g, nil
}

func buildBroadcast(c *nodeCtx) error {
	var shapes [][]int
	var idx []int
	dtype := onnx.Float32
	for i := range c.in {
		v, err := c.input(i)
		if err != nil {
			return err
		}
		if i == 0 {
			dtype = v.dtype
		} else if v.dtype != dtype {
			return c.errorf("inputs mix %s and %s", dtype, v.dtype)
		}
		shapes = append(shapes, v.shape)
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return c.errorf("needs at least one input")
	}
	if c.opset < 7 || (c.has("broadcast") && len(idx) == 2) {
		return c.errorf("legacy broadcast attribute (opset < 7) is not supported")
	}
	out, ok := broadcastShape(shapes...)
	if !ok {
		return c.errorf("input shapes %v do not broadcast", shapes)
	}
	return c.apply(0, newNary(c.n.OpType, shapes, out), out, dtype, idx...)
}

// unaryKernel is an elementwise function with its derivative, written in
// terms of the input x and the output y.
type unaryKernel struct {
	f  func(x float32) float32
	df func(x, y float32) float32
	fi func(x int64) int64 // integer version, for folding; nil if none
	// vf and vdf, when set, replace f and the backward loop with kernels
	// from package vec over whole slices: vdf sets dst to dy·f'(x) given
	// the input x and the output y.
	vf  func(dst, x []float32)
	vdf func(dst, x, y, dy []float32)
	// clamp, when set, says vf is vec.Clip(dst, x, clamp[0], clamp[1])
	// (Relu and Clip), which a Conv's bias can join (see epilogue).
	clamp *[2]float32
}

func (k *unaryKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if x.DType == onnx.Int64 {
		if k.fi == nil {
			return nil, errIntUnsupported
		}
		out := onnx.NewInt(x.Shape, nil)
		for i, v := range x.I {
			out.I[i] = k.fi(v)
		}
		return out, nil
	}
	out := onnx.NewFloat(x.Shape, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// forwardInto is forward on float tensors, into out (which may be the
// input itself: inPlace).
func (k *unaryKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	if in[0].DType != onnx.Float32 {
		return errIntUnsupported
	}
	x := in[0].F
	if k.vf != nil {
		vec.Par(len(x), func(lo, hi int) { k.vf(out.F[lo:hi], x[lo:hi]) })
		return nil
	}
	for i, v := range x {
		out.F[i] = k.f(v)
	}
	return nil
}

func (k *unaryKernel) inPlace() int { return 0 }

func (k *unaryKernel) backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	return freshGrad(k, i, in, out, dy)
}

func (k *unaryKernel) backwardInto(_ int, in []*onnx.Tensor, out, dy, g *onnx.Tensor) error {
	x, y := in[0].F, out.F
	if k.vdf != nil {
		vec.Par(len(x), func(lo, hi int) { k.vdf(g.F[lo:hi], x[lo:hi], y[lo:hi], dy.F[lo:hi]) })
		return nil
	}
	for i, d := range dy.F {
		g.F[i] = d * k.df(x[i], y[i])
	}
	return nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errIntUnsupported = constError("this op takes float tensors only")

func f32(f func(float64) float64) func(float32) float32 {
	return func(x float32) float32 { return float32(f(float64(x))) }
}

func sqrtKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Sqrt), df: func(_, y float32) float32 { return 0.5 / y }}
}

func expKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Exp), df: func(_, y float32) float32 { return y }}
}

func logKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Log), df: func(x, _ float32) float32 { return 1 / x }}
}

func negKernel() *unaryKernel {
	return &unaryKernel{f: func(x float32) float32 { return -x }, df: func(_, _ float32) float32 { return -1 },
		fi: func(x int64) int64 { return -x }}
}

func absKernel() *unaryKernel {
	return &unaryKernel{f: func(x float32) float32 { return float32(math.Abs(float64(x))) },
		df: func(x, _ float32) float32 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return 0
		},
		fi: func(x int64) int64 {
			if x < 0 {
				return -x
			}
			return x
		}}
}

func reciprocalKernel() *unaryKernel {
	return &unaryKernel{f: func(x float32) float32 { return 1 / x }, df: func(_, y float32) float32 { return -y * y }}
}

func erfKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Erf), df: func(x, _ float32) float32 {
		return float32(2 / math.Sqrt(math.Pi) * math.Exp(-float64(x)*float64(x)))
	}}
}

func floorKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Floor), df: func(_, _ float32) float32 { return 0 }, fi: func(x int64) int64 { return x }}
}

func ceilKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Ceil), df: func(_, _ float32) float32 { return 0 }, fi: func(x int64) int64 { return x }}
}

// buildUnary builds an elementwise math op with kernel k.
func buildUnary(k func() *unaryKernel) func(*nodeCtx) error {
	return func(c *nodeCtx) error {
		x, err := c.input(0)
		if err != nil {
			return err
		}
		return c.apply(0, k(), x.shape, x.dtype, 0)
	}
}
