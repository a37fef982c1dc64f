package graph

import (
	"math"
	"slices"

	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
)

// Activations: elementwise nonlinearities (Relu, LeakyRelu, PRelu, Elu,
// Sigmoid, Tanh, HardSigmoid, HardSwish, Clip, Mish, Gelu) and the normalizing
// Softmax and LogSoftmax.
//
// Gradients at kinks follow PyTorch: Relu passes nothing at x == 0,
// LeakyRelu, PRelu and Elu use their negative-side slope at x == 0,
// Clip passes the gradient for min <= x <= max, HardSigmoid only strictly
// inside its linear part, HardSwish x/3+1/2 on [-3, 3].

var activationOps = map[string]opDef{
	"Relu":        {build: buildActivation(fixed(reluKernel)), grad: true, passThrough: true},
	"LeakyRelu":   {build: buildActivation(leakyReluFor), grad: true},
	"Elu":         {build: buildActivation(eluFor), grad: true},
	"Sigmoid":     {build: buildActivation(fixed(sigmoidKernel)), grad: true},
	"Tanh":        {build: buildActivation(fixed(tanhKernel)), grad: true},
	"HardSigmoid": {build: buildActivation(hardSigmoidFor), grad: true},
	"HardSwish":   {build: buildActivation(fixed(hardSwishKernel)), grad: true, since: 14},
	"Clip":        {build: buildClip, grad: true},
	"PRelu":       {build: buildPRelu, grad: true, weights: []int{1}},
	"Softmax":     {build: buildSoftmax(false), grad: true, passThrough: true},
	"LogSoftmax":  {build: buildSoftmax(true), grad: true, passThrough: true},
	"Mish":        {build: buildActivation(fixed(mishKernel)), grad: true, since: 18},
	"Gelu":        {build: buildActivation(geluFor), grad: true, since: 20},
}

func reluKernel() *unaryKernel {
	return &unaryKernel{
		f: func(x float32) float32 {
			if x > 0 {
				return x
			}
			return 0
		},
		df: func(x, _ float32) float32 {
			if x > 0 {
				return 1
			}
			return 0
		},
		fi:    func(x int64) int64 { return max(x, 0) },
		vf:    vec.Relu,
		vdf:   func(dst, x, _, dy []float32) { vec.ReluGrad(dst, x, dy) },
		clamp: &[2]float32{0, float32(math.Inf(1))},
	}
}

func leakyReluKernel(alpha float32) *unaryKernel {
	return &unaryKernel{
		f: func(x float32) float32 {
			if x > 0 {
				return x
			}
			return alpha * x
		},
		df: func(x, _ float32) float32 {
			if x > 0 {
				return 1
			}
			return alpha
		},
		vf:  func(dst, x []float32) { vec.LeakyRelu(dst, x, alpha) },
		vdf: func(dst, x, _, dy []float32) { vec.LeakyReluGrad(dst, x, dy, alpha) },
	}
}

func eluKernel(alpha float32) *unaryKernel {
	a := float64(alpha)
	return &unaryKernel{
		f: func(x float32) float32 {
			if x > 0 {
				return x
			}
			return float32(a * math.Expm1(float64(x)))
		},
		df: func(x, _ float32) float32 {
			if x > 0 {
				return 1
			}
			return float32(a * math.Exp(float64(x)))
		},
	}
}

func sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

func sigmoidKernel() *unaryKernel {
	return &unaryKernel{
		f:   sigmoid,
		df:  func(_, y float32) float32 { return y * (1 - y) },
		vf:  vec.Sigmoid,
		vdf: func(dst, _, y, dy []float32) { vec.SigmoidGrad(dst, y, dy) },
	}
}

func tanhKernel() *unaryKernel {
	return &unaryKernel{
		f:   f32(math.Tanh),
		df:  func(_, y float32) float32 { return 1 - y*y },
		vf:  vec.Tanh,
		vdf: func(dst, _, y, dy []float32) { vec.TanhGrad(dst, y, dy) },
	}
}

