package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// relDiff is max |a-b| / max |b|.
func relDiff(t *testing.T, a, b *onnx.Tensor) float64 {
	t.Helper()
	if a == nil || b == nil || len(a.F) != len(b.F) || len(a.F) == 0 {
		t.Fatalf("outputs %v and %v are not comparable", a, b)
	}
	var d, m float64
	for i := range a.F {
		d = math.Max(d, math.Abs(float64(a.F[i]-b.F[i])))
		m = math.Max(m, math.Abs(float64(b.F[i])))
	}
	if !(m > 1e-3) {
		t.Fatalf("reference output %v is (nearly) zero: nothing to compare", b.F)
	}
	return d / m
}

// tinyFolder writes a 3-class folder of 8x8 PNGs (train/ and test/),
// each class a colour with noise, so that a head can learn it.
func tinyFolder(t *testing.T) string {
	dir := t.TempDir()
	cols := []color.RGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}}
	for _, split := range []string{"train", "test"} {
		for ci, name := range []string{"red", "green", "blue"} {
			d := filepath.Join(dir, split, name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := range 6 {
				img := image.NewRGBA(image.Rect(0, 0, 8, 8))
				for p := range 64 {
					c := cols[ci]
					n := uint8((p*7 + k*13) % 40)
					img.Set(p%8, p/8, color.RGBA{c.R + n, c.G + n, c.B + n, 255})
				}
				var buf bytes.Buffer
				if err := png.Encode(&buf, img); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%d.png", k)), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return dir
}

// TestLowPrecisionModels: a float16 classifier and a QDQ classifier
// (per-channel int8 weights, uint8 activations) run in graft as in ONNX
// Runtime, convert --cut auto --head 3 writes a model both run alike,
// and adapt trains a head whose model keeps the frozen part
// byte-identical (and float16 stays float16).
func TestLowPrecisionModels(t *testing.T) {
	ort := onnxtest.ORT(t)
	data := tinyFolder(t)
	for _, name := range []string{"f16_classifier", "qdq_classifier"} {
		t.Run(name, func(t *testing.T) {
			c := fixture(t, name)
			tol := onnxtest.LowPrecisionTol[name]
			feeds, err := c.Feeds(0)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			// graft run against ONNX Runtime
			mustGraft(t, "run", c.ModelPath, "--input", filepath.Join(c.Dir, "test_data_set_0", "input_0.pb"), "--out", dir)
			got, err := onnx.ReadTensorFile(filepath.Join(dir, "output.pb"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := ort.Run(c.ModelPath, feeds)
			if err != nil {
				t.Fatal(err)
			}
			d := relDiff(t, got, want["output"])
			t.Logf("graft run vs ONNX Runtime: %.3g of the output magnitude (tolerance %g)", d, tol)
			if d > tol {
				t.Errorf("graft run differs from ONNX Runtime by %.3g (tolerance %g): %v vs %v", d, tol, got.F, want["output"].F)
			}

			// convert with a new 3-class head
			conv := filepath.Join(dir, "converted.onnx")
			mustGraft(t, "convert", c.ModelPath, "--cut", "auto", "--head", "3", "--out", conv, "-q")
			cm, err := onnx.ReadFile(conv, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			outName := cm.Proto.Graph.Output[0].Name
			wantElem := cm.Inputs()[0].GetType().GetTensorType().GetElemType() // float16 in, float16 out
			if e := cm.Proto.Graph.Output[0].GetType().GetTensorType().GetElemType(); e != wantElem {
				t.Errorf("converted model's output has element type %d, want %d", e, wantElem)
			}
			rd := filepath.Join(dir, "conv_out")
			mustGraft(t, "run", conv, "--input", filepath.Join(c.Dir, "test_data_set_0", "input_0.pb"), "--out", rd)
			got, err = onnx.ReadTensorFile(filepath.Join(rd, onnx.SafeFileName(outName)+".pb"))
			if err != nil {
				t.Fatal(err)
			}
			want, err = ort.Run(conv, feeds)
			if err != nil {
				t.Fatalf("ONNX Runtime cannot run the converted model: %v", err)
			}
			if d := relDiff(t, got, want[outName]); d > tol {
				t.Errorf("converted model: graft and ONNX Runtime differ by %.3g (tolerance %g)", d, tol)
			} else {
				t.Logf("converted model: graft vs ONNX Runtime %.3g", d)
			}

			// adapt a head on a tiny folder
			out := filepath.Join(dir, "adapted.onnx")
			mustGraft(t, "adapt", "-m", c.ModelPath, "-d", data, "--epochs", "3", "-o", out, "--quiet")
			am, err := onnx.ReadFile(out, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ort.Run(out, feeds); err != nil {
				t.Fatalf("ONNX Runtime cannot run the adapted model: %v", err)
			}
			src, _ := onnx.ReadFile(c.ModelPath, onnx.Limits{})
			orig := map[string][]byte{}
			for _, tp := range src.Proto.Graph.Initializer {
				orig[tp.Name] = append(tp.RawData, fmt.Sprint(tp.DataType, tp.Dims, tp.Int32Data, tp.FloatData)...)
			}
			kept, head := 0, 0
			for _, tp := range am.Proto.Graph.Initializer {
				if b, ok := orig[tp.Name]; ok {
					kept++
					if !bytes.Equal(b, append(tp.RawData, fmt.Sprint(tp.DataType, tp.Dims, tp.Int32Data, tp.FloatData)...)) {
						t.Errorf("frozen initializer %q changed in the adapted model", tp.Name)
					}
					continue
				}
				head++
				if tp.DataType != wantElem && wantElem == 10 {
					t.Errorf("head initializer %q has type %d in a float16 model", tp.Name, tp.DataType)
				}
			}
			if e := am.Proto.Graph.Output[0].GetType().GetTensorType().GetElemType(); e != wantElem {
				t.Errorf("adapted model's output has element type %d, want %d", e, wantElem)
			}
			if kept == 0 || head == 0 {
				t.Errorf("adapted model: %d initializers kept, %d new", kept, head)
			}
		})
	}
}
