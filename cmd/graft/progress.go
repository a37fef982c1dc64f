package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/graftml/graft/train"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// reporter is the command's train.Reporter: nil (nothing) with --quiet.
func reporter(c *cli.Context) train.Reporter {
	if p := quietOr(c); p != nil {
		return p
	}
	return nil // an untyped nil: a nil *progress would be a non-nil Reporter
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

// plainEvery is how often a phase's progress is printed as a plain line
// when stderr is not a terminal.
const plainEvery = 5 * time.Second

// progress is the command line's train.Reporter (and
// train.ProgressReporter): notes as lines on stderr, and for each phase
// one progress display. On a terminal that is a bar
// (github.com/schollz/progressbar), redrawn in place, with a training
// stage's epoch, loss and accuracy beside it; otherwise a plain line
// every plainEvery and one at the end of the phase, with rate and ETA,
// and never a carriage return or escape code.
type progress struct {
	w        io.Writer
	terminal bool
	every    time.Duration

	mu     sync.Mutex
	cur    *phaseState // the phase running, or nil
	bar    *progressbar.ProgressBar
	ticker *time.Ticker
	stop   chan struct{}
	wg     sync.WaitGroup
}

// phaseState is the progress of one phase.
type phaseState struct {
	name   train.Phase
	unit   string
	total  int // 0: unknown
	done   int
	start  time.Time
	suffix string // a training stage's last epoch or step metrics
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, every: plainEvery}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
	}
	return p
}

// unitOf names what a phase counts.
func unitOf(ph train.Phase) string {
	switch ph {
	case train.PhaseHead, train.PhaseFineTune, train.PhaseFindLR:
		return "steps"
	}
	return "images"
}

func (p *progress) PhaseStart(ph train.Phase, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked(0)
	s := &phaseState{name: ph, unit: unitOf(ph), start: time.Now()}
	// A training phase announces epochs; its bar counts steps, known at
	// the first step.
	if s.unit != "steps" || ph == train.PhaseFindLR {
		s.total = total
	}
	p.cur = s
	every := p.every
	if p.terminal {
		p.newBar()
		if s.total > 0 || s.unit == "steps" {
			return // redrawn as it advances
		}
		every = 200 * time.Millisecond // a spinner, redrawn by tick
	}
	p.stop = make(chan struct{})
	p.ticker = time.NewTicker(every)
	p.wg.Add(1)
	go p.tick(p.ticker, p.stop)
}

// tick prints the running phase's plain line every p.every.
func (p *progress) tick(t *time.Ticker, stop chan struct{}) {
	defer p.wg.Done()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			switch {
			case p.bar != nil:
				p.bar.Add(0)
			case p.cur != nil:
				fmt.Fprintln(p.w, p.cur.line(time.Now()))
			}
			p.mu.Unlock()
		}
	}
}

// newBar starts the running phase's bar: a counting bar when its total is
// known, a spinner with the elapsed time when not.
func (p *progress) newBar() {
	s := p.cur
	max := s.total
	if max <= 0 {
		max = -1
	}
	w := p.w
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(s.describe()),
		progressbar.OptionSetWidth(24),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		// tick redraws a spinner; the bar's own goroutine would outlive it
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	if max > 0 || s.unit == "steps" {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(s.unit),
			progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
	}
	p.bar = progressbar.NewOptions(max, opts...)
}

func (s *phaseState) describe() string {
	if s.suffix == "" {
		return string(s.name)
	}
	return string(s.name) + " " + s.suffix
}

// set records done units and redraws the bar.
func (p *progress) set(done int) {
	p.cur.done = done
	if p.bar != nil {
		p.bar.Describe(p.cur.describe())
		if p.cur.total > 0 {
			p.bar.Set(min(done, p.cur.total))
		}
	}
}

func (p *progress) Progress(ph train.Phase, done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.name != ph {
		return
	}
	p.set(done)
}

func (p *progress) Step(ph train.Phase, s train.StepInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.name != ph {
		return
	}
	if p.cur.total == 0 && s.TotalSteps > 0 {
		p.cur.total = s.TotalSteps
		if p.bar != nil {
			p.bar.ChangeMax(s.TotalSteps)
		}
	}
	p.cur.suffix = fmt.Sprintf("epoch %d/%d loss %.4f acc %.3f", s.Epoch, s.Epochs, s.Loss, s.Acc)
	p.set(s.Done)
}

