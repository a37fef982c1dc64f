package graph

import (
	"fmt"
	"math"

	"github.com/graftml/graft/onnx"
)

// Comparisons, logic, Where, and elementwise math that came with models
// from other exporters.
//
// Booleans and run-time integers: graft folds integer and bool tensors
// known at build time as int64 (bool as 0/1), as before. A bool or integer
// result computed from the model's inputs (Equal, Greater, Not, ArgMax,
// Cast to an integer type, ...) is carried as float32 holding 0/1 or the
// integer (a "carried" value); every op here reads carried values as the
// numbers they hold, and Model.Run returns a graph output that is carried
// as int64, the type the model declares. See graph/doc.go.

var logicOps = map[string]opDef{
	"Equal":           {build: buildCompare(func(a, b float64) bool { return a == b })},
	"Greater":         {build: buildCompare(func(a, b float64) bool { return a > b })},
	"GreaterOrEqual":  {build: buildCompare(func(a, b float64) bool { return a >= b }), since: 12},
	"Less":            {build: buildCompare(func(a, b float64) bool { return a < b })},
	"LessOrEqual":     {build: buildCompare(func(a, b float64) bool { return a <= b }), since: 12},
	"And":             {build: buildCompare(func(a, b float64) bool { return a != 0 && b != 0 })},
	"Or":              {build: buildCompare(func(a, b float64) bool { return a != 0 || b != 0 })},
	"Xor":             {build: buildCompare(func(a, b float64) bool { return (a != 0) != (b != 0) })},
	"Not":             {build: buildNot},
	"IsNaN":           {build: buildIsNaN, since: 9},
	"IsInf":           {build: buildIsInf, since: 10},
	"Where":           {build: buildWhere, grad: true, since: 9},
	"Mod":             {build: buildMod, since: 10},
	"Sign":            {build: buildUnary(signKernel), since: 9},
	"Round":           {build: buildUnary(roundKernel), since: 11},
	"Sin":             {build: buildUnary(sinKernel), grad: true},
	"Cos":             {build: buildUnary(cosKernel), grad: true},
	"Softplus":        {build: buildUnary(softplusKernel), grad: true},
	"Softsign":        {build: buildUnary(softsignKernel), grad: true},
	"Selu":            {build: buildSelu, grad: true},
	"ThresholdedRelu": {build: buildThresholdedRelu, grad: true, since: 10},
	"ArgMax":          {build: buildArg},
	"ArgMin":          {build: buildArg},
	"Hardmax":         {build: buildHardmax},
}

// mapKernel applies f elementwise over broadcast inputs, reading int64
// and float32 inputs alike. Its output is int64 when intOut (a folded
// bool or integer), float32 otherwise.
type mapKernel struct {
	in     [][]int
	out    []int
	index  [][]int32
	f      func(a []float64) float64
	intOut bool
	// df is d f / d a[i]; nil means zero (bool results are piecewise
	// constant, so no gradient flows back through a comparison).
	df func(i int, a []float64) float64
}

func newMap(in [][]int, out []int, f func([]float64) float64) *mapKernel {
	k := &mapKernel{in: in, out: out, f: f}
	for _, s := range in {
		k.index = append(k.index, broadcastIndex(s, out))
	}
	return k
}

func (k *mapKernel) args(in []*onnx.Tensor, e int, a []float64) {
	for j, t := range in {
		if t.DType == onnx.Int64 {
			a[j] = float64(t.I[k.index[j][e]])
		} else {
			a[j] = float64(t.F[k.index[j][e]])
		}
	}
}

func (k *mapKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	a := make([]float64, len(in))
	n := onnx.NumElems(k.out)
	if k.intOut {
		out := onnx.NewInt(k.out, nil)
		for e := range n {
			k.args(in, e, a)
			out.I[e] = int64(k.f(a))
		}
		return out, nil
	}
	out := onnx.NewFloat(k.out, nil)
	for e := range n {
		k.args(in, e, a)
		out.F[e] = float32(k.f(a))
	}
	return out, nil
}

