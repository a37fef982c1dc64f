package train

import (
	"bytes"
	"context"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train/dataset"
)

// TestFeatureCacheMisses: what changes the features must miss the cache,
// whatever keeps the file names: a changed backbone weight, another cut
// tensor (here one whose features have the same size, so a size check
// cannot save a wrong key), and an image whose bytes changed under the same
// name. The image that changed must get its new features.
func TestFeatureCacheMisses(t *testing.T) {
	model, data, dir := sample(t)
	cache := filepath.Join(dir, "cache")
	adapt := func(what, model, cut string) *AdaptResult {
		t.Helper()
		res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, CacheDir: cache, Epochs: 1, Cut: cut})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res
	}
	if r := adapt("first run", model, ""); r.Cache.Hits != 0 || r.Cache.Misses != 480 {
		t.Fatalf("first run: %+v", r.Cache)
	}
	if r := adapt("same again", model, ""); r.Cache.Hits != 480 || r.Cache.Misses != 0 {
		t.Fatalf("same model, cut and images: %+v", r.Cache)
	}

	// one backbone weight changed, in a copy under another name
	src, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mp := surgery.CloneProto(src.Proto)
	for _, tp := range mp.Graph.Initializer {
		if len(tp.Dims) == 4 {
			w, err := onnx.TensorFromProto(tp)
			if err != nil {
				t.Fatal(err)
			}
			w.F[0] += 0.01
			*tp = *w.ToProto()
			break
		}
	}
	changed := filepath.Join(dir, "changed.onnx")
	if err := onnx.WriteFile(changed, mp, false); err != nil {
		t.Fatal(err)
	}
	if r := adapt("changed weight", changed, ""); r.Cache.Hits != 0 {
		t.Errorf("a backbone with a changed weight hit the cache: %+v", r.Cache)
	}

	// the GlobalAveragePool's output: the Flatten's input, same size
	var gap string
	for _, n := range src.Proto.Graph.Node {
		if n.OpType == "Flatten" {
			gap = n.Input[0]
		}
	}
	if r := adapt("cut "+gap, model, gap); r.Cut != gap || r.Cache.Hits != 0 {
		t.Errorf("cut %q: %+v, cut %q (want no hits)", gap, r.Cache, r.Cut)
	}

	// an image's bytes changed, same name: a Sandal with a white
	// corner, which no other file holds (the cache is content-addressed,
	// so another file's bytes would rightly hit that file's entry)
	victim := filepath.Join(data, "train", "Bag", "000.png")
	donor := filepath.Join(dir, "donor.png")
	f, err := os.Open(filepath.Join(data, "train", "Sandal", "000.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(img.Bounds())
	draw.Draw(gray, gray.Bounds(), img, image.Point{}, draw.Src)
	for i := 0; i < 4; i++ {
		gray.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, gray); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{victim, donor} {
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := adapt("changed image", model, ""); r.Cache.Hits != 479 || r.Cache.Misses != 1 {
		t.Errorf("one image changed under the same name: %+v, want 479 hits and 1 miss", r.Cache)
	}
	// and through Features directly: the changed image has the donor's features
	src, input, prep, err := openImageModel(model, onnx.Limits{}, dataset.Overrides{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := surgery.ResolveCut(src, "auto")
	if err != nil {
		t.Fatal(err)
	}
	fc, err := OpenFeatureCache(cache, FileHashBytes(src.Raw), cut, prep)
	if err != nil {
		t.Fatal(err)
	}
	ext := &Extractor{Src: src, Input: input, Features: cut, Dim: 512}
	var st CacheStats
	ex, _, err := Features(context.Background(), ext, []dataset.Sample{{Path: victim}, {Path: donor}}, prep, FeatureOptions{Cache: fc, Stats: &st})
	if err != nil {
		t.Fatal(err)
	}
	if st.Hits != 2 || ex.Len() != 2 { // the donor's bytes are the victim's, cached
		t.Fatalf("Features: %+v, %d examples", st, ex.Len())
	}
	if d := compareRel(ex.X[:512], ex.X[512:]); d != 0 {
		t.Errorf("an image with another's bytes has other features (%.3g)", d)
	}
}