// hardSigmoidKernel is max(0, min(1, alpha*x+beta)).
func hardSigmoidKernel(alpha, beta float32) *unaryKernel {
	return &unaryKernel{
		f: func(x float32) float32 { return max(0, min(1, alpha*x+beta)) },
		df: func(x, _ float32) float32 {
			if v := alpha*x + beta; v > 0 && v < 1 {
				return alpha
			}
			return 0
		},
		vf:  func(dst, x []float32) { vec.HardSigmoid(dst, x, alpha, beta) },
		vdf: func(dst, x, _, dy []float32) { vec.HardSigmoidGrad(dst, x, dy, alpha, beta) },
	}
}

// hardSwishKernel is x * HardSigmoid(x) with alpha 1/6, beta 1/2.
func hardSwishKernel() *unaryKernel {
	return &unaryKernel{
		f: func(x float32) float32 { return x * max(0, min(1, x/6+0.5)) },
		df: func(x, _ float32) float32 {
			switch {
			case x < -3:
				return 0
			case x <= 3:
				return x/3 + 0.5
			}
			return 1
		},
		vf:  vec.HardSwish,
		vdf: func(dst, x, _, dy []float32) { vec.HardSwishGrad(dst, x, dy) },
	}
}

// clipKernel is min(max(x, lo), hi) (hi wins when lo > hi, as in numpy
// and ONNX Runtime). The integer bounds are used for int64 folding.
func clipKernel(lo, hi float32, ilo, ihi int64) *unaryKernel {
	return &unaryKernel{
		f: func(x float32) float32 {
			if x < lo {
				x = lo
			}
			if x > hi {
				x = hi
			}
			return x
		},
		df: func(x, _ float32) float32 {
			if x >= lo && x <= hi {
				return 1
			}
			return 0
		},
		fi:    func(x int64) int64 { return min(max(x, ilo), ihi) },
		vf:    func(dst, x []float32) { vec.Clip(dst, x, lo, hi) },
		vdf:   func(dst, x, _, dy []float32) { vec.ClipGrad(dst, x, dy, lo, hi) },
		clamp: &[2]float32{lo, hi},
	}
}

// buildActivation builds an elementwise activation whose kernel mk makes
// from the node's attributes.
func buildActivation(mk func(*nodeCtx) (*unaryKernel, error)) func(*nodeCtx) error {
	return func(c *nodeCtx) error {
		x, err := c.input(0)
		if err != nil {
			return err
		}
		k, err := mk(c)
		if err != nil {
			return err
		}
		if x.dtype == onnx.Int64 && k.fi == nil {
			return c.errorf("%s on integer tensors is not supported", c.n.OpType)
		}
		return c.apply(0, k, x.shape, x.dtype, 0)
	}
}

// fixed makes the kernel of an activation without attributes.
func fixed(k func() *unaryKernel) func(*nodeCtx) (*unaryKernel, error) {
	return func(*nodeCtx) (*unaryKernel, error) { return k(), nil }
}

func leakyReluFor(c *nodeCtx) (*unaryKernel, error) {
	alpha, err := c.attrFloat("alpha", 0.01)
	if err != nil {
		return nil, err
	}
	return leakyReluKernel(alpha), nil
}

func eluFor(c *nodeCtx) (*unaryKernel, error) {
	alpha, err := c.attrFloat("alpha", 1)
	if err != nil {
		return nil, err
	}
	return eluKernel(alpha), nil
}

func hardSigmoidFor(c *nodeCtx) (*unaryKernel, error) {
	alpha, err := c.attrFloat("alpha", 0.2)
	if err != nil {
		return nil, err
	}
	beta, err := c.attrFloat("beta", 0.5)
	if err != nil {
		return nil, err
	}
	return hardSigmoidKernel(alpha, beta), nil
}

// buildClip reads the bounds from attributes before opset 11 and from
// optional inputs, which must be known at build time, from opset 11.
func buildClip(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	ilo, ihi := int64(math.MinInt64), int64(math.MaxInt64)
	if c.opset < 11 {
		if lo, err = c.attrFloat("min", -math.MaxFloat32); err != nil {
			return err
		}
		if hi, err = c.attrFloat("max", math.MaxFloat32); err != nil {
			return err
		}
		if x.dtype == onnx.Int64 {
			return c.errorf("Clip on integer tensors needs opset 12 or later")
		}
	} else {
		for i, name := range []string{"min", "max"} {
			if !c.optional(i + 1) {
				continue
			}
			t, err := c.constInput(i + 1)
			if err != nil {
				return c.errorf("Clip %s (input %d) must be a constant or initializer: graft does not take clip bounds from the model's inputs", name, i+1)
			}
			if t.Len() != 1 {
				return c.errorf("Clip %s must be a scalar, got shape %v", name, t.Shape)
			}
			var f float32
			var n int64
			if t.DType == onnx.Int64 {
				n, f = t.I[0], float32(t.I[0])
			} else {
				f = t.F[0]
				n = int64(math.Round(float64(f)))
				if x.dtype == onnx.Int64 {
					return c.errorf("Clip %s is float but the input is integer", name)
				}
			}
			if i == 0 {
				lo, ilo = f, n
			} else {
				hi, ihi = f, n
			}
		}
	}
	return c.apply(0, clipKernel(lo, hi, ilo, ihi), x.shape, x.dtype, 0)
}

