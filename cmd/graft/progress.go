package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/graftml/graft/train"
)

// progress is the command line's train.Reporter: notes and one line per
// epoch on stderr, and a redrawn bar between epochs when stderr is a
// terminal.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) PhaseStart(train.Phase, int)         {}
func (p *progress) PhaseEnd(train.Phase, time.Duration) {}
func (p *progress) Note(msg string)                     { fmt.Fprintln(p.w, msg) }

func (p *progress) Step(phase train.Phase, s train.StepInfo) {
	if !p.terminal {
		return
	}
	if time.Since(p.last) < 100*time.Millisecond && s.Done != s.TotalSteps {
		return
	}
	p.last = time.Now()
	const width = 24
	fill := width * s.Done / max(1, s.TotalSteps)
	eta := time.Duration(0)
	if s.Done > 0 {
		eta = time.Duration(float64(s.Elapsed) / float64(s.Done) * float64(s.TotalSteps-s.Done))
	}
	fmt.Fprintf(p.w, "\r%s epoch %d/%d step %d/%d [%s%s] loss %.4f acc %.3f ETA %s ", phase, s.Epoch, s.Epochs, s.Step, s.StepsInEpoch,
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), s.Loss, s.Acc, eta.Round(time.Second))
}

func (p *progress) Epoch(phase train.Phase, m train.EpochMetrics, epochs int) {
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
	line := fmt.Sprintf("%s epoch %d/%d: loss %.4f acc %.3f", phase, m.Epoch, epochs, m.TrainLoss, m.TrainAcc)
	if m.HasVal {
		line += fmt.Sprintf(", val loss %.4f acc %.3f", m.ValLoss, m.ValAcc)
	}
	fmt.Fprintf(p.w, "%s, lr %.3g, %.2fs\n", line, m.LR, m.Seconds)
}
