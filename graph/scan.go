package graph

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/graftml/graft/onnx"
)

// Ops that order or accumulate along one axis: TopK and CumSum.

var scanOps = map[string]opDef{
	"TopK":   {build: buildTopK, grad: true},
	"CumSum": {build: buildCumSum, grad: true, since: 11},
}

// topKKernel selects the k largest (or smallest) elements along an axis.
// Output 0 (values) is float32 with a gradient; output 1 (indices) is
// int64 when it folds and a carried float32 otherwise.
type topKKernel struct {
	in, out            []int
	outer, n, inner, k int
	largest, indices   bool
	intOut             bool
}

// order returns, for the row starting at base, the positions along the
// axis of the k selected elements: by value (largest or smallest first),
// and by position among equal values, as ONNX specifies.
func (t *topKKernel) order(x *onnx.Tensor, base int, idx []int) []int {
	get := func(a int) float64 {
		if x.DType == onnx.Int64 {
			return float64(x.I[base+a*t.inner])
		}
		return float64(x.F[base+a*t.inner])
	}
	idx = idx[:0]
	for a := range t.n {
		idx = append(idx, a)
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if t.largest {
			return cmp.Compare(get(b), get(a))
		}
		return cmp.Compare(get(a), get(b))
	})
	return idx[:t.k]
}

func (t *topKKernel) check(in []*onnx.Tensor) error {
	if len(in) < 1 || in[0].Len() != t.outer*t.n*t.inner {
		return fmt.Errorf("TopK: X has the wrong size (built for %v)", t.in)
	}
	return nil
}

func (t *topKKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if err := t.check(in); err != nil {
		return nil, err
	}
	x := in[0]
	var out *onnx.Tensor
	switch {
	case t.indices && t.intOut:
		out = onnx.NewInt(t.out, nil)
	case !t.indices && x.DType == onnx.Int64:
		out = onnx.NewInt(t.out, nil)
	default:
		out = onnx.NewFloat(t.out, nil)
	}
	idx := make([]int, 0, t.n)
	for o := range t.outer {
		for j := range t.inner {
			base := o*t.n*t.inner + j
			for r, a := range t.order(x, base, idx) {
				dst := (o*t.k+r)*t.inner + j
				switch {
				case t.indices && out.DType == onnx.Int64:
					out.I[dst] = int64(a)
				case t.indices:
					out.F[dst] = float32(a)
				case out.DType == onnx.Int64:
					out.I[dst] = x.I[base+a*t.inner]
				default:
					out.F[dst] = x.F[base+a*t.inner]
				}
			}
		}
	}
	return out, nil
}

// backward of the values: dY goes back to the selected positions.
func (t *topKKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if err := t.check(in); err != nil {
		return nil, err
	}
	if i != 0 || t.indices {
		return nil, fmt.Errorf("TopK has no gradient for input %d of its indices output", i)
	}
	dx := onnx.NewFloat(in[0].Shape, nil)
	idx := make([]int, 0, t.n)
	for o := range t.outer {
		for j := range t.inner {
			base := o*t.n*t.inner + j
			for r, a := range t.order(in[0], base, idx) {
				dx.F[base+a*t.inner] += dy.F[(o*t.k+r)*t.inner+j]
			}
		}
	}
	return dx, nil
}

