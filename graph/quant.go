package graph

import (
	"fmt"
	"math"

	"github.com/graftml/graft/onnx"
)

// QuantizeLinear and DequantizeLinear: the QDQ format of quantized models.
//
// graft computes a quantized model in float32. A DequantizeLinear of a
// quantized initializer (a weight) folds, when the graph is built, into
// the float weight it stands for: Build then treats it as a weight like a
// float initializer (see surgery.QuantizedWeights), frozen in every
// command graft has. A QuantizeLinear of an activation computes
// round-half-to-even(x/scale)+zero_point clamped to the integer type's
// range, held as a float32 carrying the integer (see logic.go), and the
// DequantizeLinear after it rescales: together a fake quantization whose
// gradient passes straight through where the value was not clamped.
//
// Read: opsets 10 (per-tensor scale and zero point) and 13 on (per-axis
// with "axis"); uint8 and int8 (and int32 for DequantizeLinear, as
// quantized biases are stored). Refused by name: float8 types and
// "saturate" on them (opset 19), int4, uint4, int16 and uint16 and
// "block_size" (opset 21), and scales or zero points computed at run time.

var quantOps = map[string]opDef{
	"QuantizeLinear":   {build: buildQuantize, since: 10, grad: true, passThrough: true},
	"DequantizeLinear": {build: buildDequantize, since: 10, grad: true, passThrough: true},
}

// quantTypeNames names the ONNX element types of quantized tensors graft
// refuses.
var quantTypeNames = map[int]string{
	4: "uint16", 5: "int16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2",
	20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
}

// quantRange is the integer range of a quantized element type.
func quantRange(elem int) (lo, hi float32, ok bool) {
	switch elem {
	case 2:
		return 0, 255, true
	case 3:
		return -128, 127, true
	}
	return 0, 0, false
}

// elemTypeOf returns the ONNX element type of an initializer, graph input
// or Constant output named name, or 0 when it is none (a computed tensor).
func (c *nodeCtx) elemTypeOf(name string) int {
	g := c.b.m.Src.Proto.GetGraph()
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return int(t.GetDataType())
		}
	}
	for _, in := range g.GetInput() {
		if in.GetName() == name {
			return int(in.GetType().GetTensorType().GetElemType())
		}
	}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 && n.GetOutput()[0] == name {
			for _, a := range n.GetAttribute() {
				if a.GetName() == "value" && a.GetT() != nil {
					return int(a.GetT().GetDataType())
				}
			}
		}
	}
	return 0
}

// quantParams reads the scale (input 1) and zero point (input 2) of a
// QuantizeLinear or DequantizeLinear on x: both constants, either scalars
// (per tensor) or 1-D along axis (opset 13 on). It returns the scale and
// zero point per element of axis (one of each per tensor), the axis
// (-1 per tensor) and the zero point's element type (0 when absent).
func (c *nodeCtx) quantParams(x *value) (scale, zp []float32, axis, zpElem int, err error) {
	if c.has("block_size") {
		bs, err := c.attrInt("block_size", 0)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if bs != 0 {
			return nil, nil, 0, 0, c.errorf("block_size %d (blocked quantization, opset 21) is not supported", bs)
		}
	}
	st, err := c.constInput(1)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	if st.DType != onnx.Float32 {
		return nil, nil, 0, 0, c.errorf("scale %q must be a float tensor", c.in[1].name)
	}
	if e := c.elemTypeOf(c.in[1].name); e != 0 && e != 1 {
		return nil, nil, 0, 0, c.errorf("scale %q is of element type %d; graft reads float32 scales", c.in[1].name, e)
	}
	axis = -1
	switch {
	case len(st.Shape) == 0 || len(st.Shape) == 1 && st.Shape[0] == 1 && c.opset < 13:
	case len(st.Shape) == 1:
		if c.opset < 13 {
			return nil, nil, 0, 0, c.errorf("scale %q has shape %v; opset %d quantizes per tensor (a scalar scale)", c.in[1].name, st.Shape, c.opset)
		}
		a, err := c.attrInt("axis", 1)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if axis, err = c.normAxis(a, len(x.shape)); err != nil {
			return nil, nil, 0, 0, err
		}
		if st.Shape[0] != x.shape[axis] {
			return nil, nil, 0, 0, c.errorf("scale %q has %d values, axis %d of the input has %d", c.in[1].name, st.Shape[0], a, x.shape[axis])
		}
	default:
		return nil, nil, 0, 0, c.errorf("scale %q has shape %v; graft reads per-tensor and per-axis scales (blocked quantization is not supported)", c.in[1].name, st.Shape)
	}
	scale = st.F
	for i, s := range scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, nil, 0, 0, c.errorf("scale %q holds %g at %d; scales must be positive and finite", c.in[1].name, s, i)
		}
	}
	zp = make([]float32, len(scale))
	if c.optional(2) {
		zpElem = c.elemTypeOf(c.in[2].name)
		if name, bad := quantTypeNames[zpElem]; bad {
			return nil, nil, 0, 0, c.errorf("zero point %q is %s; graft reads uint8 and int8 quantization", c.in[2].name, name)
		}
		zt, err := c.constInput(2)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if zt.DType != onnx.Int64 {
			return nil, nil, 0, 0, c.errorf("zero point %q must be an integer tensor", c.in[2].name)
		}
		if len(zt.I) != len(scale) {
			return nil, nil, 0, 0, c.errorf("zero point %q has %d values, the scale %d", c.in[2].name, len(zt.I), len(scale))
		}
		for i, z := range zt.I {
			zp[i] = float32(z)
		}
	}
	return scale, zp, axis, zpElem, nil
}

