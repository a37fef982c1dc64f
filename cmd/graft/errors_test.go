package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train"
)

func TestErrorText(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{onnx.OptionErrorf("AdaptConfig.LR", "learning rate %g must be positive", -1.0), "--lr: learning rate -1 must be positive"},
		{fmt.Errorf("m.onnx: %w", onnx.OptionErrorf("AdaptConfig.Head.Dropout", "applies to an MLP head (AdaptConfig.Head.Hidden)")), "m.onnx: --dropout: applies to an MLP head (--head)"},
		{onnx.OptionErrorf("Out", "an output path is required"), "--out: an output path is required"},
		{onnx.OptionErrorf("Elsewhere.Field", "kept"), "Elsewhere.Field: kept"},
		{fmt.Errorf("a.onnx: %w; not overwriting it", onnx.ErrExists), "a.onnx: file exists; not overwriting it (use --force to overwrite it)"},
		{&onnx.FormatError{File: "m.onnx", Msg: "too big", Err: onnx.ErrTooLarge}, "m.onnx: invalid ONNX model: too big (raise --max-memory to allow it)"},
		{fmt.Errorf("epoch 1: %w", train.ErrDiverged), "epoch 1: training diverged (lower --lr or check the data)"},
		{errors.New("Outputs stay"), "Outputs stay"},
	}
	for _, c := range cases {
		if got := errorText(c.err); got != c.want {
			t.Errorf("errorText(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestEveryOptionHasAFlag: every option name the libraries the CLI calls
// put in an OptionError has a flag in optionFlags, so no library name
// reaches the command line.
func TestEveryOptionHasAFlag(t *testing.T) {
	re := regexp.MustCompile(`"((?:Adapt|Infer|Convert|Run|Features)Config\.[A-Za-z.]+|PredictImages\.k)"`)
	files, _ := filepath.Glob("../../train/*.go")
	files = append(files, "../../graph/convert.go", "../../graph/run.go")
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found++
			if _, ok := optionFlags[m[1]]; !ok {
				t.Errorf("%s: option %s has no flag in optionFlags", f, m[1])
			}
		}
	}
	if found < 10 {
		t.Fatalf("found only %d option names; has the code moved?", found)
	}
}

func TestVersion(t *testing.T) {
	out := mustGraft(t, "--version")
	if want := "graft version " + onnx.GraftVersion(); strings.TrimSpace(out) != want {
		t.Fatalf("--version printed %q, want %q", out, want)
	}
}