func (k *mapKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(k.in[i], nil)
	if k.df == nil {
		return g, nil
	}
	a := make([]float64, len(in))
	for e, d := range dy.F {
		k.args(in, e, a)
		g.F[k.index[i][e]] += d * float32(k.df(i, a))
	}
	return g, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// folds reports whether apply would fold a node over these inputs.
func (c *nodeCtx) folds(inputs ...int) bool {
	for _, i := range inputs {
		v := c.in[i]
		if v == nil || v.t == nil || (v.param && !c.b.frozen[v.name]) {
			return false
		}
	}
	return true
}

// floatIn replaces the known integer input i by a float32 copy, for a
// node that computes at run time in float32.
func (c *nodeCtx) floatIn(i int) {
	v := c.in[i]
	if v == nil || v.dtype != onnx.Int64 || v.t == nil {
		return
	}
	f := onnx.NewFloat(v.shape, nil)
	for j, x := range v.t.I {
		f.F[j] = float32(x)
	}
	name := fmt.Sprintf("%s:float32@%s", v.name, c.outName(0))
	f.Name = name
	c.in[i] = &value{name: name, dtype: onnx.Float32, shape: v.shape, t: f}
}

// applyCarry computes output i, whose ONNX type is bool or an integer
// type when isInt: as int64 when it folds, as a carried float32
// otherwise. setInt tells the kernel which.
func (c *nodeCtx) applyCarry(i int, k kernel, setInt func(bool), shape []int, isInt bool, inputs ...int) error {
	fold := c.folds(inputs...)
	if !fold {
		for _, j := range inputs {
			c.floatIn(j)
		}
	}
	setInt(isInt && fold)
	dtype := onnx.Float32
	if isInt && fold {
		dtype = onnx.Int64
	}
	if err := c.applyMove(i, k, shape, dtype, inputs...); err != nil {
		return err
	}
	if v := c.b.vals[c.outName(i)]; v != nil && isInt && !fold {
		v.carried = true
	}
	return nil
}

// broadcastInputs returns the shapes of all inputs and their broadcast.
func (c *nodeCtx) broadcastInputs() ([][]int, []int, []int, error) {
	var shapes [][]int
	var idx []int
	for i := range c.in {
		v, err := c.input(i)
		if err != nil {
			return nil, nil, nil, err
		}
		shapes = append(shapes, v.shape)
		idx = append(idx, i)
	}
	out, ok := broadcastShape(shapes...)
	if !ok {
		return nil, nil, nil, c.errorf("input shapes %v do not broadcast", shapes)
	}
	return shapes, out, idx, nil
}

func buildCompare(f func(a, b float64) bool) func(*nodeCtx) error {
	return func(c *nodeCtx) error {
		shapes, out, idx, err := c.broadcastInputs()
		if err != nil {
			return err
		}
		if len(idx) != 2 {
			return c.errorf("takes 2 inputs, has %d", len(idx))
		}
		k := newMap(shapes, out, func(a []float64) float64 { return b2f(f(a[0], a[1])) })
		return c.applyCarry(0, k, func(b bool) { k.intOut = b }, out, true, idx...)
	}
}

func buildNot(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	k := newMap([][]int{x.shape}, x.shape, func(a []float64) float64 { return b2f(a[0] == 0) })
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, x.shape, true, 0)
}

func buildIsNaN(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	k := newMap([][]int{x.shape}, x.shape, func(a []float64) float64 { return b2f(math.IsNaN(a[0])) })
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, x.shape, true, 0)
}

func buildIsInf(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	neg, err := c.attrInt("detect_negative", 1)
	if err != nil {
		return err
	}
	pos, err := c.attrInt("detect_positive", 1)
	if err != nil {
		return err
	}
	k := newMap([][]int{x.shape}, x.shape, func(a []float64) float64 {
		return b2f(pos != 0 && math.IsInf(a[0], 1) || neg != 0 && math.IsInf(a[0], -1))
	})
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, x.shape, true, 0)
}

