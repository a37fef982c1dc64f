package graph

import (
	"fmt"
	"math"
	"slices"

	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
)

// Normalization: BatchNormalization (inference with running statistics,
// and training with batch statistics) and LayerNormalization.

var normOps = map[string]opDef{
	"BatchNormalization": {build: buildBatchNorm, grad: true, weights: []int{1, 2}, optionalOutputs: []int{1, 2, 3, 4}},
	"LayerNormalization": {build: buildLayerNorm, grad: true, since: 17, weights: []int{1, 2}, optionalOutputs: []int{1, 2}},
}

// bnLayout views a BatchNormalization input as [n, c, inner]: c
// parameters (one per channel), each applying to n*inner elements. With
// spatial=0 (opsets 7 and 8) every element of a sample has its own
// parameter: c is the sample size and inner is 1.
type bnLayout struct {
	shape       []int // X
	param       []int // shape of scale, B, mean, var
	n, c, inner int
}

func newBNLayout(shape []int, spatial bool) (bnLayout, error) {
	if len(shape) < 2 {
		return bnLayout{}, fmt.Errorf("BatchNormalization needs an input of rank 2 or more, got shape %v", shape)
	}
	l := bnLayout{shape: append([]int(nil), shape...), n: shape[0], c: shape[1], inner: onnx.NumElems(shape[2:])}
	l.param = []int{shape[1]}
	if !spatial {
		l.param = append([]int(nil), shape[1:]...)
		l.c, l.inner = onnx.NumElems(shape[1:]), 1
	}
	return l, nil
}

// count is the number of elements each parameter applies to.
func (l bnLayout) count() int { return l.n * l.inner }

// stats returns the per-channel mean and (biased) variance of x, in
// float64, computed in two passes.
func (l bnLayout) stats(x []float32) (mean, variance []float64) {
	mean = make([]float64, l.c)
	variance = make([]float64, l.c)
	for b := 0; b < l.n; b++ {
		for ch := 0; ch < l.c; ch++ {
			off := (b*l.c + ch) * l.inner
			s := 0.0
			for _, v := range x[off : off+l.inner] {
				s += float64(v)
			}
			mean[ch] += s
		}
	}
	m := float64(l.count())
	for ch := range mean {
		mean[ch] /= m
	}
	for b := 0; b < l.n; b++ {
		for ch := 0; ch < l.c; ch++ {
			off := (b*l.c + ch) * l.inner
			mu, s := mean[ch], 0.0
			for _, v := range x[off : off+l.inner] {
				d := float64(v) - mu
				s += d * d
			}
			variance[ch] += s
		}
	}
	for ch := range variance {
		variance[ch] /= m
	}
	return mean, variance
}

// affine writes y = x*a[c] + b[c].
func (l bnLayout) affine(x, y []float32, a, b []float64) {
	for n := 0; n < l.n; n++ {
		for ch := 0; ch < l.c; ch++ {
			off := (n*l.c + ch) * l.inner
			ac, bc := a[ch], b[ch]
			yr := y[off : off+l.inner]
			for i, v := range x[off : off+l.inner] {
				yr[i] = float32(float64(v)*ac + bc)
			}
		}
	}
}

// channelSums returns per channel sum(dy) and sum(dy*(x-mu)).
func (l bnLayout) channelSums(x, dy []float32, mu []float64) (sdy, sdyx []float64) {
	sdy = make([]float64, l.c)
	sdyx = make([]float64, l.c)
	for n := 0; n < l.n; n++ {
		for ch := 0; ch < l.c; ch++ {
			off := (n*l.c + ch) * l.inner
			m := mu[ch]
			d := dy[off : off+l.inner]
			s, sx := 0.0, 0.0
			for i, v := range x[off : off+l.inner] {
				g := float64(d[i])
				s += g
				sx += g * (float64(v) - m)
			}
			sdy[ch] += s
			sdyx[ch] += sx
		}
	}
	return sdy, sdyx
}

