package graph

import (
	"fmt"
	"math/rand"
	"slices"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TrainGraph is a model built for training: its logits feed a
// cross-entropy loss against a targets input, and gorgonia's symbolic
// differentiation gives the gradient of every trainable weight.
type TrainGraph struct {
	*Model
	Logits    *G.Node
	Targets   *G.Node
	Loss      *G.Node
	Trainable []string  // initializer names, in a fixed order
	grads     []*G.Node // gradient nodes, parallel to Trainable
	weights   []*onnx.Tensor
	vm        G.VM
	bn        []BatchNormLayer // layers in training mode
	bnStats   [][2]*onnx.Tensor
}

// TrainOptions extend Options for training.
type TrainOptions struct {
	Options
	// Logits names the tensor the loss reads ([N, C]).
	Logits string
	// Trainable names the initializers that receive gradients.
	Trainable []string
	// Seed seeds the random masks of Dropout nodes, which drop in
	// training graphs.
	Seed int64
	// BNTrain puts the BatchNormalization layers whose scale and bias
	// train into training mode: they normalize with batch statistics and
	// every Step folds those into their running mean and var. Other BN
	// layers keep their running statistics (frozen).
	BNTrain bool
}

// BuildTraining builds src for training.
func BuildTraining(src *onnx.Model, opt TrainOptions) (*TrainGraph, error) {
	o := opt.Options
	o.Outputs = []string{opt.Logits}
	o.training = &trainState{rng: rand.New(rand.NewSource(opt.Seed))}
	m, err := Build(src, o)
	if err != nil {
		return nil, err
	}
	logits := m.Outputs[0].Node
	if logits == nil {
		return nil, fmt.Errorf("%s: logits %q do not depend on any input", src.Path, opt.Logits)
	}
	shape := m.Outputs[0].Shape
	if len(shape) != 2 {
		return nil, fmt.Errorf("%s: logits %q have shape %v; training needs [N, classes]", src.Path, opt.Logits, shape)
	}
	tg := &TrainGraph{Model: m, Logits: logits, Trainable: slices.Clone(opt.Trainable)}
	for _, n := range m.G.AllNodes() {
		if op, ok := n.Op().(*kop); ok {
			op.recycle = true
		}
	}
	tg.Targets = G.NewTensor(m.G, G.Float32, 2, G.WithShape(shape...), G.WithName("graft/targets"))
	if tg.Loss, err = CrossEntropy(logits, tg.Targets); err != nil {
		return nil, err
	}
	weights := m.Weights()
	if opt.BNTrain {
		for _, l := range m.BatchNormLayers() {
			if !slices.Contains(tg.Trainable, l.Scale) && !slices.Contains(tg.Trainable, l.Bias) {
				continue
			}
			if l.BatchCount() < 2 {
				return nil, fmt.Errorf("%s: --bn train: BatchNormalization %q would average batch statistics over %d value per channel; use a batch size of at least 2", src.Path, l.Y, l.BatchCount())
			}
			mean, vr := weights[l.Mean], weights[l.Var]
			if mean == nil || vr == nil {
				return nil, fmt.Errorf("%s: BatchNormalization %q: running mean and var must be initializers to be updated", src.Path, l.Y)
			}
			l.SetTraining(true)
			tg.bn = append(tg.bn, l)
			tg.bnStats = append(tg.bnStats, [2]*onnx.Tensor{mean, vr})
		}
		if len(tg.bn) == 0 {
			return nil, fmt.Errorf("%s: --bn train: no BatchNormalization node has trainable weights (PyTorch exports fold BN into the convolutions in eval mode, leaving none)", src.Path)
		}
	}
	var wrt G.Nodes
	for _, name := range tg.Trainable {
		n, ok := m.Params[name]
		if !ok {
			return nil, fmt.Errorf("%s: trainable weight %q is not used by the graph that computes %q", src.Path, name, opt.Logits)
		}
		wrt = append(wrt, n)
		tg.weights = append(tg.weights, weights[name])
	}
	if len(wrt) > 0 {
		pruneGradients(m.G, wrt)
		if tg.grads, err = gradSafe(tg.Loss, wrt); err != nil {
			return nil, fmt.Errorf("%s: %w", src.Path, err)
		}
	}
	return tg, nil
}

// pruneGradients marks as not differentiable every input of graft's ops
// that depends on no node of wrt, so that backward builds no gradient
// that nobody reads: gorgonia asks an op for the gradients of all its
// differentiable inputs, and its tape runs every node it was given,
// including those it then drops. This spares the gradients of frozen
// weights (and of BatchNormalization's running statistics) and of the
// tensor entering the first trainable layer, which cost as much as the
// weight gradients themselves.
func pruneGradients(g *G.ExprGraph, wrt G.Nodes) {
	need := map[*G.Node]bool{}
	for _, n := range wrt {
		need[n] = true
	}
	sorted, err := G.Sort(g) // outputs first
	if err != nil {
		return // leave every input differentiable
	}
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		for _, c := range children(g, n) {
			if need[c] {
				need[n] = true
				break
			}
		}
	}
	for _, n := range sorted {
		op, ok := n.Op().(*kop)
		if !ok {
			continue
		}
		kids := children(g, n)
		if len(kids) != len(op.diff) {
			continue // not the kop's own inputs: leave it as it was
		}
		for i, c := range kids {
			op.diff[i] = need[c]
		}
	}
}

