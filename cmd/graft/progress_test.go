package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/graftml/graft/models"
	"github.com/graftml/graft/train"
)

// TestAdaptPlainProgress runs the sample adaptation with stderr not a
// terminal: plain lines only (no carriage return, no escape code), one
// per phase, and the whole output fits on one screen.
func TestAdaptPlainProgress(t *testing.T) {
	t.Chdir(t.TempDir())
	out, errs, code := graft(t, "adapt")
	if code != 0 {
		t.Fatalf("graft adapt: exit %d\n%s", code, errs)
	}
	if strings.ContainsAny(errs, "\r\x1b") {
		t.Errorf("stderr is not a terminal, yet progress has carriage returns or escape codes:\n%q", errs)
	}
	for _, want := range []string{"features 480/480 images done in", "head 500/500 steps done in", "steps/s", "epoch 100/100 loss", "eval 480/480 images done"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if n := strings.Count(out, "\n") + strings.Count(errs, "\n"); n > 40 {
		t.Errorf("the sample run prints %d lines, more than a screen (40):\n%s%s", n, errs, out)
	}
	if _, errs, _ := graft(t, "adapt", "--quiet"); errs != "" {
		t.Errorf("--quiet printed:\n%s", errs)
	}
}

// TestPlainLinesEveryFewSeconds: a phase longer than the interval gets
// running lines with rate and ETA, then its end line.
func TestPlainLinesEveryFewSeconds(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	p.every = 20 * time.Millisecond
	p.PhaseStart(train.PhaseFeatures, 100)
	p.Progress(train.PhaseFeatures, 10)
	time.Sleep(70 * time.Millisecond)
	p.Progress(train.PhaseFeatures, 100)
	p.Note("a note")
	p.PhaseEnd(train.PhaseFeatures, 100*time.Millisecond)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want running lines, the note and an end line, got:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], "features 10/100 images (10%)") || !strings.Contains(lines[0], "images/s, ETA ") {
		t.Errorf("running line %q lacks count, rate or ETA", lines[0])
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "features 100/100 images done in 0.10s (1000 images/s)") {
		t.Errorf("end line %q", last)
	}
	if strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Errorf("plain output has control characters: %q", buf.String())
	}
}

// TestAdaptProgressBarOnTerminal runs the sample adaptation with stderr
// a pseudo-terminal: bars are drawn in place, and each ends at 100% on a
// line of its own.
func TestAdaptProgressBarOnTerminal(t *testing.T) {
	t.Chdir(t.TempDir())
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160})
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once tty is closed
		got <- b
	}()
	var out bytes.Buffer
	code := run([]string{"graft", "adapt"}, &out, tty)
	tty.Close()
	raw := <-got
	errs := strings.ReplaceAll(string(raw), "\r\n", "\n") // the terminal's own newline mapping
	if code != 0 {
		t.Fatalf("graft adapt: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "\r") || !strings.Contains(errs, "|") {
		t.Fatalf("no bar drawn on a terminal:\n%q", errs)
	}
	if !strings.HasSuffix(errs, "\n") {
		t.Errorf("output does not end with a newline: %q", errs[max(0, len(errs)-200):])
	}
	bars := 0
	for _, line := range strings.Split(errs, "\n") {
		if !strings.Contains(line, "\r") {
			continue
		}
		// what the terminal shows is the text after the last carriage return
		seg := strings.Split(line, "\r")
		final := strings.TrimSpace(seg[len(seg)-1])
		for final == "" && len(seg) > 1 {
			seg = seg[:len(seg)-1]
			final = strings.TrimSpace(seg[len(seg)-1])
		}
		if strings.Contains(final, "%") {
			bars++
			if !strings.Contains(final, "100%") {
				t.Errorf("a bar ends short of 100%%: %q", final)
			}
		}
	}
	if bars < 3 {
		t.Errorf("want bars for features, head and eval, found %d:\n%q", bars, errs)
	}
	if !strings.Contains(errs, "head epoch 100/100 loss") {
		t.Errorf("the head's bar lacks its loss:\n%q", errs)
	}
}

// TestAdaptReportAndFindLR checks --report writes the report, and
// --find-lr prints a suggestion and plots it.
func TestAdaptReportAndFindLR(t *testing.T) {
	t.Chdir(t.TempDir())
	mustGraft(t, "adapt", "--quiet", "--report", "rep")
	for _, f := range []string{"report.html", "report.json", "loss.png", "confusion.png", "wrong_01.png"} {
		if _, err := os.Stat(filepath.Join("rep", f)); err != nil {
			t.Error(err)
		}
	}
	out := mustGraft(t, "adapt", "--quiet", "--find-lr", "--report", "lr")
	if !strings.Contains(out, "suggested    --lr ") {
		t.Errorf("no suggestion:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join("lr", "lr_find.png")); err != nil {
		t.Error(err)
	}
	// eval --json gains per-image predictions
	_, data, err := models.Extract(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Images []train.ImagePrediction `json:"images"`
	}
	if err := json.Unmarshal([]byte(mustGraft(t, "eval", "graft-sample.onnx", "--data", data, "--json", "--quiet", "--report", "ev")), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Images) != 400 || ev.Images[0].Image == "" || ev.Images[0].Label == "" {
		t.Errorf("eval --json: %d images, first %+v", len(ev.Images), ev.Images[0])
	}
	if _, err := os.Stat(filepath.Join("ev", "report.html")); err != nil {
		t.Error(err)
	}
}