func f64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// bnKernel is BatchNormalization output 0 over inputs X, scale, B, mean,
// var. In inference mode it is y = (x-mean)*scale/sqrt(var+eps)+B with
// the given running statistics; with batch set it normalizes with the
// statistics of the batch instead (train), and mean and var are unused.
type bnKernel struct {
	l     bnLayout
	eps   float64
	train *bnTrainKernel
	batch bool
	// lastMean and lastVar (biased) are the batch statistics of the last
	// forward pass in batch mode, for running-statistic updates.
	lastMean, lastVar []float64
}

func (k *bnKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if k.batch {
		if len(in) > 0 && in[0].Len() == k.l.shape[0]*k.l.c*k.l.inner {
			k.lastMean, k.lastVar = k.l.stats(in[0].F)
		}
		return k.train.forward(in)
	}
	out := onnx.NewFloat(k.l.shape, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// inPlace: each output element reads only the input element at its
// index.
func (k *bnKernel) inPlace() int {
	if k.batch {
		return -1
	}
	return 0
}

func (k *bnKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	if k.batch {
		r, err := k.forward(in)
		if err != nil {
			return err
		}
		copy(out.F, r.F)
		return nil
	}
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return errIntUnsupported
		}
	}
	// y = x·a + b per channel, a and b worked out in float64 and rounded
	// once; the planes are split over the cores (each value is computed
	// alone, so the split does not change a bit)
	a := make([]float32, k.l.c)
	b := make([]float32, k.l.c)
	scale, bias, mean, vr := in[1].F, in[2].F, in[3].F, in[4].F
	for ch := range a {
		ac := float64(scale[ch]) / math.Sqrt(float64(vr[ch])+k.eps)
		a[ch], b[ch] = float32(ac), float32(float64(bias[ch])-float64(mean[ch])*ac)
	}
	x, y, inner := in[0].F, out.F, k.l.inner
	planesPer := max(1, vec.Chunk/max(inner, 1)) // about a chunk of values per task
	planes := k.l.n * k.l.c
	forEachPar(0, (planes+planesPer-1)/planesPer, func(t int) {
		for p := t * planesPer; p < min(planes, (t+1)*planesPer); p++ {
			ch := p % k.l.c
			vec.ScaleShift(y[p*inner:(p+1)*inner], x[p*inner:(p+1)*inner], a[ch], b[ch])
		}
	})
	return nil
}

func (k *bnKernel) backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if k.batch {
		return k.train.backward(i, in, out, dy)
	}
	scale, mean, vr := in[1].F, f64s(in[3].F), in[4].F
	inv := make([]float64, k.l.c) // 1/sqrt(var+eps)
	for ch := range inv {
		inv[ch] = 1 / math.Sqrt(float64(vr[ch])+k.eps)
	}
	if i == 0 {
		a := make([]float64, k.l.c)
		for ch := range a {
			a[ch] = float64(scale[ch]) * inv[ch]
		}
		g := onnx.NewFloat(k.l.shape, nil)
		k.l.affine(dy.F, g.F, a, make([]float64, k.l.c))
		return g, nil
	}
	sdy, sdyx := k.l.channelSums(in[0].F, dy.F, mean)
	g := onnx.NewFloat(in[i].Shape, nil)
	for ch := range g.F {
		s := float64(scale[ch])
		switch i {
		case 1: // d scale = sum dy*(x-mean)/sqrt(var+eps)
			g.F[ch] = float32(sdyx[ch] * inv[ch])
		case 2:
			g.F[ch] = float32(sdy[ch])
		case 3:
			g.F[ch] = float32(-sdy[ch] * s * inv[ch])
		case 4: // d/dvar (var+eps)^-1/2 = -1/2 (var+eps)^-3/2
			g.F[ch] = float32(-0.5 * sdyx[ch] * s * inv[ch] * inv[ch] * inv[ch])
		}
	}
	return g, nil
}

// bnTrainKernel is BatchNormalization in training mode: it normalizes
// each channel of X (shape [N, C, ...]) with the mean and biased variance
// of that channel over the batch and spatial dimensions, then applies
// scale and bias: y = (x-mean_b)/sqrt(var_b+eps)*scale + B. Its gradients
// flow through the batch statistics.
//
// It does not update running statistics: the caller does, from
// BatchStats (ONNX and PyTorch use running = momentum*running +
// (1-momentum)*batch for the mean; PyTorch updates the running variance
// with the unbiased variance var_b*count/(count-1), ONNX with var_b).
//
// As a kernel its inputs are X, scale, B and optionally the running mean
// and var, which it ignores (their gradients are zero), so it can replace
// an inference BatchNormalization kernel in place.
type bnTrainKernel struct {
	l   bnLayout
	eps float64
}

