package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train/dataset"
)

// export puts the trained weights and the metadata into the adapted
// model and writes it to an atomic file for Out, which verify checks
// before putting it in place.
func (a *adaptation) export() error {
	if a.cfg.Out == "" {
		return nil
	}
	a.rep.PhaseStart(PhaseExport, 0)
	mp := a.adapted.Proto
	if _, err := surgery.UpdateWeights(mp, a.weights); err != nil {
		return err
	}
	if a.cfg.Softmax {
		if _, err := surgery.AppendSoftmax(mp); err != nil {
			return err
		}
	}
	if a.cfg.OutputName != "" {
		if err := surgery.NameOutput(mp, a.cfg.OutputName); err != nil {
			return onnx.OptionErrorf("AdaptConfig.OutputName", "%w", err)
		}
	}
	if a.cfg.BatchDim != "" {
		if err := surgery.SetBatch(mp, a.cfg.BatchDim); err != nil {
			return onnx.OptionErrorf("AdaptConfig.BatchDim", "%s: %w", a.cfg.Model, err)
		}
	}
	if err := graph.SetOutputsFor(mp, a.cfg.Model, map[string][]int{a.input: a.prep.Shape(1)}); err != nil {
		return err
	}
	if err := a.writeMetadata(); err != nil {
		return err
	}
	data, err := onnx.Encode(mp)
	if err != nil {
		return fmt.Errorf("%s: encoding the model: %w", a.cfg.Out, err)
	}
	// Out was checked before training (checkOut): replacing it is allowed
	f, err := onnx.CreateAtomic(a.cfg.Out, true)
	if err != nil {
		return err
	}
	a.pending = f
	_, err = f.Write(data)
	return err
}

// verify checks the written file reproduces the in-memory model, then
// moves it into place.
func (a *adaptation) verify() error {
	if a.pending == nil {
		return nil
	}
	t0 := time.Now()
	diff, err := a.verifyExport(a.pending.TempName())
	if err != nil {
		return fmt.Errorf("checking the written model: %w", err)
	}
	a.res.ExportMaxDiff = diff
	limit := 1e-4
	if out := a.adapted.Proto.GetGraph().GetOutput(); len(out) > 0 && out[0].GetType().GetTensorType().GetElemType() == 10 {
		// a float16 model: its head is written in float16 (weights and
		// outputs rounded to nearest even, 2^-11 relative each), which the
		// float32 model in memory is not
		limit = 4e-3
	}
	if diff > limit {
		return fmt.Errorf("the written model's outputs differ from the trained model's by %.3g of their magnitude (limit %g); not writing %s", diff, limit, a.cfg.Out)
	}
	if err := a.pending.Commit(); err != nil {
		return err
	}
	// Result.Out and Result.ExportMaxDiff say what was written and how
	// closely it matched; the CLI prints them once, in its summary.
	a.rep.PhaseEnd(PhaseExport, time.Since(t0))
	return nil
}