// preluKernel is x for x >= 0 and slope*x otherwise, with slope
// broadcast to x (unidirectionally).
type preluKernel struct {
	x, slope []int
	idx      []int32 // per element of x, its slope element
}

func newPRelu(x, slope []int) *preluKernel {
	return &preluKernel{x: x, slope: slope, idx: broadcastIndex(slope, x)}
}

func (k *preluKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType != onnx.Float32 || in[1].DType != onnx.Float32 {
		return nil, errIntUnsupported
	}
	out := onnx.NewFloat(k.x, nil)
	s := in[1].F
	for i, v := range in[0].F {
		if v < 0 {
			v *= s[k.idx[i]]
		}
		out.F[i] = v
	}
	return out, nil
}

func (k *preluKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x, s := in[0].F, in[1].F
	if i == 0 {
		g := onnx.NewFloat(k.x, nil)
		for e, d := range dy.F {
			if x[e] > 0 {
				g.F[e] = d
			} else {
				g.F[e] = d * s[k.idx[e]]
			}
		}
		return g, nil
	}
	g := onnx.NewFloat(k.slope, nil)
	for e, d := range dy.F {
		if x[e] <= 0 {
			g.F[k.idx[e]] += d * x[e]
		}
	}
	return g, nil
}

func buildPRelu(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	s, err := c.input(1)
	if err != nil {
		return err
	}
	if x.dtype != onnx.Float32 || s.dtype != onnx.Float32 {
		return c.errorf("PRelu on integer tensors is not supported")
	}
	if b, ok := broadcastShape(x.shape, s.shape); !ok || !slices.Equal(b, x.shape) {
		return c.errorf("slope shape %v does not broadcast to the input shape %v", s.shape, x.shape)
	}
	return c.apply(0, newPRelu(x.shape, s.shape), x.shape, onnx.Float32, 0, 1)
}

// softmaxKernel normalizes over n elements spaced inner apart, in outer
// independent blocks: the input is viewed as [outer, n, inner].
type softmaxKernel struct {
	log             bool
	shape           []int
	outer, n, inner int
}

// newSoftmax builds the kernel for the given axis (already non-negative).
// Before opset 13 the input is coerced to 2-D at axis and the trailing
// dims are normalized together (flat); from 13 only the axis is.
func newSoftmax(log bool, shape []int, axis int, flat bool) *softmaxKernel {
	k := &softmaxKernel{log: log, shape: shape, outer: 1, n: 1, inner: 1}
	for i, d := range shape {
		switch {
		case i < axis:
			k.outer *= d
		case i == axis || flat:
			k.n *= d
		default:
			k.inner *= d
		}
	}
	return k
}

func (k *softmaxKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType != onnx.Float32 {
		return nil, errIntUnsupported
	}
	x := in[0].F
	out := onnx.NewFloat(k.shape, nil)
	y := out.F
	for o := 0; o < k.outer; o++ {
		for j := 0; j < k.inner; j++ {
			base := o*k.n*k.inner + j
			m := float32(math.Inf(-1))
			for e := 0; e < k.n; e++ {
				m = max(m, x[base+e*k.inner])
			}
			sum := 0.0
			for e := 0; e < k.n; e++ {
				p := base + e*k.inner
				v := math.Exp(float64(x[p] - m))
				sum += v
				if !k.log {
					y[p] = float32(v)
				}
			}
			if k.log {
				ls := math.Log(sum)
				for e := 0; e < k.n; e++ {
					p := base + e*k.inner
					y[p] = float32(float64(x[p]-m) - ls)
				}
			} else {
				inv := 1 / sum
				for e := 0; e < k.n; e++ {
					p := base + e*k.inner
					y[p] = float32(float64(y[p]) * inv)
				}
			}
		}
	}
	return out, nil
}