// newBNTrainKernel returns the training-mode kernel for inputs of
// shape xShape (rank 2 or more; channels on axis 1) and epsilon.
func newBNTrainKernel(xShape []int, epsilon float32) (*bnTrainKernel, error) {
	l, err := newBNLayout(xShape, true)
	if err != nil {
		return nil, err
	}
	return &bnTrainKernel{l: l, eps: float64(epsilon)}, nil
}

// Epsilon is the epsilon the kernel adds to the variance.
func (k *bnTrainKernel) Epsilon() float32 { return float32(k.eps) }

// BatchStats returns the per-channel batch mean and biased variance the
// kernel normalizes x with, and the number of elements per channel they
// were computed from (N times the spatial size).
func (k *bnTrainKernel) BatchStats(x *onnx.Tensor) (mean, variance []float32, count int, err error) {
	if err := k.check(x, "X", k.l.shape); err != nil {
		return nil, nil, 0, err
	}
	m, v := k.l.stats(x.F)
	return f32s(m), f32s(v), k.l.count(), nil
}

// Forward computes y from X, scale and B.
func (k *bnTrainKernel) Forward(x, scale, bias *onnx.Tensor) (*onnx.Tensor, error) {
	return k.forward([]*onnx.Tensor{x, scale, bias})
}

// Backward returns dL/dX (i=0), dL/dscale (i=1) or dL/dB (i=2) given the
// inputs, the output y of Forward and dL/dy.
func (k *bnTrainKernel) Backward(i int, x, scale, bias, y, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if i < 0 || i > 2 {
		return nil, fmt.Errorf("BatchNormalization (training mode) has inputs 0 (X), 1 (scale) and 2 (B), not %d", i)
	}
	if err := k.check(dy, "dy", k.l.shape); err != nil {
		return nil, err
	}
	return k.backward(i, []*onnx.Tensor{x, scale, bias}, y, dy)
}

func (k *bnTrainKernel) check(t *onnx.Tensor, name string, shape []int) error {
	if t == nil || t.DType != onnx.Float32 || !slices.Equal(t.Shape, shape) {
		return fmt.Errorf("BatchNormalization (training mode): %s must be a float32 tensor of shape %v, got %v", name, shape, t)
	}
	return nil
}

func (k *bnTrainKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if len(in) < 3 {
		return nil, fmt.Errorf("BatchNormalization (training mode) needs X, scale and B")
	}
	if err := k.check(in[0], "X", k.l.shape); err != nil {
		return nil, err
	}
	for j, name := range []string{"scale", "B"} {
		if t := in[j+1]; t == nil || t.DType != onnx.Float32 || t.Len() != k.l.c {
			return nil, fmt.Errorf("BatchNormalization (training mode): %s must be a float32 tensor of %d elements, got %v", name, k.l.c, t)
		}
	}
	mean, vr := k.l.stats(in[0].F)
	scale, bias := in[1].F, in[2].F
	a := make([]float64, k.l.c)
	b := make([]float64, k.l.c)
	for ch := range a {
		a[ch] = float64(scale[ch]) / math.Sqrt(vr[ch]+k.eps)
		b[ch] = float64(bias[ch]) - mean[ch]*a[ch]
	}
	out := onnx.NewFloat(k.l.shape, nil)
	k.l.affine(in[0].F, out.F, a, b)
	return out, nil
}

