package train

import (
	"fmt"
	"math"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// ImagePrediction is one labelled image's prediction.
type ImagePrediction struct {
	Image string `json:"image"`
	// Label and LabelIndex are the true class; Predicted and
	// PredictedIndex the most likely one.
	Label          string `json:"label"`
	LabelIndex     int    `json:"label_index"`
	Predicted      string `json:"predicted"`
	PredictedIndex int    `json:"predicted_index"`
	// Prob is the predicted class's probability, LabelProb the true
	// class's (softmax of the logits).
	Prob      float64 `json:"prob"`
	LabelProb float64 `json:"label_prob"`
	Correct   bool    `json:"correct"`
}

// ImagePredictions lists each row of logits [N, C] (log-probabilities
// work too) as an ImagePrediction of the image paths[i] labelled
// labels[i]; names labels the classes (missing names are the class
// index).
func ImagePredictions(logits *onnx.Tensor, labels []int, paths, names []string) []ImagePrediction {
	c := logits.Shape[1]
	name := func(k int) string {
		if k < len(names) && names[k] != "" {
			return names[k]
		}
		return fmt.Sprint(k)
	}
	out := make([]ImagePrediction, 0, len(labels))
	for i, y := range labels {
		row := logits.F[i*c : (i+1)*c]
		p := argmaxRow(row)
		lse := graph.LogSumExp(row)
		ip := ImagePrediction{LabelIndex: y, Label: name(y), PredictedIndex: p, Predicted: name(p), Correct: p == y,
			Prob: math.Exp(float64(row[p]) - lse)}
		if y < c {
			ip.LabelProb = math.Exp(float64(row[y]) - lse)
		}
		if i < len(paths) {
			ip.Image = paths[i]
		}
		out = append(out, ip)
	}
	return out
}

// evaluateSplit scores the final net on one split's examples, with each
// image's prediction when asked for (KeepImages, not for the training
// split) and the examples name their images.
func (a *adaptation) evaluateSplit(name string, ex *Examples) (*EvalResult, error) {
	logits, err := a.final.Predict(ex, a.cfg.Batch)
	if err != nil {
		return nil, err
	}
	classes := len(a.ds.Classes)
	if logits == nil {
		return Score(onnx.NewFloat([]int{0, classes}, nil), nil, nil, classes), nil
	}
	ev := Score(logits, ex.Labels, nil, classes)
	if a.cfg.KeepImages && name != "train" && len(ex.Paths) == ex.Len() {
		ev.Images = ImagePredictions(logits, ex.Labels, ex.Paths, a.ds.Classes)
	}
	return ev, nil
}