// verifyExport re-imports the written model and compares its outputs with
// the in-memory model's on up to 8 test (or train) images. It returns the
// largest absolute difference relative to the largest output magnitude.
func (a *adaptation) verifyExport(path string) (float64, error) {
	samples := a.ds.Test
	if len(samples) == 0 {
		samples = a.ds.Train
	}
	samples = samples[:min(8, len(samples))]
	data, kept, _, err := dataset.LoadTensors(samples, a.prep, graph.Threads(), false)
	if err != nil {
		return 0, err
	}
	if len(kept) == 0 {
		return 0, fmt.Errorf("no image to check with")
	}
	m, err := onnx.ReadFile(path, a.cfg.Limits)
	if err != nil {
		return 0, err
	}
	// One image at a time: a batch-1 graph builds and first runs in a
	// tenth of a batch-8 one's time, and outputs do not depend on the
	// batch.
	shape := a.prep.Shape(1)
	gm, err := graph.Build(m, graph.Options{Shapes: map[string][]int{a.input: shape}, Freeze: true})
	if err != nil {
		return 0, err
	}
	got := &onnx.Tensor{}
	size := a.prep.Size()
	for i := range kept {
		out, err := gm.Run(map[string]*onnx.Tensor{a.input: onnx.NewFloat(shape, data[i*size:(i+1)*size])})
		if err != nil {
			return 0, err
		}
		o := out[gm.Outputs[0].Name]
		got.F = append(got.F, o.F...)
		got.Shape = append([]int{i + 1}, o.Shape[min(1, len(o.Shape)):]...)
	}
	// the in-memory model's logits on the same images
	ex := &Examples{X: data, Shape: a.prep.Shape(1)[1:], Labels: make([]int, len(kept))}
	if a.prefix != nil { // the in-memory frozen layers first
		f, err := a.prefix.Run(a.ctx, data, len(kept), ex.Shape)
		if err != nil {
			return 0, err
		}
		ex = &Examples{X: f, Shape: a.prefix.shape, Labels: ex.Labels}
	}
	want, err := a.final.Predict(ex, a.cfg.Batch)
	if err != nil {
		return 0, err
	}
	if a.cfg.Softmax {
		softmaxRows(want)
	}
	if got.Len() != want.Len() {
		return 0, fmt.Errorf("written model gives shape %v, in-memory %v", got.Shape, want.Shape)
	}
	var maxDiff, maxMag float64
	for i := range want.F {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got.F[i]-want.F[i])))
		maxMag = math.Max(maxMag, math.Abs(float64(want.F[i])))
	}
	return maxDiff / math.Max(maxMag, 1e-12), nil
}

// writeMetadata records the labels, the preprocessing and how the model
// was made.
func (a *adaptation) writeMetadata() error {
	mp, cfg, res := a.adapted.Proto, a.cfg, a.res
	labels, _ := json.Marshal(res.Classes)
	surgery.SetMetadata(mp, onnx.KeyLabels, string(labels))
	pm, err := a.prep.Metadata()
	if err != nil {
		return err
	}
	pj, _ := json.Marshal(pm)
	surgery.SetMetadata(mp, onnx.KeyPreprocessing, string(pj))
	training := map[string]any{
		"optimizer": cfg.Optimizer, "lr": cfg.LR, "epochs": cfg.Epochs, "batch": cfg.Batch, "schedule": cfg.Schedule,
		"seed": cfg.Seed, "images": res.Images, "finetune_epochs": cfg.FinetuneEpochs,
	}
	if cfg.FinetuneEpochs > 0 {
		training["backbone_lr_mult"] = cfg.BackboneLRMult
		training["trainable_layers"] = len(res.TrainableLayers)
	}
	if res.Val != nil {
		training["val_accuracy"] = res.Val.Accuracy
	}
	if res.Test != nil {
		training["test_accuracy"] = res.Test.Accuracy
	}
	info := onnx.GraftInfo{Version: onnx.GraftVersion(), BaseSHA256: FileHashBytes(a.src.Raw), Cut: res.Cut, FrozenParams: res.Frozen, TrainableParams: res.Trainable}
	info.Head, _ = json.Marshal(a.spec)
	info.Training, _ = json.Marshal(training)
	gj, _ := json.Marshal(info)
	surgery.SetMetadata(mp, onnx.KeyGraft, string(gj))
	return nil
}

// checkOut refuses a missing folder, the input model, and an existing
// file unless Force (or OverwriteOwn and the file is graft's own).
func (c *AdaptConfig) checkOut() error {
	force := c.Force
	if !force && c.OverwriteOwn {
		if m, err := onnx.ReadFile(c.Out, c.Limits); err == nil {
			if g, err := m.Graft(); err == nil && g != nil {
				force = true
			}
		} else if _, statErr := os.Stat(c.Out); statErr == nil {
			return fmt.Errorf("%s: %w and is not a model graft wrote; not overwriting it", c.Out, onnx.ErrExists)
		}
	}
	// the input model is refused whatever force says
	return onnx.CheckOutPath(c.Model, c.Out, force)
}

// softmaxRows turns logits [N, C] into probabilities, in place.
func softmaxRows(t *onnx.Tensor) {
	c := t.Shape[len(t.Shape)-1]
	for r := 0; r+c <= len(t.F); r += c {
		row := t.F[r : r+c]
		lse := graph.LogSumExp(row)
		for j, v := range row {
			row[j] = float32(math.Exp(float64(v) - lse))
		}
	}
}