// backward: with xhat = (x-mu)*inv, dB = sum dy, dscale = sum dy*xhat and
// dx = scale*inv/m * (m*dy - sum dy - xhat*sum(dy*xhat)).
func (k *bnTrainKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if i >= 3 { // running mean and var do not affect the output
		return onnx.NewFloat(in[i].Shape, nil), nil
	}
	x := in[0].F
	mean, vr := k.l.stats(x)
	inv := make([]float64, k.l.c)
	for ch := range inv {
		inv[ch] = 1 / math.Sqrt(vr[ch]+k.eps)
	}
	sdy, sdyx := k.l.channelSums(x, dy.F, mean)
	switch i {
	case 1:
		g := onnx.NewFloat(in[1].Shape, nil)
		for ch := range g.F {
			g.F[ch] = float32(sdyx[ch] * inv[ch])
		}
		return g, nil
	case 2:
		return onnx.NewFloat(in[2].Shape, f32s(sdy)), nil
	}
	scale := in[1].F
	m := float64(k.l.count())
	g := onnx.NewFloat(k.l.shape, nil)
	for n := 0; n < k.l.n; n++ {
		for ch := 0; ch < k.l.c; ch++ {
			off := (n*k.l.c + ch) * k.l.inner
			iv, mu := inv[ch], mean[ch]
			f := float64(scale[ch]) * iv
			meanDy := sdy[ch] / m
			c2 := sdyx[ch] * iv * iv / m // sum(dy*xhat)/m, times inv for xhat
			d := dy.F[off : off+k.l.inner]
			gr := g.F[off : off+k.l.inner]
			for j, v := range x[off : off+k.l.inner] {
				gr[j] = float32(f * (float64(d[j]) - meanDy - (float64(v)-mu)*c2))
			}
		}
	}
	return g, nil
}

// bnStatKernel computes a training-mode statistic output of
// BatchNormalization from X: the batch mean or (biased) variance, or,
// with a second input (the running value), the updated running value
// prev*momentum + batch*(1-momentum).
type bnStatKernel struct {
	l        bnLayout
	variance bool
	momentum float64
}

func (k *bnStatKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return nil, errIntUnsupported
		}
	}
	mean, vr := k.l.stats(in[0].F)
	s := mean
	if k.variance {
		s = vr
	}
	out := onnx.NewFloat(k.l.param, nil)
	for ch := range out.F {
		v := s[ch]
		if len(in) > 1 {
			v = float64(in[1].F[ch])*k.momentum + v*(1-k.momentum)
		}
		out.F[ch] = float32(v)
	}
	return out, nil
}

func (k *bnStatKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	w := 1.0 // weight of the batch statistic
	if len(in) > 1 {
		w = 1 - k.momentum
	}
	if i == 1 {
		g := onnx.NewFloat(in[1].Shape, nil)
		for ch, d := range dy.F {
			g.F[ch] = float32(float64(d) * k.momentum)
		}
		return g, nil
	}
	x := in[0].F
	m := float64(k.l.count())
	mean, _ := k.l.stats(x)
	g := onnx.NewFloat(k.l.shape, nil)
	for n := 0; n < k.l.n; n++ {
		for ch := 0; ch < k.l.c; ch++ {
			off := (n*k.l.c + ch) * k.l.inner
			d := float64(dy.F[ch]) * w / m
			gr := g.F[off : off+k.l.inner]
			for j, v := range x[off : off+k.l.inner] {
				if k.variance { // d var/dx = 2(x-mu)/m
					gr[j] = float32(2 * d * (float64(v) - mean[ch]))
				} else {
					gr[j] = float32(d)
				}
			}
		}
	}
	return g, nil
}

