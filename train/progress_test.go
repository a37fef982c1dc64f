package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/train/dataset"
)

// pngSamples writes n small PNGs of different colors and returns them as
// samples.
func pngSamples(t *testing.T, n int) []dataset.Sample {
	t.Helper()
	dir := t.TempDir()
	var ss []dataset.Sample
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 6, 5))
		for j := range img.Pix {
			img.Pix[j] = uint8(i*7 + j)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, dataset.Sample{Path: path, Label: i % 2})
	}
	return ss
}

// TestDecodeAhead: the chunks come in order with LoadTensors' tensors,
// the first chunk's buffer serves again for the third, and errors of
// decoding, of use and of the context stop it, naming the image reached.
func TestDecodeAhead(t *testing.T) {
	ss := pngSamples(t, 2*progressChunk+22)
	bad := progressChunk + 3
	if err := os.WriteFile(ss[bad].Path, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &dataset.Preprocess{Height: 4, Width: 4}
	var got []decoded
	var first *float32
	err := decodeAhead(context.Background(), ss, p, false, "decoding", func(c decoded) error {
		want, kept, skipped, err := dataset.LoadTensors(ss[c.start:c.end], p, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		same := slices.Equal(c.data[:len(c.kept)*p.Size()], want)
		if !same || !slices.Equal(c.kept, kept) || len(c.skipped) != len(skipped) {
			t.Errorf("chunk %d..%d: %d kept, %d skipped, same tensors %v; LoadTensors keeps %d, skips %d",
				c.start, c.end, len(c.kept), len(c.skipped), same, len(kept), len(skipped))
		}
		switch len(got) {
		case 0:
			first = &c.data[0]
		case 2:
			if &c.data[0] != first {
				t.Error("the third chunk has a new buffer, not the first one's")
			}
		}
		got = append(got, decoded{start: c.start, end: c.end})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := len(ss)
	if want := []decoded{{start: 0, end: progressChunk}, {start: progressChunk, end: 2 * progressChunk}, {start: 2 * progressChunk, end: n}}; !slices.EqualFunc(got, want, func(a, b decoded) bool {
		return a.start == b.start && a.end == b.end
	}) {
		t.Errorf("chunks %v, want %v", got, want)
	}

	// strict: the broken file fails the second chunk
	calls := 0
	err = decodeAhead(context.Background(), ss, p, true, "decoding", func(decoded) error { calls++; return nil })
	if err == nil || !strings.HasPrefix(err.Error(), ss[bad].Path+": PNG: ") || calls != 1 {
		t.Errorf("strict: error %v after %d chunks, want the broken file's after 1", err, calls)
	}

	// an error of use stops it
	stop := errors.New("stop")
	calls = 0
	err = decodeAhead(context.Background(), ss, p, false, "decoding", func(decoded) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("use failing: error %v after %d chunks, want %v after 1", err, calls, stop)
	}

	// cancelled during the first chunk's use: the second is not used
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls = 0
	err = decodeAhead(ctx, ss, p, false, "features of", func(decoded) error { calls++; cancel(); return nil })
	if want := fmt.Sprintf("features of image %d of %d: ", progressChunk+1, n); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), want) || calls != 1 {
		t.Errorf("cancelled: error %v after %d chunks, want %q cancelled after 1", err, calls, want)
	}
	calls = 0
	err = decodeAhead(ctx, ss, p, false, "decoding", func(decoded) error { calls++; return nil })
	if want := fmt.Sprintf("decoding image 1 of %d: ", n); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), want) || calls != 0 {
		t.Errorf("cancelled before: error %v after %d chunks, want %q cancelled", err, calls, want)
	}
}
