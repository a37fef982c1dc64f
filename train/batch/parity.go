package batch

import (
	"fmt"
	"math"
	"math/rand"
	"slices"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// Pair names a tensor of the source model and the tensor of the output
// model that should hold the same values.
type Pair struct{ Source, Output string }

// ParityResult is what Parity measured.
type ParityResult struct {
	// Rel is the largest |output - source| over every pair, relative to
	// the largest |source| of that pair (the worst pair's ratio).
	Rel   float64
	Worst string // the source tensor of the worst pair
	Batch int    // the random batch's size
}

// Parity runs src and out on the same random batch (normal values, drawn
// from seed) and compares the pairs. renameIn maps source input names to
// the output's. The batch size is the output's fixed batch, else the
// source's, else 2. The output model is built with its graph outputs
// too, so every part of it is run.
func Parity(src, out *onnx.Model, pairs []Pair, renameIn map[string]string, seed int64) (*ParityResult, error) {
	batch := 2
	if b := fixedBatch(src); b > 0 {
		batch = b
	}
	if b := fixedBatch(out); b > 0 {
		batch = b
	}
	srcNames := make([]string, len(pairs))
	outNames := make([]string, len(pairs))
	for i, p := range pairs {
		srcNames[i], outNames[i] = p.Source, p.Output
	}
	for _, o := range out.Proto.Graph.Output {
		if !slices.Contains(outNames, o.Name) {
			outNames = append(outNames, o.Name)
		}
	}
	shapes := map[string][]int{}
	for _, in := range src.Inputs() {
		s, err := graph.InputShape(in, batch)
		if err != nil {
			return nil, fmt.Errorf("source input %q: %w", in.Name, err)
		}
		s[0] = batch
		shapes[in.Name] = s
	}
	// the source as written: without Freeze, which would fold its
	// BatchNormalizations the way --fold-bn does and hide what the recipe
	// changed
	sm, err := graph.Build(src, graph.Options{Batch: batch, Shapes: shapes, Outputs: srcNames})
	if err != nil {
		return nil, fmt.Errorf("building the source at batch %d: %w", batch, err)
	}
	om, err := graph.Build(out, graph.Options{Freeze: true, Batch: batch, Outputs: outNames})
	if err != nil {
		return nil, fmt.Errorf("building the output at batch %d: %w", batch, err)
	}
	rng := rand.New(rand.NewSource(seed))
	srcFeeds := map[string]*onnx.Tensor{}
	outFeeds := map[string]*onnx.Tensor{}
	for _, p := range sm.Inputs {
		t := onnx.NewFloat(p.Shape, nil)
		for i := range t.F {
			t.F[i] = float32(rng.NormFloat64())
		}
		srcFeeds[p.Name] = t
		name := p.Name
		if n, ok := renameIn[name]; ok {
			name = n
		}
		outFeeds[name] = t
	}
	sr, err := sm.Run(srcFeeds)
	if err != nil {
		return nil, fmt.Errorf("running the source: %w", err)
	}
	or, err := om.Run(outFeeds)
	if err != nil {
		return nil, fmt.Errorf("running the output: %w", err)
	}
	res := &ParityResult{Batch: batch}
	for _, p := range pairs {
		rel, err := relDiff(or[p.Output], sr[p.Source])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", p.Source, err)
		}
		if !(rel <= res.Rel) || res.Worst == "" {
			res.Rel, res.Worst = rel, p.Source
		}
	}
	return res, nil
}

// fixedBatch is the fixed first dimension of the model's first input, or 0.
func fixedBatch(m *onnx.Model) int {
	ins := m.Inputs()
	if len(ins) == 0 {
		return 0
	}
	dims := ins[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) == 0 {
		return 0
	}
	return int(dims[0].GetDimValue())
}

// relDiff is max |got - want| / max |want| (the absolute difference when
// want is all zeros); NaN where exactly one is NaN counts as infinite.
func relDiff(got, want *onnx.Tensor) (float64, error) {
	if got == nil || want == nil {
		return 0, fmt.Errorf("missing tensor")
	}
	if !slices.Equal(got.Shape, want.Shape) || got.DType != want.DType || got.Len() != want.Len() {
		return 0, fmt.Errorf("output has shape %v (%s), source %v (%s)", got.Shape, got.DType, want.Shape, want.DType)
	}
	var maxDiff, ref float64
	at := func(t *onnx.Tensor, i int) float64 {
		if t.DType == onnx.Int64 {
			return float64(t.I[i])
		}
		return float64(t.F[i])
	}
	for i := range want.Len() {
		g, w := at(got, i), at(want, i)
		if !math.IsNaN(w) {
			ref = max(ref, math.Abs(w))
		}
		switch {
		case math.IsNaN(g) && math.IsNaN(w), g == w:
		case math.IsNaN(g) || math.IsNaN(w):
			maxDiff = math.Inf(1)
		default:
			maxDiff = max(maxDiff, math.Abs(g-w))
		}
	}
	if ref == 0 {
		return maxDiff, nil
	}
	return maxDiff / ref, nil
}