func buildBatchNorm(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	momentum, err := c.attrFloat("momentum", 0.9)
	if err != nil {
		return err
	}
	spatial := true
	if c.opset < 9 {
		s, err := c.attrInt("spatial", 1)
		if err != nil {
			return err
		}
		spatial = s != 0
	}
	// Training mode: the training_mode attribute from opset 14; before,
	// the presence of the training outputs (mean, var, saved_mean,
	// saved_var).
	training := false
	if c.opset >= 14 {
		t, err := c.attrInt("training_mode", 0)
		if err != nil {
			return err
		}
		training = t != 0
	} else {
		for i := 1; i < len(c.n.Output); i++ {
			if c.n.Output[i] != "" {
				training = true
			}
		}
	}
	if c.opset >= 14 && len(c.n.Output) > 3 {
		return c.errorf("has %d outputs; from opset 14 BatchNormalization has at most 3", len(c.n.Output))
	}
	l, err := newBNLayout(x.shape, spatial)
	if err != nil {
		return c.errorf("%v", err)
	}
	if x.dtype != onnx.Float32 {
		return c.errorf("BatchNormalization on integer tensors is not supported")
	}
	for i, name := range []string{"scale", "B", "mean", "var"} {
		v, err := c.input(i + 1)
		if err != nil {
			return err
		}
		if v.dtype != onnx.Float32 || onnx.NumElems(v.shape) != l.c {
			return c.errorf("%s (input %d) must be a float tensor of %d elements (shape %v), got %s%v", name, i+1, l.c, l.param, v.dtype, v.shape)
		}
	}
	k := &bnKernel{l: l, eps: float64(eps), train: &bnTrainKernel{l: l, eps: float64(eps)}, batch: training}
	if err := c.apply(0, k, x.shape, onnx.Float32, 0, 1, 2, 3, 4); err != nil {
		return err
	}
	if !training {
		// Inference outputs nothing else; should a model name the running
		// statistics anyway (opset 14+), they are the inputs unchanged.
		for i := 1; i <= 2 && i < len(c.n.Output); i++ {
			if c.outName(i) != "" {
				c.alias(i, c.in[i+2])
			}
		}
		return nil
	}
	m := float64(momentum)
	stats := []struct {
		k      *bnStatKernel
		inputs []int
	}{
		{&bnStatKernel{l: l, momentum: m}, []int{0, 3}},                 // running mean
		{&bnStatKernel{l: l, variance: true, momentum: m}, []int{0, 4}}, // running var
		{&bnStatKernel{l: l}, []int{0}},                                 // saved mean (opset < 14)
		{&bnStatKernel{l: l, variance: true}, []int{0}},                 // saved var (biased)
	}
	for i := 1; i < len(c.n.Output) && i <= 4; i++ {
		if c.outName(i) == "" {
			continue
		}
		s := stats[i-1]
		if err := c.apply(i, s.k, l.param, onnx.Float32, s.inputs...); err != nil {
			return err
		}
	}
	return nil
}

// BatchNormLayer is one BatchNormalization node of a built model whose
// output is computed in the graph (not folded to a constant).
type BatchNormLayer struct {
	// ONNX tensor names of the node's inputs and output 0. Model.Node
	// gives their gorgonia nodes (the running statistics are in
	// Model.Params when they are initializers).
	X, Scale, Bias, Mean, Var, Y string
	// Momentum is the node's momentum attribute (ONNX: running = running
	// * momentum + batch * (1 - momentum)).
	Momentum float64
	k        *bnKernel
}

// BatchCount is the number of values each channel's batch statistics
// average over (N*H*W).
func (l BatchNormLayer) BatchCount() int { return l.k.l.count() }

// UpdateRunning folds the batch statistics of the last training-mode
// forward pass into the running mean and var tensors (updated in place),
// with the node's momentum. As PyTorch does, the running variance takes
// the unbiased batch variance.
func (l BatchNormLayer) UpdateRunning(mean, variance *onnx.Tensor) error {
	k := l.k
	if k.lastMean == nil {
		return fmt.Errorf("BatchNormalization %q: no training-mode forward pass to take statistics from", l.Y)
	}
	if mean.Len() != len(k.lastMean) || variance.Len() != len(k.lastVar) {
		return fmt.Errorf("BatchNormalization %q: running statistics have %d and %d elements, the layer %d channels", l.Y, mean.Len(), variance.Len(), len(k.lastMean))
	}
	n := float64(k.l.count())
	unbias := 1.0
	if n > 1 {
		unbias = n / (n - 1)
	}
	m := l.Momentum
	for ch := range k.lastMean {
		mean.F[ch] = float32(float64(mean.F[ch])*m + k.lastMean[ch]*(1-m))
		variance.F[ch] = float32(float64(variance.F[ch])*m + k.lastVar[ch]*unbias*(1-m))
	}
	return nil
}

// SetTraining selects batch statistics (true, training mode) or the
// running mean and var inputs (false, inference) for the layer's output
// and gradients, on every later run of the graph.
func (l BatchNormLayer) SetTraining(on bool) { l.k.batch = on }

// Training reports whether the layer uses batch statistics.
func (l BatchNormLayer) Training() bool { return l.k.batch }

