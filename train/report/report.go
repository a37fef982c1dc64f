package report

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train"
	"github.com/graftml/graft/train/dataset"
)

// MaxWrong is how many of the most confidently wrong images a report
// shows.
const MaxWrong = 12

// Report is what report.json holds, and report.html shows.
type Report struct {
	Kind  string `json:"kind"` // "adapt" or "eval"
	Model string `json:"model"`
	// Out is the model adapt wrote ("" for eval, or when nothing was
	// written).
	Out  string `json:"out,omitempty"`
	Data string `json:"data"`
	// Split names the images Eval describes: "test", "val" or "train"
	// for adapt, "data" for eval.
	Split   string   `json:"split,omitempty"`
	Classes []string `json:"classes"`
	// Settings are the options the run used, keys snake_case.
	Settings map[string]any `json:"settings"`
	// Preprocessing is the model's preprocessing (metadata key
	// "preprocessing").
	Preprocessing any `json:"preprocessing,omitempty"`
	// Metadata are the model's metadata_props; values that are JSON are
	// decoded.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Stages are the training stages' curves (adapt).
	Stages []Stage             `json:"stages,omitempty"`
	Eval   *train.EvalResult   `json:"eval,omitempty"`
	Train  *train.EvalResult   `json:"train,omitempty"`
	Wrong  []Wrong             `json:"most_confidently_wrong,omitempty"`
	LRFind *train.LRFindResult `json:"lr_find,omitempty"`
	// Plots maps each plot's id to its PNG file, beside report.html.
	Plots map[string]string `json:"plots"`

	maxPixels int64
}

// Stage is one training stage's history.
type Stage struct {
	Name   string     `json:"name"` // "head" or "fine-tune"
	Epochs []EpochRow `json:"epochs"`
	// Kept is the epoch whose weights the stage kept: the one with the
	// lowest validation loss when there is validation data (as
	// train.EarlyStop restores it), else the last.
	Kept int `json:"kept_epoch"`
}

// EpochRow is one epoch's metrics; the validation ones are null without
// validation data.
type EpochRow struct {
	Epoch     int      `json:"epoch"`
	TrainLoss float64  `json:"train_loss"`
	TrainAcc  float64  `json:"train_acc"`
	ValLoss   *float64 `json:"val_loss"`
	ValAcc    *float64 `json:"val_acc"`
	LR        float64  `json:"lr"`
}

// Wrong is a misclassified image, with its thumbnail's file.
type Wrong struct {
	train.ImagePrediction
	Thumbnail string `json:"thumbnail"`
}

// FromAdapt builds the report of an Adapt call: its settings, the
// adapted model's metadata (or the base model's when nothing was
// written), the curves of each stage, and the scores of the test split
// (else validation, else training) with its worst mistakes, which need
// cfg.KeepImages. For a learning-rate finder run it holds the sweep.
func FromAdapt(cfg train.AdaptConfig, res *train.AdaptResult) (*Report, error) {
	r := &Report{Kind: "adapt", Model: cfg.Model, Out: res.Out, Data: cfg.Data, Classes: res.Classes,
		Settings: settings(withDefaults(cfg)), LRFind: res.LRFind, maxPixels: cfg.MaxPixels}
	meta := cfg.Model
	if res.Out != "" && !res.DryRun && res.LRFind == nil {
		meta = res.Out
	}
	if err := r.readMetadata(meta, cfg.Limits); err != nil {
		return nil, err
	}
	r.Stages = stages(res.History)
	switch {
	case res.Test != nil:
		r.Split, r.Eval = "test", res.Test
	case res.Val != nil:
		r.Split, r.Eval = "val", res.Val
	case res.Train != nil:
		r.Split, r.Eval = "train", res.Train
	}
	if r.Split != "train" {
		r.Train = res.Train
	}
	r.takeEval()
	return r, nil
}

// FromEval builds the report of an EvalModel call on the folder data.
func FromEval(cfg train.InferConfig, data string, res *train.EvalResult) (*Report, error) {
	r := &Report{Kind: "eval", Model: cfg.Model, Data: data, Split: "data", Settings: settings(cfg), Eval: res, maxPixels: cfg.MaxPixels}
	if err := r.readMetadata(cfg.Model, cfg.Limits); err != nil {
		return nil, err
	}
	for _, s := range res.PerClass {
		r.Classes = append(r.Classes, s.Label)
	}
	r.takeEval()
	return r, nil
}