// children returns n's arguments in order.
func children(g *G.ExprGraph, n *G.Node) []*G.Node {
	var out []*G.Node
	for it := g.From(n.ID()); it.Next(); {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

// gradSafe is G.Grad with the errors gorgonia raises by panicking while
// it builds the backward graph (shape or type mismatches in its Must
// helpers) returned as errors; other panics are bugs and go on.
func gradSafe(loss *G.Node, wrt G.Nodes) (g G.Nodes, err error) {
	defer recoverGorgonia("gradient", &err)
	return G.Grad(loss, wrt...)
}

// Weight returns the tensor of trainable weight i; optimizers update it
// in place.
func (tg *TrainGraph) Weight(i int) *onnx.Tensor { return tg.weights[i] }

// Step runs one forward and backward pass. It returns the mean loss, and
// the logits and gradients, which stay valid until the next Step.
func (tg *TrainGraph) Step(inputs map[string]*onnx.Tensor, targets *onnx.Tensor) (loss float32, logits *onnx.Tensor, grads [][]float32, err error) {
	for _, p := range tg.Inputs {
		t, ok := inputs[p.Name]
		if !ok {
			return 0, nil, nil, fmt.Errorf("input %q is missing", p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return 0, nil, nil, fmt.Errorf("input %q: graph built for shape %v, got %v", p.Name, p.Shape, t.Shape)
		}
		if err := G.Let(p.Node, wrap(t, false)); err != nil {
			return 0, nil, nil, err
		}
	}
	if err := G.Let(tg.Targets, wrap(targets, false)); err != nil {
		return 0, nil, nil, err
	}
	if tg.vm == nil {
		if tg.vm, err = newTapeMachine(tg.G); err != nil {
			return 0, nil, nil, err
		}
	}
	// As in Model.runGraph, no recover around RunAll: the instructions
	// run on gorgonia's goroutine, and kernels fail with errors.
	if err := tg.vm.RunAll(); err != nil {
		return 0, nil, nil, err
	}
	defer tg.vm.Reset()
	loss = float32(*tg.Loss.Value().(*G.F32))
	lt, err := unwrap([]G.Value{tg.Logits.Value()}, [][]int{tg.Outputs[0].Shape})
	if err != nil {
		return 0, nil, nil, err
	}
	for i, l := range tg.bn {
		if err := l.UpdateRunning(tg.bnStats[i][0], tg.bnStats[i][1]); err != nil {
			return 0, nil, nil, err
		}
	}
	for _, g := range tg.grads {
		d, ok := g.Value().(*tensor.Dense)
		if !ok {
			return 0, nil, nil, fmt.Errorf("gradient %s has value %T", g, g.Value())
		}
		grads = append(grads, d.Float32s())
	}
	return loss, lt[0], grads, nil
}

// trainState is what a training build carries: the source of dropout
// masks.
type trainState struct {
	rng *rand.Rand
}

// dropoutKernel zeroes each element with probability ratio and scales the
// others by 1/(1-ratio). A new mask is drawn at every forward pass; the
// backward pass uses the mask of the last one.
type dropoutKernel struct {
	ratio float32
	rng   *rand.Rand
	mask  []float32
}

func (k *dropoutKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	out := onnx.NewFloat(x.Shape, nil)
	if len(k.mask) != len(x.F) {
		k.mask = make([]float32, len(x.F))
	}
	keep := 1 / (1 - k.ratio)
	for i, v := range x.F {
		m := float32(0)
		if k.rng.Float32() >= k.ratio {
			m = keep
		}
		k.mask[i] = m
		out.F[i] = v * m
	}
	return out, nil
}

func (k *dropoutKernel) backward(_ int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(in[0].Shape, nil)
	for i, d := range dy.F {
		g.F[i] = d * k.mask[i]
	}
	return g, nil
}

func buildDropoutTraining(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	ratio, err := c.attrFloat("ratio", 0.5)
	if err != nil {
		return err
	}
	if c.opset >= 12 {
		ratio = 0.5
		if c.optional(1) {
			t, err := c.constInput(1)
			if err != nil {
				return err
			}
			if t.DType != onnx.Float32 || t.Len() != 1 {
				return c.errorf("ratio must be a float scalar")
			}
			ratio = t.F[0]
		}
	}
	if ratio < 0 || ratio >= 1 {
		return c.errorf("ratio %g must be in [0, 1)", ratio)
	}
	if ratio == 0 || x.node == nil {
		c.alias(0, x)
		return nil
	}
	return c.apply(0, &dropoutKernel{ratio: ratio, rng: c.b.m.training.rng}, x.shape, onnx.Float32, 0)
}