// BatchNormLayers lists the model's BatchNormalization nodes in graph
// order. A model built from an inference export starts in inference
// mode; SetTraining switches a layer for fine-tuning.
func (m *Model) BatchNormLayers() []BatchNormLayer {
	var out []BatchNormLayer
	for _, n := range m.Src.Proto.Graph.Node {
		if n.OpType != "BatchNormalization" || len(n.Output) == 0 || len(n.Input) < 5 {
			continue
		}
		gn, ok := m.nodes[n.Output[0]]
		if !ok {
			continue
		}
		var k *bnKernel
		if op, ok := gn.Op().(*kop); ok {
			k, _ = op.k.(*bnKernel)
		}
		if k == nil {
			continue
		}
		momentum := 0.9
		for _, a := range n.Attribute {
			if a.Name == "momentum" {
				momentum = float64(a.F)
			}
		}
		out = append(out, BatchNormLayer{
			X: n.Input[0], Scale: n.Input[1], Bias: n.Input[2], Mean: n.Input[3], Var: n.Input[4], Y: n.Output[0],
			Momentum: momentum, k: k,
		})
	}
	return out
}

// lnKernel is LayerNormalization output 0: each of outer rows of n
// elements (the dims from axis on) is normalized with its own mean and
// variance, then scaled and shifted by scale and bias, which broadcast to
// X. Inputs: X, scale and optionally bias.
type lnKernel struct {
	shape       []int
	outer, n    int
	eps         float64
	scale, bias []int   // shapes
	sIdx, bIdx  []int32 // per element of X, its scale / bias element
	hasBias     bool
}

func newLN(shape []int, axis int, eps float32, scale, bias []int, hasBias bool) *lnKernel {
	k := &lnKernel{shape: shape, outer: onnx.NumElems(shape[:axis]), n: onnx.NumElems(shape[axis:]), eps: float64(eps), scale: scale}
	k.sIdx = broadcastIndex(scale, shape)
	if hasBias {
		k.hasBias, k.bias, k.bIdx = true, bias, broadcastIndex(bias, shape)
	}
	return k
}

// rowStats returns the mean and 1/sqrt(var+eps) of each row.
func (k *lnKernel) rowStats(x []float32) (mean, inv []float64) {
	return rowStats(x, k.outer, k.n, k.eps)
}

func rowStats(x []float32, outer, n int, eps float64) (mean, inv []float64) {
	mean = make([]float64, outer)
	inv = make([]float64, outer)
	for o := range mean {
		row := x[o*n : (o+1)*n]
		s := 0.0
		for _, v := range row {
			s += float64(v)
		}
		mu := s / float64(n)
		s = 0
		for _, v := range row {
			d := float64(v) - mu
			s += d * d
		}
		mean[o], inv[o] = mu, 1/math.Sqrt(s/float64(n)+eps)
	}
	return mean, inv
}

func (k *lnKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return nil, errIntUnsupported
		}
	}
	x, s := in[0].F, in[1].F
	mean, inv := k.rowStats(x)
	out := onnx.NewFloat(k.shape, nil)
	for o := 0; o < k.outer; o++ {
		mu, iv := mean[o], inv[o]
		for e := o * k.n; e < (o+1)*k.n; e++ {
			v := (float64(x[e]) - mu) * iv * float64(s[k.sIdx[e]])
			if k.hasBias {
				v += float64(in[2].F[k.bIdx[e]])
			}
			out.F[e] = float32(v)
		}
	}
	return out, nil
}

// backward: with g = dy*scale and xhat the normalized x, per row
// dx = inv/n * (n*g - sum g - xhat*sum(g*xhat)); dscale = sum dy*xhat and
// dbias = sum dy over the elements each broadcasts to.
func (k *lnKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x, s, d := in[0].F, in[1].F, dy.F
	mean, inv := k.rowStats(x)
	switch i {
	case 2:
		g := onnx.NewFloat(k.bias, nil)
		for e, v := range d {
			g.F[k.bIdx[e]] += v
		}
		return g, nil
	case 1:
		acc := make([]float64, onnx.NumElems(k.scale))
		for o := 0; o < k.outer; o++ {
			for e := o * k.n; e < (o+1)*k.n; e++ {
				acc[k.sIdx[e]] += float64(d[e]) * (float64(x[e]) - mean[o]) * inv[o]
			}
		}
		return onnx.NewFloat(k.scale, f32s(acc)), nil
	}
	g := onnx.NewFloat(k.shape, nil)
	n := float64(k.n)
	for o := 0; o < k.outer; o++ {
		mu, iv := mean[o], inv[o]
		sg, sgx := 0.0, 0.0
		for e := o * k.n; e < (o+1)*k.n; e++ {
			gv := float64(d[e]) * float64(s[k.sIdx[e]])
			sg += gv
			sgx += gv * (float64(x[e]) - mu) * iv
		}
		for e := o * k.n; e < (o+1)*k.n; e++ {
			gv := float64(d[e]) * float64(s[k.sIdx[e]])
			xh := (float64(x[e]) - mu) * iv
			g.F[e] = float32(iv / n * (n*gv - sg - xh*sgx))
		}
	}
	return g, nil
}