// buildWhere: the gradient flows to X where the condition holds and to
// Y elsewhere; the condition gets none.
func buildWhere(c *nodeCtx) error {
	shapes, out, idx, err := c.broadcastInputs()
	if err != nil {
		return err
	}
	if len(idx) != 3 {
		return c.errorf("takes 3 inputs, has %d", len(idx))
	}
	k := newMap(shapes, out, func(a []float64) float64 {
		if a[0] != 0 {
			return a[1]
		}
		return a[2]
	})
	k.df = func(i int, a []float64) float64 {
		switch {
		case i == 1:
			return b2f(a[0] != 0)
		case i == 2:
			return b2f(a[0] == 0)
		}
		return 0
	}
	isInt := c.in[1].dtype == onnx.Int64 && c.in[2].dtype == onnx.Int64 || c.in[1].carried && c.in[2].carried
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, out, isInt, idx...)
}

func buildMod(c *nodeCtx) error {
	shapes, out, idx, err := c.broadcastInputs()
	if err != nil {
		return err
	}
	if len(idx) != 2 {
		return c.errorf("takes 2 inputs, has %d", len(idx))
	}
	fmod, err := c.attrInt("fmod", 0)
	if err != nil {
		return err
	}
	isInt := c.in[0].dtype == onnx.Int64 && c.in[1].dtype == onnx.Int64
	if fmod == 0 && !isInt {
		return c.errorf("fmod=0 on floats is undefined in ONNX; floats need fmod=1")
	}
	k := newMap(shapes, out, func(a []float64) float64 {
		if fmod != 0 {
			return math.Mod(a[0], a[1])
		}
		if a[1] == 0 {
			return 0
		}
		r := math.Mod(a[0], a[1])
		if r != 0 && (r < 0) != (a[1] < 0) {
			r += a[1]
		}
		return r
	})
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, out, isInt, idx...)
}

func signKernel() *unaryKernel {
	sign := func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	}
	return &unaryKernel{f: f32(sign), df: func(_, _ float32) float32 { return 0 },
		fi: func(x int64) int64 { return int64(sign(float64(x))) }}
}

func roundKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.RoundToEven), df: func(_, _ float32) float32 { return 0 }, fi: func(x int64) int64 { return x }}
}

func sinKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Sin), df: func(x, _ float32) float32 { return float32(math.Cos(float64(x))) }}
}

func cosKernel() *unaryKernel {
	return &unaryKernel{f: f32(math.Cos), df: func(x, _ float32) float32 { return float32(-math.Sin(float64(x))) }}
}

// softplusKernel is log(1+exp(x)), computed without overflow.
func softplusKernel() *unaryKernel {
	return &unaryKernel{
		f:  f32(softplus64),
		df: func(x, _ float32) float32 { return sigmoid(x) },
	}
}

func softsignKernel() *unaryKernel {
	return &unaryKernel{
		f: func(x float32) float32 { return x / (1 + float32(math.Abs(float64(x)))) },
		df: func(x, _ float32) float32 {
			d := 1 + float32(math.Abs(float64(x)))
			return 1 / (d * d)
		},
	}
}

func buildSelu(c *nodeCtx) error {
	alpha, err := c.attrFloat("alpha", 1.67326319217681884765625)
	if err != nil {
		return err
	}
	gamma, err := c.attrFloat("gamma", 1.05070102214813232421875)
	if err != nil {
		return err
	}
	a, g := float64(alpha), float64(gamma)
	return buildUnary(func() *unaryKernel {
		return &unaryKernel{
			f: f32(func(x float64) float64 {
				if x > 0 {
					return g * x
				}
				return g * a * math.Expm1(x)
			}),
			df: func(x, _ float32) float32 {
				if x > 0 {
					return float32(g)
				}
				return float32(g * a * math.Exp(float64(x)))
			},
		}
	})(c)
}

func buildThresholdedRelu(c *nodeCtx) error {
	alpha, err := c.attrFloat("alpha", 1)
	if err != nil {
		return err
	}
	return buildUnary(func() *unaryKernel {
		return &unaryKernel{
			f: func(x float32) float32 {
				if x > alpha {
					return x
				}
				return 0
			},
			df: func(x, _ float32) float32 {
				if x > alpha {
					return 1
				}
				return 0
			},
		}
	})(c)
}