// quantLayout returns, for a tensor of shape, the length of a run of
// elements sharing one scale (inner) and the number of scales (n): the
// scale of element i is (i/inner)%n.
func quantLayout(shape []int, axis, n int) (inner int) {
	if axis < 0 {
		return onnx.NumElems(shape)
	}
	inner = 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return inner
}

func buildQuantize(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	scale, zp, axis, zpElem, err := c.quantParams(x)
	if err != nil {
		return err
	}
	elem := zpElem
	if c.has("output_dtype") {
		od, err := c.attrInt("output_dtype", 0)
		if err != nil {
			return err
		}
		if od != 0 {
			if zpElem != 0 && od != zpElem {
				return c.errorf("output_dtype %d differs from the zero point's type %d", od, zpElem)
			}
			elem = od
		}
	}
	if elem == 0 {
		elem = 2 // no zero point: uint8
	}
	if name, bad := quantTypeNames[elem]; bad {
		return c.errorf("quantizing to %s is not supported (graft reads uint8 and int8 quantization)", name)
	}
	lo, hi, ok := quantRange(elem)
	if !ok {
		return c.errorf("quantizing to element type %d is not supported (graft reads uint8 and int8 quantization)", elem)
	}
	if x.dtype != onnx.Float32 || x.carried {
		return c.errorf("input %q must be a float tensor", x.name)
	}
	k := &quantizeKernel{scale: scale, zp: zp, lo: lo, hi: hi, inner: quantLayout(x.shape, axis, len(scale))}
	return c.applyCarry(0, k, func(b bool) { k.intOut = b }, x.shape, true, 0)
}

func buildDequantize(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	xElem := c.elemTypeOf(x.name)
	if name, bad := quantTypeNames[xElem]; bad {
		return c.errorf("input %q is %s; graft reads uint8, int8 and int32 quantized tensors", x.name, name)
	}
	if x.dtype != onnx.Int64 && !x.carried {
		return c.errorf("input %q must be a quantized integer tensor", x.name)
	}
	scale, zp, axis, _, err := c.quantParams(x)
	if err != nil {
		return err
	}
	k := &dequantizeKernel{scale: scale, zp: zp, inner: quantLayout(x.shape, axis, len(scale))}
	if c.folds(0) {
		return c.applyMove(0, k, x.shape, onnx.Float32, 0)
	}
	c.floatIn(0)
	if err := c.applyMove(0, k, x.shape, onnx.Float32, 0); err != nil {
		return err
	}
	return nil
}

// quantizeKernel is QuantizeLinear with constant scales and zero points.
// Its output holds integers: int64 when it folds (intOut), else float32.
type quantizeKernel struct {
	scale, zp []float32
	lo, hi    float32 // the integer type's range
	inner     int     // elements per scale run (see quantLayout)
	intOut    bool
}

func (k *quantizeKernel) q(i int, v float32) float32 {
	j := (i / k.inner) % len(k.scale)
	r := float32(math.RoundToEven(float64(v/k.scale[j]))) + k.zp[j]
	return min(max(r, k.lo), k.hi)
}

func (k *quantizeKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if k.intOut {
		out := onnx.NewInt(x.Shape, nil)
		for i, v := range x.F {
			out.I[i] = int64(k.q(i, v))
		}
		return out, nil
	}
	out := onnx.NewFloat(x.Shape, nil)
	for i, v := range x.F {
		out.F[i] = k.q(i, v)
	}
	return out, nil
}

// backward is the straight-through estimator: the gradient of the
// quantized integer q = x/scale + zp is 1/scale, and nothing where the
// value was clamped to the type's range. NaN inputs pass no gradient.
func (k *quantizeKernel) backward(_ int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	dx := onnx.NewFloat(x.Shape, nil)
	for i, v := range x.F {
		j := (i / k.inner) % len(k.scale)
		r := float32(math.RoundToEven(float64(v/k.scale[j]))) + k.zp[j]
		if r >= k.lo && r <= k.hi {
			dx.F[i] = dy.F[i] / k.scale[j]
		}
	}
	return dx, nil
}

// dequantizeKernel is DequantizeLinear: (x - zero_point) * scale.
type dequantizeKernel struct {
	scale, zp []float32
	inner     int
}

func (k *dequantizeKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	out := onnx.NewFloat(x.Shape, nil)
	for i := range out.F {
		j := (i / k.inner) % len(k.scale)
		var v float32
		if x.DType == onnx.Int64 {
			// int32 arithmetic as ONNX Runtime does, then one float multiply
			v = float32(x.I[i] - int64(k.zp[j]))
		} else {
			v = x.F[i] - k.zp[j]
		}
		out.F[i] = v * k.scale[j]
	}
	return out, nil
}

func (k *dequantizeKernel) backward(_ int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	dx := onnx.NewFloat(in[0].Shape, nil)
	for i := range dx.F {
		dx.F[i] = dy.F[i] * k.scale[(i/k.inner)%len(k.scale)]
	}
	return dx, nil
}

func (k *quantizeKernel) String() string {
	return fmt.Sprintf("QuantizeLinear[%d scales, %g..%g]", len(k.scale), k.lo, k.hi)
}