// lnStatKernel computes LayerNormalization's Mean (inv false) or
// InvStdDev (inv true) output: one value per row, shaped like X with the
// normalized dims set to 1.
type lnStatKernel struct {
	shape, out []int
	outer, n   int
	eps        float64
	inv        bool
}

func (k *lnStatKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType != onnx.Float32 {
		return nil, errIntUnsupported
	}
	mean, inv := rowStats(in[0].F, k.outer, k.n, k.eps)
	if k.inv {
		return onnx.NewFloat(k.out, f32s(inv)), nil
	}
	return onnx.NewFloat(k.out, f32s(mean)), nil
}

// backward: d mean/dx = 1/n; d inv/dx = -inv^3 (x-mean)/n.
func (k *lnStatKernel) backward(_ int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0].F
	mean, inv := rowStats(x, k.outer, k.n, k.eps)
	g := onnx.NewFloat(k.shape, nil)
	n := float64(k.n)
	for o := 0; o < k.outer; o++ {
		d := float64(dy.F[o]) / n
		iv3 := inv[o] * inv[o] * inv[o]
		for e := o * k.n; e < (o+1)*k.n; e++ {
			if k.inv {
				g.F[e] = float32(-d * iv3 * (float64(x[e]) - mean[o]))
			} else {
				g.F[e] = float32(d)
			}
		}
	}
	return g, nil
}

func buildLayerNorm(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	scale, err := c.input(1)
	if err != nil {
		return err
	}
	if x.dtype != onnx.Float32 || scale.dtype != onnx.Float32 {
		return c.errorf("LayerNormalization on integer tensors is not supported")
	}
	axis, err := c.attrInt("axis", -1)
	if err != nil {
		return err
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	rank := len(x.shape)
	if rank == 0 {
		return c.errorf("LayerNormalization needs an input of rank 1 or more")
	}
	a, err := c.normAxis(axis, rank)
	if err != nil {
		return err
	}
	fits := func(s []int) bool {
		b, ok := broadcastShape(x.shape, s)
		return ok && slices.Equal(b, x.shape)
	}
	if !fits(scale.shape) {
		return c.errorf("Scale shape %v does not broadcast to the input shape %v", scale.shape, x.shape)
	}
	var biasShape []int
	hasBias := false
	inputs := []int{0, 1}
	if c.optional(2) {
		b := c.in[2]
		if b.dtype != onnx.Float32 || !fits(b.shape) {
			return c.errorf("B shape %v does not broadcast to the input shape %v", b.shape, x.shape)
		}
		biasShape, hasBias = b.shape, true
		inputs = append(inputs, 2)
	}
	if err := c.apply(0, newLN(x.shape, a, eps, scale.shape, biasShape, hasBias), x.shape, onnx.Float32, inputs...); err != nil {
		return err
	}
	statShape := append([]int(nil), x.shape...)
	for i := a; i < rank; i++ {
		statShape[i] = 1
	}
	for i := 1; i <= 2 && i < len(c.n.Output); i++ {
		if c.outName(i) == "" {
			continue
		}
		k := &lnStatKernel{shape: x.shape, out: statShape, outer: onnx.NumElems(x.shape[:a]), n: onnx.NumElems(x.shape[a:]), eps: float64(eps), inv: i == 2}
		if err := c.apply(i, k, statShape, onnx.Float32, 0); err != nil {
			return err
		}
	}
	return nil
}
