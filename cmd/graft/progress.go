package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/graftml/graft/train"
	"github.com/urfave/cli/v2"
)

// progress is the command line's train.Reporter: notes and one line per
// epoch on stderr, and a redrawn bar between epochs when stderr is a
// terminal.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

// reporter is the command's train.Reporter: nil (nothing) with --quiet.
func reporter(c *cli.Context) train.Reporter {
	if c.Bool("quiet") {
		return nil
	}
	return newProgress(c.App.ErrWriter)
}

// notef prints a note on stderr unless --quiet.
func notef(c *cli.Context, format string, args ...any) {
	if !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, optionsAsFlags(fmt.Sprintf(format, args...)))
	}
}

// shownSkipped is how many skipped files text output names before it
// counts the rest.
const shownSkipped = 5

// printSkipped names the first few skipped files (each entry is the
// file's error, which starts with its path) and counts the rest.
func printSkipped(w io.Writer, prefix string, skipped []string) {
	for i, s := range skipped {
		if i == shownSkipped {
			fmt.Fprintf(w, "%sand %d more (all of them in --json output)\n", prefix, len(skipped)-shownSkipped)
			break
		}
		fmt.Fprintf(w, "%s%s\n", prefix, s)
	}
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

// Note prints a note, with the library's option names (AdaptConfig.Mean)
// written as the flags that set them (--mean).
func (p *progress) Note(msg string) { fmt.Fprintln(p.w, optionsAsFlags(msg)) }

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