// takeEval moves the per-image predictions out of r.Eval (report.json
// lists only the worst) and picks the most confidently wrong.
func (r *Report) takeEval() {
	if r.Eval == nil {
		return
	}
	ev := *r.Eval
	images := ev.Images
	ev.Images = nil
	r.Eval = &ev
	if r.Train != nil {
		t := *r.Train
		t.Images = nil
		r.Train = &t
	}
	var wrong []train.ImagePrediction
	for _, ip := range images {
		if !ip.Correct {
			wrong = append(wrong, ip)
		}
	}
	// most confident first; ties by path, for a stable report
	for i := 1; i < len(wrong); i++ {
		for j := i; j > 0 && (wrong[j].Prob > wrong[j-1].Prob || wrong[j].Prob == wrong[j-1].Prob && wrong[j].Image < wrong[j-1].Image); j-- {
			wrong[j], wrong[j-1] = wrong[j-1], wrong[j]
		}
	}
	for i, w := range wrong[:min(len(wrong), MaxWrong)] {
		r.Wrong = append(r.Wrong, Wrong{ImagePrediction: w, Thumbnail: fmt.Sprintf("wrong_%02d.png", i+1)})
	}
}

// readMetadata takes the model's metadata_props and preprocessing.
func (r *Report) readMetadata(path string, lim onnx.Limits) error {
	m, err := onnx.ReadFile(path, lim)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.Metadata = map[string]any{}
	for _, p := range m.Proto.MetadataProps {
		var v any
		if json.Unmarshal([]byte(p.Value), &v) == nil {
			r.Metadata[p.Key] = v
		} else {
			r.Metadata[p.Key] = p.Value
		}
	}
	if p, err := dataset.PreprocessFor(m, dataset.Overrides{}); err == nil {
		r.Preprocessing = p
	}
	if v, ok := r.Metadata[onnx.KeyPreprocessing]; ok {
		r.Preprocessing = v
	}
	if len(r.Metadata) == 0 {
		r.Metadata = nil
	}
	return nil
}

// stages splits an Adapt history into its stages: the epoch count
// starts again at 1 when fine-tuning follows the head.
func stages(h []train.EpochMetrics) []Stage {
	var out []Stage
	for i, m := range h {
		if i == 0 || m.Epoch <= h[i-1].Epoch {
			name := "head"
			if len(out) > 0 {
				name = "fine-tune"
			}
			out = append(out, Stage{Name: name})
		}
		s := &out[len(out)-1]
		row := EpochRow{Epoch: m.Epoch, TrainLoss: m.TrainLoss, TrainAcc: m.TrainAcc, LR: m.LR}
		if m.HasVal {
			vl, va := m.ValLoss, m.ValAcc
			row.ValLoss, row.ValAcc = &vl, &va
		}
		s.Epochs = append(s.Epochs, row)
	}
	for i := range out {
		s := &out[i]
		s.Kept = s.Epochs[len(s.Epochs)-1].Epoch
		best := -1
		for j, e := range s.Epochs {
			if e.ValLoss != nil && (best < 0 || *e.ValLoss < *s.Epochs[best].ValLoss) {
				best = j
			}
		}
		if best >= 0 {
			s.Kept = s.Epochs[best].Epoch
		}
	}
	return out
}

// settings lists a config's exported fields with snake_case keys,
// leaving out zero values, the Reporter and functions.
func settings(cfg any) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fv := v.Field(i)
		if !f.IsExported() || f.Name == "Reporter" || fv.Kind() == reflect.Func || fv.Kind() == reflect.Interface || fv.IsZero() {
			continue
		}
		val := fv.Interface()
		if s, ok := val.(fmt.Stringer); ok {
			val = s.String()
		}
		out[snake(f.Name)] = val
	}
	if h, ok := cfg.(train.AdaptConfig); ok {
		out["head"] = h.Head.String()
	}
	return out
}

// snake turns a Go field name into snake_case: MaxPixels -> max_pixels,
// LR -> lr, BackboneLRMult -> backbone_lr_mult.
func snake(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, c := range rs {
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// withDefaults fills the zero fields of cfg that have a default, so the
// report shows the values used.
func withDefaults(cfg train.AdaptConfig) train.AdaptConfig {
	if cfg.Cut == "" {
		cfg.Cut = "auto"
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = train.DefaultEpochs
	}
	if cfg.Batch == 0 {
		cfg.Batch = train.DefaultBatch
	}
	if cfg.LR == 0 {
		cfg.LR = train.DefaultLR
	}
	if cfg.Optimizer == "" {
		cfg.Optimizer = train.DefaultOptimizer
	}
	if cfg.Schedule == "" {
		cfg.Schedule = train.DefaultSchedule
	}
	return cfg
}
