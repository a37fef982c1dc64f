package train

import (
	"fmt"
	"time"
)

// Phase names a stage of a long call such as Adapt.
type Phase string

// The phases Adapt reports.
const (
	PhaseFeatures Phase = "features"  // images through the frozen backbone
	PhaseHead     Phase = "head"      // training the new head
	PhaseFineTune Phase = "fine-tune" // training the head with backbone layers
	PhaseExport   Phase = "export"    // writing and checking the adapted model
)

// Reporter receives the progress of a long call: the start and end of each
// phase, the steps and epochs of training phases, and notes (an image
// skipped, a phase's summary). A command-line program prints them; a
// library caller may collect them or pass nil for none. Calls come from
// the goroutine that made the long call, one at a time.
type Reporter interface {
	// PhaseStart begins a phase of total units (epochs for a training
	// phase, images for feature extraction; 0 when not known).
	PhaseStart(p Phase, total int)
	// Step follows every optimizer step of a training phase.
	Step(p Phase, s StepInfo)
	// Epoch gives an epoch's metrics; epochs is the phase's number of
	// epochs.
	Epoch(p Phase, m EpochMetrics, epochs int)
	// PhaseEnd ends the phase PhaseStart began.
	PhaseEnd(p Phase, elapsed time.Duration)
	// Note is a line of information, without a trailing newline.
	Note(msg string)
}

// NopReporter reports nothing; embed it to implement only some methods.
type NopReporter struct{}

func (NopReporter) PhaseStart(Phase, int)          {}
func (NopReporter) Step(Phase, StepInfo)           {}
func (NopReporter) Epoch(Phase, EpochMetrics, int) {}
func (NopReporter) PhaseEnd(Phase, time.Duration)  {}
func (NopReporter) Note(string)                    {}
func orNop(r Reporter) Reporter {
	if r == nil {
		return NopReporter{}
	}
	return r
}

// notef sends a formatted note.
func notef(r Reporter, format string, args ...any) { r.Note(fmt.Sprintf(format, args...)) }

// reportHook passes a training run's steps and epochs to a Reporter.
type reportHook struct {
	NopHook
	r     Reporter
	phase Phase
}

func (h reportHook) OnStep(s StepInfo) { h.r.Step(h.phase, s) }

func (h reportHook) OnEpoch(f *Fit, m EpochMetrics) error {
	h.r.Epoch(h.phase, m, f.Cfg.Epochs)
	return nil
}