// backward: softmax dx = y*(dy - sum(dy*y)); log-softmax dx = dy -
// exp(y)*sum(dy), sums along the normalized elements.
func (k *softmaxKernel) backward(_ int, _ []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(k.shape, nil)
	y, d := out.F, dy.F
	for o := 0; o < k.outer; o++ {
		for j := 0; j < k.inner; j++ {
			base := o*k.n*k.inner + j
			s := 0.0
			for e := 0; e < k.n; e++ {
				p := base + e*k.inner
				if k.log {
					s += float64(d[p])
				} else {
					s += float64(d[p]) * float64(y[p])
				}
			}
			for e := 0; e < k.n; e++ {
				p := base + e*k.inner
				if k.log {
					g.F[p] = float32(float64(d[p]) - math.Exp(float64(y[p]))*s)
				} else {
					g.F[p] = float32(float64(y[p]) * (float64(d[p]) - s))
				}
			}
		}
	}
	return g, nil
}

// buildSoftmax builds Softmax, or LogSoftmax when log is true.
func buildSoftmax(log bool) func(*nodeCtx) error {
	return func(c *nodeCtx) error { return softmaxNode(c, log) }
}

func softmaxNode(c *nodeCtx, log bool) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if x.dtype != onnx.Float32 {
		return c.errorf("%s on integer tensors is not supported", c.n.OpType)
	}
	flat := c.opset < 13
	def := -1
	if flat {
		def = 1
	}
	axis, err := c.attrInt("axis", def)
	if err != nil {
		return err
	}
	rank := len(x.shape)
	if rank == 0 {
		return c.errorf("%s needs an input of rank 1 or more", c.n.OpType)
	}
	a, err := c.normAxis(axis, rank)
	if err != nil {
		return err
	}
	return c.apply(0, newSoftmax(log, x.shape, a, flat), x.shape, onnx.Float32, 0)
}

// mishKernel is Mish (opset 18): x·tanh(softplus(x)), in float64.
func mishKernel() *unaryKernel {
	return &unaryKernel{
		f: f32(func(x float64) float64 { return x * math.Tanh(softplus64(x)) }),
		df: func(x, _ float32) float32 {
			v := float64(x)
			t := math.Tanh(softplus64(v))
			s := 1 / (1 + math.Exp(-v))
			return float32(t + v*s*(1-t*t))
		},
	}
}

// softplus64 is log(1+e^x) without overflow.
func softplus64(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// geluFor reads Gelu's approximate attribute (opset 20): "none" for
// x·Φ(x), "tanh" for the tanh approximation PyTorch also offers.
func geluFor(c *nodeCtx) (*unaryKernel, error) {
	approx, err := c.attrString("approximate", "none")
	if err != nil {
		return nil, err
	}
	switch approx {
	case "none":
		return geluKernel(), nil
	case "tanh":
		return geluTanhKernel(), nil
	}
	return nil, c.errorf("approximate %q is not defined (none, tanh)", approx)
}

func geluKernel() *unaryKernel {
	return &unaryKernel{
		f: f32(func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }),
		df: func(x, _ float32) float32 {
			v := float64(x)
			cdf := 0.5 * (1 + math.Erf(v/math.Sqrt2))
			pdf := math.Exp(-0.5*v*v) / math.Sqrt(2*math.Pi)
			return float32(cdf + v*pdf)
		},
	}
}

// geluTanhC is sqrt(2/π).
var geluTanhC = math.Sqrt(2 / math.Pi)

func geluTanhKernel() *unaryKernel {
	return &unaryKernel{
		f: f32(func(x float64) float64 {
			return 0.5 * x * (1 + math.Tanh(geluTanhC*(x+0.044715*x*x*x)))
		}),
		df: func(x, _ float32) float32 {
			v := float64(x)
			t := math.Tanh(geluTanhC * (v + 0.044715*v*v*v))
			return float32(0.5*(1+t) + 0.5*v*(1-t*t)*geluTanhC*(1+3*0.044715*v*v))
		},
	}
}
