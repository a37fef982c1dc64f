package main

import (
	"bytes"
	"errors"
	"image"
	pngenc "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
)

// TestMain lets TestBadInputsNoPanic run this test binary as the graft
// program itself (GRAFT_TEST_RUN_MAIN=1), so that a panic reaches stderr
// and the exit status the way a user sees them.
func TestMain(m *testing.M) {
	if os.Getenv("GRAFT_TEST_RUN_MAIN") == "1" {
		os.Exit(run(append([]string{"graft"}, os.Args[1:]...), os.Stdout, os.Stderr))
	}
	if os.Getenv("GRAFT_TEST_SPIN") == "1" {
		spinForever() // TestSettle's busy process
	}
	os.Exit(m.Run())
}

// TestBadInputsNoPanic runs graft, as a separate process, on bad files of
// every kind it reads: each must fail with exit status 1 (or 2) and a
// message naming the file, never a panic or a goroutine dump.
func TestBadInputsNoPanic(t *testing.T) {
	dir := t.TempDir()
	c := fixture(t, "conv_bn_pool_fc")
	good, err := os.ReadFile(c.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model := func(name string, edit func(*onnx.ModelProto)) string {
		t.Helper()
		m, err := onnx.Decode(good, name, "", onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		edit(m.Proto)
		data, err := onnx.Encode(m.Proto)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, data)
	}
	truncated := write("truncated.onnx", good[:len(good)*2/3])
	garbage := write("garbage.onnx", []byte("\x00\xff\x13garbage, not protobuf\xfe"))
	huge := model("huge.onnx", func(mp *onnx.ModelProto) {
		mp.Graph.Initializer[0].Dims = []int64{1 << 20, 1 << 20, 4} // 16 TiB of float32
	})
	unsupported := model("unsupported.onnx", func(mp *onnx.ModelProto) {
		mp.Graph.Node[0].OpType = "NonMaxSuppression"
	})
	npyIn := write("in.npy", onnx.EncodeNpy(onnx.NewFloat(c.Sets[0].Inputs[0].Shape, nil)))
	badNpy := write("bad.npy", append([]byte("\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (9,), }"), 1, 2, 3))
	overflowNpy := write("overflow.npy", []byte("\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }"))

	png := tinyPNG(t)
	write("empty/a/1.png", png)
	if err := os.MkdirAll(filepath.Join(dir, "empty", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	corrupt := write("corrupt/b/1.png", append(png[:len(png)/2:len(png)/2], "broken"...))
	write("corrupt/a/1.png", png)
	write("corrupt/a/2.jpg", []byte("\xff\xd8\xff\xe0 not really a jpeg"))
	out := filepath.Join(dir, "out.onnx")

	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"truncated model", []string{"inspect", truncated}, "truncated.onnx"},
		{"garbage model", []string{"inspect", garbage}, "garbage.onnx"},
		{"garbage model, run", []string{"run", garbage, "--input", npyIn}, "garbage.onnx"},
		{"huge declared dims", []string{"inspect", huge}, "above the 4294967296-byte limit"},
		{"huge declared dims, convert", []string{"convert", huge, "--out", out}, "huge.onnx"},
		{"unsupported op", []string{"run", unsupported, "--input", npyIn}, "NonMaxSuppression"},
		{"unsupported op, adapt", []string{"adapt", "--model", unsupported, "--data", filepath.Join(dir, "corrupt"), "--out", out, "--epochs", "1"}, "NonMaxSuppression"},
		{"missing image", []string{"predict", c.ModelPath, filepath.Join(dir, "missing.png")}, "missing.png"},
		{"corrupt image", []string{"predict", c.ModelPath, corrupt}, "1.png"},
		{"empty class folder", []string{"adapt", "--model", c.ModelPath, "--data", filepath.Join(dir, "empty"), "--out", out, "--epochs", "1"}, filepath.Join("empty", "b")},
		{"empty class folder, eval", []string{"eval", c.ModelPath, "--data", filepath.Join(dir, "empty")}, filepath.Join("empty", "b")},
		{"corrupt images, strict", []string{"eval", c.ModelPath, "--data", filepath.Join(dir, "corrupt"), "--strict"}, "corrupt"},
		{"bad .npy", []string{"run", c.ModelPath, "--input", badNpy}, "bad.npy"},
		{"overflowing .npy", []string{"run", c.ModelPath, "--input", overflowNpy}, "overflow.npy"},
		{"missing model", []string{"inspect", filepath.Join(dir, "missing.onnx")}, "missing.onnx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), "GRAFT_TEST_RUN_MAIN=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			errs := stderr.String()
			t.Logf("exit %d: %s", code, errs)
			if strings.Contains(errs, "panic:") || strings.Contains(errs, "goroutine ") {
				t.Fatalf("graft %s panicked:\n%s", strings.Join(tc.args, " "), errs)
			}
			if code != 1 && code != 2 {
				t.Errorf("graft %s: exit %d, want 1 or 2\nstderr: %s\nstdout: %s", strings.Join(tc.args, " "), code, errs, stdout.String())
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("graft %s: stderr does not name %q:\n%s", strings.Join(tc.args, " "), tc.want, errs)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed command left its output file")
	}
}

// tinyPNG is an 8x8 PNG.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 13)
	}
	var b bytes.Buffer
	if err := pngenc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