func (p *progress) Epoch(ph train.Phase, m train.EpochMetrics, epochs int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.name != ph {
		return
	}
	s := fmt.Sprintf("epoch %d/%d loss %.4f acc %.3f", m.Epoch, epochs, m.TrainLoss, m.TrainAcc)
	if m.HasVal {
		s += fmt.Sprintf(" val loss %.4f acc %.3f", m.ValLoss, m.ValAcc)
	}
	p.cur.suffix = s
	p.set(p.cur.done)
}

func (p *progress) PhaseEnd(ph train.Phase, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.cur.name == ph {
		p.endLocked(elapsed)
	}
}

// endLocked ends the running phase, if any: the bar's final state and a
// newline on a terminal, the end line otherwise.
func (p *progress) endLocked(elapsed time.Duration) {
	s := p.cur
	if s == nil {
		return
	}
	p.cur = nil
	if p.stop != nil {
		close(p.stop)
		p.ticker.Stop()
		p.mu.Unlock() // the ticker goroutine may wait for the lock
		p.wg.Wait()
		p.mu.Lock()
		p.stop, p.ticker = nil, nil
	}
	if p.bar != nil && s.total <= 0 && s.unit != "steps" {
		// a spinner: cleared, and the end line printed in its place
		p.bar.Clear()
		p.bar = nil
	}
	if p.bar != nil {
		b := p.bar
		p.bar = nil
		if s.total > 0 && s.done >= s.total {
			b.Finish() // renders the full bar, then OnCompletion's newline
		} else {
			b.RenderBlank()
			b.Exit() // keeps what was done (an early stop), then the newline
		}
		return
	}
	if elapsed <= 0 {
		elapsed = time.Since(s.start)
	}
	fmt.Fprintln(p.w, s.endLine(elapsed))
}

// Note prints a line, above the bar when one is drawn, with the
// library's option names (AdaptConfig.Mean) written as the flags that set
// them (--mean).
func (p *progress) Note(msg string) {
	msg = optionsAsFlags(msg)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
		fmt.Fprintln(p.w, msg)
		p.bar.RenderBlank()
		return
	}
	fmt.Fprintln(p.w, msg)
}

// line is the plain progress line of a running phase.
func (s *phaseState) line(now time.Time) string {
	el := now.Sub(s.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s", s.name)
	if s.total > 0 {
		fmt.Fprintf(&b, " %d/%d %s (%d%%)", s.done, s.total, s.unit, 100*s.done/s.total)
	} else if s.done > 0 {
		fmt.Fprintf(&b, " %d %s", s.done, s.unit)
	}
	fmt.Fprintf(&b, ", %s elapsed", fmtDur(el))
	if s.done > 0 && el > 0 {
		rate := float64(s.done) / el.Seconds()
		fmt.Fprintf(&b, ", %s %s/s", fmtRate(rate), s.unit)
		if s.total > 0 {
			eta := time.Duration(float64(s.total-s.done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %s", fmtDur(eta))
		}
	}
	if s.suffix != "" {
		fmt.Fprintf(&b, ", %s", s.suffix)
	}
	return b.String()
}

// endLine is the plain line that ends a phase.
func (s *phaseState) endLine(elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", s.name)
	if s.total > 0 {
		fmt.Fprintf(&b, " %d/%d %s", s.done, s.total, s.unit)
	} else if s.done > 0 {
		fmt.Fprintf(&b, " %d %s", s.done, s.unit)
	}
	fmt.Fprintf(&b, " done in %s", fmtDur(elapsed))
	if s.done > 0 && elapsed > 0 {
		fmt.Fprintf(&b, " (%s %s/s)", fmtRate(float64(s.done)/elapsed.Seconds()), s.unit)
	}
	if s.suffix != "" {
		fmt.Fprintf(&b, ", %s", s.suffix)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func fmtRate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// phase runs f as one phase of unknown length on r (which may be nil),
// for the commands whose work has no steps to count (convert).
func phase(r *progress, name train.Phase, f func() error) error {
	if r == nil {
		return f()
	}
	t0 := time.Now()
	r.PhaseStart(name, 0)
	err := f()
	r.PhaseEnd(name, time.Since(t0))
	return err
}
