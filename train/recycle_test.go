package train

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
)

// TestStepAfterStep: a training graph writes each step's activations into
// the buffers of the step before, so a step must give the same bits
// whatever steps came before it: the second of two steps on different
// batches is compared with the same step on a fresh net.
func TestStepAfterStep(t *testing.T) {
	m := loadManifest(t)
	p := m.Parts["finetune"]
	src, err := onnx.ReadFile(filepath.Join(refDir, p.Model), onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	x, err := onnx.ReadTensorFile(filepath.Join(refDir, p.X))
	if err != nil {
		t.Fatal(err)
	}
	ex := &Examples{X: x.F, Shape: x.Shape[1:], Labels: p.Labels}
	var trainable []string
	for _, g := range p.Groups {
		trainable = append(trainable, g.Params...)
	}
	b := p.Batch
	if ex.Len() < 2*b {
		t.Fatalf("the reference has %d examples, want 2 batches of %d", ex.Len(), b)
	}
	classes := slices.Max(p.Labels) + 1
	step := func(net *Net, first int) (float32, []float32, [][]float32) {
		t.Helper()
		tg, err := net.trainGraph(b, ex.Shape)
		if err != nil {
			t.Fatal(err)
		}
		idx := make([]int, b)
		for i := range idx {
			idx[i] = first + i
		}
		xb, err := ex.batch(idx, nil)
		if err != nil {
			t.Fatal(err)
		}
		in, err := net.feed(context.Background(), xb)
		if err != nil {
			t.Fatal(err)
		}
		tgt := onnx.NewFloat([]int{b, classes}, nil)
		fillTargets(tgt, idx, ex.Labels, classes, 0)
		loss, logits, grads, err := tg.Step(in, tgt)
		if err != nil {
			t.Fatal(err)
		}
		gs := make([][]float32, len(grads))
		for i, g := range grads {
			gs[i] = slices.Clone(g)
		}
		return loss, slices.Clone(logits.F), gs
	}
	used, err := NewNet(src, p.Input, p.Logits, trainable, 0)
	if err != nil {
		t.Fatal(err)
	}
	step(used, 0)
	loss, logits, grads := step(used, b)
	fresh, err := NewNet(src, p.Input, p.Logits, trainable, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, wantLogits, wantGrads := step(fresh, b)
	same := func(a, b []float32) bool {
		return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
	}
	if math.Float32bits(loss) != math.Float32bits(wantLoss) || !same(logits, wantLogits) {
		t.Fatalf("a second step gave loss %v, a fresh net's %v (logits the same: %v)", loss, wantLoss, same(logits, wantLogits))
	}
	for i := range grads {
		if !same(grads[i], wantGrads[i]) {
			t.Errorf("gradient of %s differs after a first step", trainable[i])
		}
	}
}