func buildTopK(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	axis, err := c.attrInt("axis", -1)
	if err != nil {
		return err
	}
	largest, sorted := 1, 1
	if c.opset >= 11 {
		if largest, err = c.attrInt("largest", 1); err != nil {
			return err
		}
		if sorted, err = c.attrInt("sorted", 1); err != nil {
			return err
		}
	}
	_ = sorted // the order of unsorted results is unspecified: graft sorts them
	var k int
	if c.opset >= 10 {
		ks, ok, err := c.constInts(1)
		if err != nil {
			return err
		}
		if !ok || len(ks) != 1 {
			return c.errorf("input K must be a one-element integer tensor")
		}
		k = ks[0]
	} else if k, err = c.attrInt("k", -1); err != nil {
		return err
	} else if !c.has("k") {
		return c.errorf("attribute \"k\" is required at opset %d", c.opset)
	}
	if len(x.shape) == 0 {
		return c.errorf("TopK of a scalar: the input needs at least one axis")
	}
	if axis, err = c.normAxis(axis, len(x.shape)); err != nil {
		return err
	}
	if k < 0 || k > x.shape[axis] {
		return c.errorf("k %d is outside [0, %d] (axis %d of %v)", k, x.shape[axis], axis, x.shape)
	}
	out := slices.Clone(x.shape)
	out[axis] = k
	mk := func(indices bool) *topKKernel {
		t := &topKKernel{in: x.shape, out: out, k: k, largest: largest != 0, indices: indices}
		t.outer, t.n, t.inner = axisSplit(x.shape, axis)
		return t
	}
	if c.outName(0) != "" {
		if err := c.applyMove(0, mk(false), out, x.dtype, 0); err != nil {
			return err
		}
	}
	if c.outName(1) != "" {
		ik := mk(true)
		if err := c.applyCarry(1, ik, func(b bool) { ik.intOut = b }, out, true, 0); err != nil {
			return err
		}
	}
	return nil
}

// cumSumKernel is the (exclusive, reverse) running sum along an axis.
type cumSumKernel struct {
	shape              []int
	outer, n, inner    int
	exclusive, reverse bool
}

// cumScan writes the running sums of get along k's axis through set;
// reverse runs from the end (the gradient is the scan in the other
// direction). Integers add exactly, in int64.
func cumScan[T int64 | float64](k *cumSumKernel, get func(int) T, set func(int, T), reverse bool) {
	for o := range k.outer {
		for j := range k.inner {
			var acc T
			for s := range k.n {
				a := s
				if reverse {
					a = k.n - 1 - s
				}
				p := (o*k.n+a)*k.inner + j
				v := get(p)
				if k.exclusive {
					set(p, acc)
					acc += v
				} else {
					acc += v
					set(p, acc)
				}
			}
		}
	}
}

func (k *cumSumKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if x.Len() != onnx.NumElems(k.shape) {
		return nil, fmt.Errorf("CumSum: X has the wrong size (built for %v)", k.shape)
	}
	if x.DType == onnx.Int64 {
		out := onnx.NewInt(k.shape, nil)
		cumScan(k, func(i int) int64 { return x.I[i] }, func(i int, v int64) { out.I[i] = v }, k.reverse)
		return out, nil
	}
	out := onnx.NewFloat(k.shape, nil)
	cumScan(k, func(i int) float64 { return float64(x.F[i]) }, func(i int, v float64) { out.F[i] = float32(v) }, k.reverse)
	return out, nil
}

func (k *cumSumKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if i != 0 {
		return nil, fmt.Errorf("CumSum has no gradient for its axis input")
	}
	dx := onnx.NewFloat(k.shape, nil)
	cumScan(k, func(i int) float64 { return float64(dy.F[i]) }, func(i int, v float64) { dx.F[i] = float32(v) }, !k.reverse)
	return dx, nil
}

func buildCumSum(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	axes, ok, err := c.constInts(1)
	if err != nil {
		return err
	}
	if !ok || len(axes) != 1 {
		return c.errorf("input axis must be a one-element integer tensor")
	}
	exclusive, err := c.attrInt("exclusive", 0)
	if err != nil {
		return err
	}
	reverse, err := c.attrInt("reverse", 0)
	if err != nil {
		return err
	}
	if len(x.shape) == 0 {
		return c.errorf("CumSum of a scalar: the input needs at least one axis")
	}
	axis, err := c.normAxis(axes[0], len(x.shape))
	if err != nil {
		return err
	}
	k := &cumSumKernel{shape: x.shape, exclusive: exclusive != 0, reverse: reverse != 0}
	k.outer, k.n, k.inner = axisSplit(x.shape, axis)
	return c.applyMove(0, k, x.shape, x.dtype, 0)
}
