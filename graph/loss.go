package graph

import (
	"fmt"
	"math"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
)

// xentKernel is softmax cross-entropy averaged over the batch, against
// target distributions (one-hot rows, or smoothed ones). Inputs: logits
// [N, C] and targets [N, C]; output: a scalar. Only the logits take a
// gradient: (softmax(logits) - targets) / N.
type xentKernel struct {
	n, c int
}

func (k *xentKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	logits, targets := in[0].F, in[1].F
	total := 0.0
	for r := 0; r < k.n; r++ {
		row := logits[r*k.c : (r+1)*k.c]
		lse := LogSumExp(row)
		for j, t := range targets[r*k.c : (r+1)*k.c] {
			if t != 0 {
				total -= float64(t) * (float64(row[j]) - lse)
			}
		}
	}
	return onnx.NewFloat(nil, []float32{float32(total / float64(k.n))}), nil
}

func (k *xentKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if i != 0 {
		return nil, fmt.Errorf("cross-entropy has no gradient for its targets")
	}
	logits, targets := in[0].F, in[1].F
	g := onnx.NewFloat(in[0].Shape, nil)
	scale := float64(dy.F[0]) / float64(k.n)
	for r := 0; r < k.n; r++ {
		row := logits[r*k.c : (r+1)*k.c]
		lse := LogSumExp(row)
		for j := range row {
			p := math.Exp(float64(row[j]) - lse)
			g.F[r*k.c+j] = float32((p - float64(targets[r*k.c+j])) * scale)
		}
	}
	return g, nil
}

// LogSumExp is log(sum(exp(row))), computed stably in float64.
func LogSumExp(row []float32) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	s := 0.0
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// CrossEntropy adds the mean softmax cross-entropy of logits [N, C]
// against targets [N, C] (rows of class probabilities) to the graph. The
// result is a gorgonia scalar suitable for gorgonia.Grad.
func CrossEntropy(logits, targets *G.Node) (*G.Node, error) {
	ls, ts := logits.Shape(), targets.Shape()
	if len(ls) != 2 || !ls.Eq(ts) {
		return nil, fmt.Errorf("cross-entropy wants logits and targets of equal shape [N, C], got %v and %v", ls, ts)
	}
	op := &kop{
		k:      &xentKernel{n: ls[0], c: ls[1]},
		opType: "CrossEntropy",
		id:     "loss:" + logits.Name(),
		in:     [][]int{append([]int(nil), ls...), append([]int(nil), ts...)},
		diff:   []bool{true, false},
		scalar: true,
	}
	return G.ApplyOpWithName(op, op.id, logits, targets)
}
