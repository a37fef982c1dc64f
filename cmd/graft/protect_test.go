package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/models"
)

// TestInputModelNeverOverwritten: convert and adapt refuse to write their
// input model, by the same path, a hard link or a symbolic link, with
// --force too, and leave it byte-for-byte as it was.
func TestInputModelNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	c := fixture(t, "conv_bn_pool_fc")
	in := filepath.Join(dir, "in.onnx")
	orig, err := os.ReadFile(c.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	hard, sym := filepath.Join(dir, "hard.onnx"), filepath.Join(dir, "sym.onnx")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(in, sym); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{in, hard, sym} {
		for _, force := range []bool{false, true} {
			args := []string{"convert", in, "--out", out, "--cut", "auto"}
			if force {
				args = append(args, "--force")
			}
			_, errs, code := graft(t, args...)
			if code != 1 || !strings.Contains(errs, "is the input model") {
				t.Errorf("graft %s: exit %d, %q", strings.Join(args, " "), code, errs)
			}
		}
	}
	if got, _ := os.ReadFile(in); !bytes.Equal(got, orig) {
		t.Fatal("the input model changed")
	}
	m2, data, err := models.Extract(filepath.Join(dir))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(m2)
	_, errs, code := graft(t, "adapt", "--model", m2, "--data", data, "--out", m2, "--force", "--epochs", "1", "-q")
	if code != 1 || !strings.Contains(errs, "is the input model") {
		t.Errorf("adapt --out MODEL --force: exit %d, %q", code, errs)
	}
	if got, _ := os.ReadFile(m2); !bytes.Equal(got, b) {
		t.Fatal("adapt changed its input model")
	}
}
