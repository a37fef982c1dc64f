package train

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/graftml/graft/onnx"
)

// NopHook does nothing; embed it to implement only some methods.
type NopHook struct{}

func (NopHook) OnStep(StepInfo)                  {}
func (NopHook) OnEpoch(*Fit, EpochMetrics) error { return nil }
func (NopHook) OnEnd(*Fit) error                 { return nil }

// EarlyStop ends training when the validation loss has not improved for
// Patience epochs, and restores the weights of the best epoch at the end.
// Without validation data it does nothing.
type EarlyStop struct {
	NopHook
	Patience  int
	best      float64
	bestEpoch int
	saved     [][]float32
}

func (e *EarlyStop) OnEpoch(f *Fit, m EpochMetrics) error {
	if !m.HasVal {
		return nil
	}
	if e.bestEpoch == 0 || m.ValLoss < e.best {
		e.best, e.bestEpoch = m.ValLoss, m.Epoch
		e.saved = e.saved[:0]
		for _, name := range f.Net.Trainable {
			e.saved = append(e.saved, append([]float32(nil), f.Net.Weights[name].F...))
		}
		return nil
	}
	if e.Patience > 0 && m.Epoch-e.bestEpoch >= e.Patience {
		f.Stopped = fmt.Sprintf("early stop at epoch %d: validation loss has not improved for %d epochs since epoch %d (%.4f)", m.Epoch, e.Patience, e.bestEpoch, e.best)
		return ErrStop
	}
	return nil
}

func (e *EarlyStop) OnEnd(f *Fit) error {
	if e.bestEpoch == 0 || len(f.History) == 0 || e.bestEpoch == f.History[len(f.History)-1].Epoch {
		return nil
	}
	for i, name := range f.Net.Trainable {
		copy(f.Net.Weights[name].F, e.saved[i])
	}
	if f.Stopped == "" {
		f.Stopped = fmt.Sprintf("restored the weights of epoch %d (best validation loss %.4f)", e.bestEpoch, e.best)
	} else {
		f.Stopped += fmt.Sprintf("; restored the weights of epoch %d", e.bestEpoch)
	}
	return nil
}

// MetricsLog writes per-epoch metrics to a .csv or .jsonl file. Like every
// file graft writes, it goes through onnx.AtomicFile: lines accumulate in
// a temporary file beside path (which can be followed while training
// runs), and Close puts the whole log in place.
type MetricsLog struct {
	NopHook
	Stage string
	f     *onnx.AtomicFile
	csv   bool
}

// NewMetricsLog starts the log at path, replacing a file there on Close;
// its extension picks the format.
func NewMetricsLog(path, stage string) (*MetricsLog, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".csv" && ext != ".jsonl" {
		return nil, fmt.Errorf("metrics log %s: use a .csv or .jsonl file", path)
	}
	f, err := onnx.CreateAtomic(path, true)
	if err != nil {
		return nil, fmt.Errorf("metrics log: %w", err)
	}
	l := &MetricsLog{Stage: stage, f: f, csv: ext == ".csv"}
	if l.csv {
		fmt.Fprintln(f, "stage,epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds")
	}
	return l, nil
}

// SetStage labels the following lines (e.g. "head", "finetune").
func (l *MetricsLog) SetStage(s string) { l.Stage = s }

func (l *MetricsLog) OnEpoch(_ *Fit, m EpochMetrics) error {
	var err error
	if l.csv {
		val := ","
		if m.HasVal {
			val = fmt.Sprintf("%g,%g", m.ValLoss, m.ValAcc)
		}
		_, err = fmt.Fprintf(l.f, "%s,%d,%g,%g,%s,%g,%.3f\n", l.Stage, m.Epoch, m.TrainLoss, m.TrainAcc, val, m.LR, m.Seconds)
	} else {
		rec := struct {
			Stage string `json:"stage"`
			EpochMetrics
		}{l.Stage, m}
		var b []byte
		b, err = json.Marshal(rec)
		if err == nil {
			_, err = fmt.Fprintf(l.f, "%s\n", b)
		}
	}
	return err
}

// Close puts the log in place.
func (l *MetricsLog) Close() error { return l.f.Commit() }
