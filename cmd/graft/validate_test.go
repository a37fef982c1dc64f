package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graftml/graft/models"
)

// blockedData extracts the sample model and data, with a named pipe
// among the training images: any read of the data blocks on it forever,
// so a command that returns has not touched the images.
func blockedData(t *testing.T) (model, data string) {
	t.Helper()
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	classes, _ := filepath.Glob(filepath.Join(data, "train", "*"))
	if len(classes) == 0 {
		t.Fatal("sample data has no train classes")
	}
	if err := syscall.Mkfifo(filepath.Join(classes[0], "blocker.png"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return model, data
}

// graftNoHang runs graft in a goroutine: a generous deadline detects a
// command that blocked on the data (a hang, not a slow run).
func graftNoHang(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	type result struct {
		out, err string
		code     int
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(append([]string{"graft"}, args...), &out, &errb)
		done <- result{out.String(), errb.String(), code}
	}()
	select {
	case r := <-done:
		return r.out, r.err, r.code
	case <-time.After(2 * time.Minute):
		t.Fatalf("graft %s did not return: it read the data before checking its flags", strings.Join(args, " "))
	}
	return "", "", 0
}

// TestFlagsCheckedFirst: every bad flag value and every combination that
// makes no sense is a usage error (exit 2, one hint line) naming the flag
// as typed, returned before any image is read.
func TestFlagsCheckedFirst(t *testing.T) {
	model, data := blockedData(t)
	out := filepath.Join(t.TempDir(), "out.onnx")
	base := []string{"adapt", "--model", model, "--data", data, "--out", out}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--optimizer", "adamm"}, `--optimizer "adamm": use adam, adamw or sgd (did you mean adam?)`},
		{[]string{"--schedule", "cosin"}, `--schedule "cosin": use constant, cosine or step (did you mean cosine?)`},
		{[]string{"--bn", "trian"}, `--bn "trian": use frozen or train (did you mean train?)`},
		{[]string{"--lr", "0"}, "--lr 0: must be above 0"},
		{[]string{"--lr", "-0.1"}, "--lr -0.1: must be above 0"},
		{[]string{"--lr", "abc"}, `--lr "abc": not a number`},
		{[]string{"--epochs", "0"}, "--epochs 0: must be at least 1"},
		{[]string{"--head-epochs", "0"}, "--head-epochs 0: must be at least 1"},
		{[]string{"--batch", "0"}, "--batch 0: must be at least 1"},
		{[]string{"--batch", "-4"}, "--batch -4: must be at least 1"},
		{[]string{"--warmup", "-1"}, "--warmup -1: must be at least 0"},
		{[]string{"--warmup", "101"}, "--warmup 101: warmup is longer than the 100 head epochs"},
		{[]string{"--warmup", "3", "--finetune-epochs", "2"}, "longer than the 2 fine-tuning epochs"},
		{[]string{"--optimizer", "sgd", "--momentum", "1"}, "--momentum 1: must be in [0, 1)"},
		{[]string{"--optimizer", "sgd", "--momentum", "-0.5"}, "--momentum -0.5: must be in [0, 1)"},
		{[]string{"--momentum", "0.9"}, "--momentum applies to --optimizer sgd, not adam"},
		{[]string{"--optimizer", "sgd", "--nesterov"}, "--nesterov needs --momentum above 0"},
		{[]string{"--weight-decay", "-1"}, "--weight-decay -1: must be 0 or more"},
		{[]string{"--backbone-lr-mult", "-1", "--finetune-epochs", "1"}, "--backbone-lr-mult -1: must be above 0"},
		{[]string{"--backbone-lr-mult", "0", "--finetune-epochs", "1"}, "--backbone-lr-mult 0: must be above 0"},
		{[]string{"--backbone-lr-mult", "0.5"}, "--backbone-lr-mult applies to fine-tuning"},
		{[]string{"--head", "mlp:64", "--dropout", "1"}, "--dropout 1: must be in [0, 1)"},
		{[]string{"--dropout", "0.2"}, "--dropout applies to an MLP head"},
		{[]string{"--head", "tree"}, `--head "tree": use linear or mlp:SIZE`},
		{[]string{"--label-smoothing", "1"}, "--label-smoothing 1: must be in [0, 1)"},
		{[]string{"--val-split", "1.5"}, "--val-split 1.5: must be in [0, 1)"},
		{[]string{"--patience", "-2"}, "--patience -2: must be at least 0"},
		{[]string{"--finetune-epochs", "-1"}, "--finetune-epochs -1: must be at least 0"},
		{[]string{"--unfreeze-last", "2"}, "--unfreeze-last unfreezes backbone layers to fine-tune; give --finetune-epochs N"},
		{[]string{"--trainable", "conv"}, "--trainable selects backbone weights to fine-tune"},
		{[]string{"--trainable", "(", "--finetune-epochs", "1"}, `--trainable "(": error parsing regexp`},
		{[]string{"--bn", "train"}, "--bn train applies to fine-tuning"},
		{[]string{"--bn", "train", "--finetune-epochs", "1", "--batch", "1"}, "--bn train needs --batch 2 or more"},
		{[]string{"--resize", "0"}, "--resize 0: must be at least 1"},
		{[]string{"--mean", "0.5,0.5"}, "--mean 0.5,0.5: give 1 or 3 numbers"},
		{[]string{"--std", "0.2,0,0.2"}, "--std 0.2,0,0.2: every value must be a finite number above 0"},
		{[]string{"--batch-dim", "0"}, `--batch-dim "0": use dynamic or a positive number`},
		{[]string{"--output-name", " "}, "--output-name: give a name for the output"},
		{[]string{"--log", "metrics.txt"}, "--log metrics.txt: use a .csv or .jsonl file"},
		{[]string{"--max-memory", "lots"}, `--max-memory: "lots" is not a size`},
		{[]string{"--memory-budget", "-1GiB"}, `--memory-budget: "-1GiB" is not a size`},
		{[]string{"--input-shape", "x=1x3xHx7"}, `--input-shape "x=1x3xHx7": "H" is not a positive dimension`},
		{[]string{"--input-shape", "1x3x8x8"}, `--input-shape "1x3x8x8": use NAME=1x3x224x224`},
		{[]string{"--threads", "0"}, `--threads 0: must be at least 1`},
		{[]string{"extra"}, `adapt takes no positional arguments (got "extra")`},
		{[]string{"--epohcs", "5"}, "unknown flag --epohcs (did you mean --epochs?)"},
		{[]string{"--out"}, "--out needs a value"},
		{[]string{"--data-only"}, "give both --model and --data (or neither, for the shipped sample)"},
	}
	for _, tc := range cases {
		args := append(append([]string{}, base...), tc.args...)
		if tc.args[0] == "--data-only" {
			args = []string{"adapt", "--data", data}
		}
		stdout, stderr, code := graftNoHang(t, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitUsage || !strings.Contains(stderr, tc.want) || len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'graft adapt --help'") {
			t.Errorf("graft adapt %s: exit %d, stderr %q; want exit 2, %q and one hint line", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
		if stdout != "" {
			t.Errorf("graft adapt %s: printed %q on stdout", strings.Join(tc.args, " "), stdout)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused command wrote its output")
	}
}

// TestInferFlagsCheckedFirst: eval and predict check their flags before
// they read the model or an image.
func TestInferFlagsCheckedFirst(t *testing.T) {
	model, data := blockedData(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"eval", model, "--data", data, "--batch", "0"}, "--batch 0: must be at least 1"},
		{[]string{"eval", model, "--data", data, "--labels", "a"}, "--labels: a is neither a file of class names nor a comma-separated list"},
		{[]string{"eval", model, "--data", data, "--labels", "a,,b"}, "--labels a,,b: a label is empty"},
		{[]string{"eval", model, "--data", data, "--labels", "a,b,a"}, `--labels: "a" appears twice`},
		{[]string{"eval", model}, "eval: give the images to score with --data DIR"},
		{[]string{"eval", model, "--data", data, "--resize", "-3"}, "--resize -3: must be at least 1"},
		{[]string{"predict", model, data, "--top", "0"}, "--top 0: must be at least 1"},
		{[]string{"predict", model, data, "--batch", "-1"}, "--batch -1: must be at least 1"},
		{[]string{"predict", model}, "predict: give MODEL.onnx and at least one IMAGE or folder"},
		{[]string{"predict", model, data, "--tpo", "2"}, "unknown flag --tpo (did you mean --top?)"},
	}
	for _, tc := range cases {
		_, stderr, code := graftNoHang(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("graft %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}

func TestConvertFlagsChecked(t *testing.T) {
	m := fixture(t, "conv_bn_pool_fc").ModelPath
	out := filepath.Join(t.TempDir(), "o.onnx")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"convert", m}, "--out: give the file to write"},
		{[]string{"convert", m, "--out", out, "--head", "1"}, "--head 1: must be at least 2"},
		{[]string{"convert", m, "--out", out, "--batch-dim", "x"}, `--batch-dim "x": use dynamic or a positive number`},
		{[]string{"convert", m, "--out", out, "--batch-dim", "1", "--batch", "2"}, "--batch is the old name of --batch-dim; give one of them"},
		{[]string{"convert", m, "--out", out, "--labels", "a,b"}, "--labels names the classes of a new head; give --head N"},
		{[]string{"convert", m, "--out", out, "--head", "3", "--labels", "a,b"}, "--labels: 2 names for a head of 3 classes"},
		{[]string{"convert", m, "--out", out, "--cut", "auto", "--softmax"}, "--softmax applies to a classifier; --cut without --head writes a feature extractor"},
		{[]string{"convert", m, "--out", out, "--seed", "x"}, `--seed "x": not a whole number`},
	}
	for _, tc := range cases {
		_, stderr, code := graft(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("graft %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args[1:], " "), code, stderr, tc.want)
		}
	}
}

func TestSuggestions(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"adpat"}, `unknown command "adpat" (did you mean adapt?)`},
		{[]string{"inspct", "m.onnx"}, `unknown command "inspct" (did you mean inspect?)`},
		{[]string{"convert", "--sofmax", "m.onnx"}, "unknown flag --sofmax (did you mean --softmax?)"},
		{[]string{"eval", "--lables", "a,b", "m.onnx"}, "unknown flag --lables (did you mean --labels?)"},
		{[]string{"completion", "bsh"}, `completion "bsh": use bash, zsh or fish (did you mean bash?)`},
		{[]string{"inspect"}, "inspect: expected one MODEL.onnx argument, got 0"},
		{[]string{"ops", "extra"}, `ops takes no arguments (got "extra")`},
	}
	for _, tc := range cases {
		stdout, stderr, code := graft(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 2 {
			t.Errorf("graft %s: exit %d, stderr %q; want exit 2, %q and one hint line", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
		if strings.Contains(stdout+stderr, "USAGE") || strings.Contains(stderr, "did you mean predict") {
			t.Errorf("graft %s: printed the usage or a far-fetched suggestion: %q", strings.Join(tc.args, " "), stdout+stderr)
		}
	}
	if strings.Contains(mustGraft(t), "USAGE") == false {
		t.Error("graft with no command does not print its usage")
	}
}

// TestInterrupted: a cancelled context (what SIGINT and SIGTERM do) exits
// with status 130 and writes nothing.
func TestInterrupted(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.onnx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := runContext(ctx, []string{"graft", "adapt", "-q", "--model", model, "--data", data, "--out", out, "--epochs", "1"}, &stdout, &stderr)
	if code != exitInterrupted || !strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("cancelled adapt: exit %d, stderr %q; want 130", code, stderr.String())
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an interrupted adapt wrote its output")
	}
}

// TestHelp: every command's help has a description with examples and
// shows each default once.
func TestHelp(t *testing.T) {
	for _, cmd := range newApp(nil, nil).Commands {
		out := mustGraft(t, cmd.Name, "--help")
		if cmd.Name != "ops" && !strings.Contains(out, "Examples:") {
			t.Errorf("graft %s --help has no examples", cmd.Name)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "(default: ") > 1 {
				t.Errorf("graft %s --help shows a default twice: %s", cmd.Name, line)
			}
			if strings.Contains(line, "(default: false)") {
				t.Errorf("graft %s --help: %s", cmd.Name, line)
			}
		}
		for _, flag := range []string{"--quiet, -q"} {
			if !strings.Contains(out, flag) {
				t.Errorf("graft %s --help lacks %s", cmd.Name, flag)
			}
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := mustGraft(t, "completion", sh); !strings.Contains(out, "graft") {
			t.Errorf("completion %s: %q", sh, out)
		}
	}
}

// snakeCase reports the first JSON key of v (decoded JSON) that is not
// snake_case. The maps whose keys are data (op names, metadata keys,
// opset domains) are not looked into.
func snakeCase(v any) string {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if strings.ToLower(k) != k || strings.Contains(k, "-") {
				return k
			}
			if k == "ops" || k == "metadata" || k == "opsets" {
				continue
			}
			if bad := snakeCase(x); bad != "" {
				return bad
			}
		}
	case []any:
		for _, x := range v {
			if bad := snakeCase(x); bad != "" {
				return bad
			}
		}
	}
	return ""
}

// TestJSONKeys: every command's --json output has snake_case keys.
func TestJSONKeys(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	feats := filepath.Join(dir, "f.onnx")
	for _, args := range [][]string{
		{"inspect", model},
		{"ops"},
		{"convert", model, "--out", feats, "--cut", "auto"},
		{"eval", model, "--data", filepath.Join(data, "test"), "--labels", "Ankle_boot,Bag,Sandal,Sneaker,x,y"},
		{"predict", model, filepath.Join(data, "test", "Bag")},
		{"adapt", "--model", model, "--data", data, "--dry-run"},
		{"features", "--model", model, "--data", data, "--cache", filepath.Join(dir, "cache"), "--shard", "0/4"},
	} {
		var v any
		if err := json.Unmarshal([]byte(mustGraft(t, append(args, "--json", "-q")...)), &v); err != nil {
			t.Fatalf("%s --json: %v", args[0], err)
		}
		if bad := snakeCase(v); bad != "" {
			t.Errorf("%s --json: key %q is not snake_case", args[0], bad)
		}
	}
}