// argKernel is ArgMax or ArgMin along one axis.
type argKernel struct {
	in, out    []int
	axis       int
	min, last  bool
	intOut     bool
	outer, len int
	inner      int
}

func (k *argKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	get := func(i int) float64 {
		if x.DType == onnx.Int64 {
			return float64(x.I[i])
		}
		return float64(x.F[i])
	}
	res := make([]int64, k.outer*k.inner)
	for o := range k.outer {
		for j := range k.inner {
			base := o*k.len*k.inner + j
			best, bi := get(base), 0
			for a := 1; a < k.len; a++ {
				v := get(base + a*k.inner)
				better := v > best || (k.last && v == best)
				if k.min {
					better = v < best || (k.last && v == best)
				}
				if better {
					best, bi = v, a
				}
			}
			res[o*k.inner+j] = int64(bi)
		}
	}
	if k.intOut {
		return onnx.NewInt(k.out, res), nil
	}
	out := onnx.NewFloat(k.out, nil)
	for i, v := range res {
		out.F[i] = float32(v)
	}
	return out, nil
}

// axisSplit returns the sizes before, at and after axis.
func axisSplit(shape []int, axis int) (outer, n, inner int) {
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, shape[axis], inner
}

func buildArg(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	keep, err := c.attrInt("keepdims", 1)
	if err != nil {
		return err
	}
	last, err := c.attrInt("select_last_index", 0)
	if err != nil {
		return err
	}
	if len(x.shape) == 0 {
		return c.errorf("%s of a scalar: the input needs at least one axis", c.n.OpType)
	}
	if axis, err = c.normAxis(axis, len(x.shape)); err != nil {
		return err
	}
	if x.shape[axis] == 0 {
		return c.errorf("%s over an empty axis", c.n.OpType)
	}
	k := &argKernel{in: x.shape, axis: axis, min: c.n.OpType == "ArgMin", last: last != 0}
	k.outer, k.len, k.inner = axisSplit(x.shape, axis)
	for d, s := range x.shape {
		switch {
		case d != axis:
			k.out = append(k.out, s)
		case keep != 0:
			k.out = append(k.out, 1)
		}
	}
	if k.out == nil {
		k.out = []int{}
	}
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, k.out, true, 0)
}

// hardmaxKernel puts 1 at the first maximum along the axis (opset 13)
// or of each row of the input coerced to 2-D at axis (before 13).
type hardmaxKernel struct {
	shape             []int
	outer, len, inner int
}

func (k *hardmaxKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0].F
	out := onnx.NewFloat(k.shape, nil)
	for o := range k.outer {
		for j := range k.inner {
			base := o*k.len*k.inner + j
			bi := 0
			for a := 1; a < k.len; a++ {
				if x[base+a*k.inner] > x[base+bi*k.inner] {
					bi = a
				}
			}
			out.F[base+bi*k.inner] = 1
		}
	}
	return out, nil
}

func buildHardmax(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	def := 1
	if c.opset >= 13 {
		def = -1
	}
	axis, err := c.attrInt("axis", def)
	if err != nil {
		return err
	}
	if len(x.shape) == 0 {
		return c.errorf("Hardmax of a scalar: the input needs at least one axis")
	}
	if axis, err = c.normAxis(axis, len(x.shape)); err != nil {
		return err
	}
	k := &hardmaxKernel{shape: x.shape}
	if c.opset >= 13 {
		k.outer, k.len, k.inner = axisSplit(x.shape, axis)
	} else {
		k.outer, _, _ = axisSplit(x.shape, axis)
		k.len, k.inner = onnx.NumElems(x.shape)/max(k.outer, 1), 1
	}
	if x.dtype != onnx.Float32 {
		return c.errorf("takes a float tensor")
	}
	return c.applyMove(0, k, x.shape, onnx.Float32, 0)
}
