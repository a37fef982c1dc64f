package train

import (
	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// ClassScore holds one class's precision, recall and F1.
type ClassScore struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// EvalResult summarizes predictions against labels.
type EvalResult struct {
	N        int          `json:"n"`
	Accuracy float64      `json:"accuracy"`
	Loss     float64      `json:"loss"`
	PerClass []ClassScore `json:"per_class"`
	// Confusion[i][j] counts examples of class i predicted as class j.
	Confusion [][]int `json:"confusion"`
	// Images holds each image's prediction, in the order scored, when
	// the examples name their images (EvalModel; Adapt with KeepImages).
	Images []ImagePrediction `json:"images,omitempty"`
}

// Evaluate runs net over ex in batches of batch examples (DefaultBatch
// when batch <= 0) and scores its logits; classes <= 0 means as many
// classes as the net has outputs.
func Evaluate(net *Net, ex *Examples, batch, classes int) (*EvalResult, error) {
	logits, err := net.Predict(ex, batch)
	if err != nil {
		return nil, err
	}
	if logits == nil {
		return Score(onnx.NewFloat([]int{0, max(classes, 0)}, nil), nil, nil, max(classes, 0)), nil
	}
	if classes <= 0 {
		classes = logits.Shape[1]
	}
	return Score(logits, ex.Labels, nil, classes), nil
}

// Score compares logits [N, C] (or probabilities) with labels. names
// labels the classes (may be nil). Loss is the mean cross-entropy of
// softmax(logits).
func Score(logits *onnx.Tensor, labels []int, names []string, classes int) *EvalResult {
	c := logits.Shape[1]
	r := &EvalResult{N: len(labels), Confusion: make([][]int, classes)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, classes)
	}
	correct := 0
	for i, y := range labels {
		row := logits.F[i*c : (i+1)*c]
		p := argmaxRow(row)
		if p == y {
			correct++
		}
		if y < classes && p < classes {
			r.Confusion[y][p]++
		}
		r.Loss -= float64(row[y]) - graph.LogSumExp(row)
	}
	if r.N > 0 {
		r.Accuracy = float64(correct) / float64(r.N)
		r.Loss /= float64(r.N)
	}
	for k := 0; k < classes; k++ {
		tp, pred, support := r.Confusion[k][k], 0, 0
		for j := 0; j < classes; j++ {
			pred += r.Confusion[j][k]
			support += r.Confusion[k][j]
		}
		s := ClassScore{Support: support}
		if k < len(names) {
			s.Label = names[k]
		}
		if pred > 0 {
			s.Precision = float64(tp) / float64(pred)
		}
		if support > 0 {
			s.Recall = float64(tp) / float64(support)
		}
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		r.PerClass = append(r.PerClass, s)
	}
	return r
}
