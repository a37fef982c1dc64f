package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/models"
)

// cancelOn cancels a context when its output first contains a string:
// an interruption at a chosen point of the progress, without timing.
type cancelOn struct {
	bytes.Buffer
	at     string
	cancel func()
}

func (w *cancelOn) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.at) {
		w.cancel()
	}
	return n, err
}

// TestAdaptCheckpointResume: adapt --checkpoint interrupted (a cancelled
// context, as SIGINT does) in the fine-tune stage exits 130 without an
// output and says how to resume; adapt --resume then writes the bytes an
// uninterrupted run writes. --resume without --checkpoint is a usage
// error, and another --lr is refused naming it.
func TestAdaptCheckpointResume(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	args := func(out string, more ...string) []string {
		return append([]string{"graft", "adapt", "--model", model, "--data", data, "--out", filepath.Join(dir, out),
			"--epochs", "3", "--finetune-epochs", "2", "--val-split", "0.25", "--seed", "4"}, more...)
	}
	var o, e bytes.Buffer
	if code := run(args("straight.onnx", "-q"), &o, &e); code != 0 {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	want, _ := os.ReadFile(filepath.Join(dir, "straight.onnx"))

	ck := filepath.Join(dir, "ck")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOn{at: "fine-tune: frozen layers", cancel: cancel}
	code := runContext(ctx, args("resumed.onnx", "--checkpoint", ck), &o, stderr)
	if code != exitInterrupted || !strings.Contains(stderr.String(), "--resume") {
		t.Fatalf("interrupted adapt: exit %d, want 130 and a hint to resume; stderr:\n%s", code, stderr.String())
	}
	if m, _ := os.ReadFile(filepath.Join(ck, "checkpoint.json")); !strings.Contains(string(m), `"stage": "fine-tune"`) {
		t.Fatalf("the checkpoint is not in the fine-tune stage:\n%s", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "resumed.onnx")); err == nil {
		t.Fatal("an interrupted adapt wrote its output")
	}
	if _, e, code := graft(t, args("other.onnx", "-q", "--checkpoint", ck, "--resume", "--lr", "0.02")[1:]...); code != 1 || !strings.Contains(e, "AdaptConfig.LR") && !strings.Contains(e, "--lr") {
		t.Fatalf("resume with another --lr: exit %d %s", code, e)
	}
	if _, e, code := graft(t, args("other.onnx", "-q", "--resume")[1:]...); code != exitUsage || !strings.Contains(e, "--checkpoint") {
		t.Fatalf("--resume without --checkpoint: exit %d %s", code, e)
	}
	mustGraft(t, args("resumed.onnx", "-q", "--checkpoint", ck, "--resume")[1:]...)
	if got, _ := os.ReadFile(filepath.Join(dir, "resumed.onnx")); len(want) == 0 || !bytes.Equal(got, want) {
		t.Fatal("the resumed adapt wrote other bytes than an uninterrupted one")
	}
}
