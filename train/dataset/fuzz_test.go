package dataset

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The image loader's fuzz targets. Image files are untrusted input: a
// file with an image extension may hold anything, and whatever it holds
// DecodeFile, LoadDataset and LoadTensors must return an error naming it
// or a tensor, never panic or allocate past the pixel limit. The seed
// corpus (testdata/fuzz/FuzzDecodeFile, testdata/fuzz/FuzzLoadDataset)
// holds tiny images of every format read; crashers found are kept there
// too.

// fuzzMaxPixels keeps decoding fast: fuzzed headers are free to declare
// any size, and the limit is what stops them.
const fuzzMaxPixels = 1 << 12

var fuzzPrep = Preprocess{Height: 4, Width: 3, Resize: 5, MaxPixels: fuzzMaxPixels}

// FuzzDecodeFile decodes one file and preprocesses it, plainly and with
// augmentation.
func FuzzDecodeFile(f *testing.F) {
	f.Add([]byte("BM"))
	f.Add([]byte("\xff\xd8\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "x.png")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := DecodeFile(path, fuzzMaxPixels)
		if err != nil {
			if !errors.Is(err, ErrTooManyPixels) && len(err.Error()) < len(path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if b := img.Bounds(); int64(b.Dx())*int64(b.Dy()) > fuzzMaxPixels {
			t.Fatalf("decoded a %v image past the %d-pixel limit", b, fuzzMaxPixels)
		}
		p := fuzzPrep
		dst := make([]float32, p.Size())
		if err := p.Tensor(img, dst); err != nil {
			return
		}
		g := Preprocess{Height: 2, Width: 2, Channels: 1, Layout: NHWC}
		_ = g.Tensor(img, make([]float32, g.Size()))
	})
}

// FuzzLoadDataset writes the fuzzed file into one class folder of a data
// set whose other class holds a good image, then lists and loads it.
func FuzzLoadDataset(f *testing.F) {
	f.Add([]byte("GIF89a"))
	good := tinyPNG()
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		for _, c := range []string{"a", "b"} {
			if err := os.Mkdir(filepath.Join(dir, c), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(dir, "a", "good.png"), good, 0o644)
		os.WriteFile(filepath.Join(dir, "b", "fuzz.jpg"), data, 0o644)
		os.WriteFile(filepath.Join(dir, "b", "good.png"), good, 0o644)
		ds, err := LoadDataset(DataConfig{Dir: dir, MaxPixels: fuzzMaxPixels})
		if err != nil {
			t.Fatalf("a data set with one good image per class: %v", err)
		}
		if len(ds.Train)+len(ds.Skipped) != 3 {
			t.Fatalf("%d samples and %d skipped of 3 files", len(ds.Train), len(ds.Skipped))
		}
		for _, strict := range []bool{false, true} {
			data, kept, skipped, err := LoadTensors(ds.Train, &fuzzPrep, 2, strict)
			if err != nil {
				if !strict {
					t.Fatalf("LoadTensors, not strict: %v", err)
				}
				continue
			}
			if len(kept)+len(skipped) != len(ds.Train) || len(data) != len(kept)*fuzzPrep.Size() {
				t.Fatalf("kept %d, skipped %d of %d, %d floats", len(kept), len(skipped), len(ds.Train), len(data))
			}
		}
	})
}

// tinyPNG is a 2x2 PNG.
func tinyPNG() []byte {
	var b bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	img.Pix[0], img.Pix[3] = 200, 255
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}
