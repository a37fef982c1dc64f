package dataset

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestResampleMatchesPillow: the resampler gives exactly Pillow's
// Image.resize(size, BILINEAR) bytes (testdata/resize, made by
// gen_resize.py with Pillow), shrinking, enlarging, on one axis only and
// on a crop, so images reach a model as torchvision would hand them.
func TestResampleMatchesPillow(t *testing.T) {
	eachImpl(t, testResampleMatchesPillow)
}

func testResampleMatchesPillow(t *testing.T) {
	dir := filepath.Join("testdata", "resize")
	src := readPNG(t, filepath.Join(dir, "src.png"))
	for name, c := range map[string]struct {
		crop image.Rectangle // zero: the whole image
		w, h int
	}{
		"shrink":   {w: 41, h: 26},
		"shrink_w": {w: 40, h: 61},
		"enlarge":  {w: 150, h: 95},
		"mixed":    {w: 120, h: 30},
		"crop":     {crop: image.Rect(13, 7, 80, 50), w: 30, h: 19},
	} {
		t.Run(name, func(t *testing.T) {
			sr := src.Bounds()
			if !c.crop.Empty() {
				sr = c.crop
			}
			got := resampleRGBA(src, sr, image.Rect(0, 0, c.w, c.h), c.w, c.h)
			want := readPNG(t, filepath.Join(dir, "case_"+name+".png"))
			if want.Bounds().Dx() != c.w || want.Bounds().Dy() != c.h {
				t.Fatalf("golden is %v, want %dx%d", want.Bounds(), c.w, c.h)
			}
			diffs, first := 0, ""
			for y := range c.h {
				for x := range c.w {
					g := got.RGBAAt(x, y)
					wr, wg, wb, _ := want.At(x, y).RGBA()
					w := [3]uint8{uint8(wr >> 8), uint8(wg >> 8), uint8(wb >> 8)}
					if [3]uint8{g.R, g.G, g.B} != w || g.A != 255 {
						if diffs == 0 {
							first = fmt.Sprintf("(%d,%d) = %v, Pillow %v", x, y, g, w)
						}
						diffs++
					}
				}
			}
			if diffs > 0 {
				t.Errorf("%d of %d pixels differ from Pillow's; first %s", diffs, c.w*c.h, first)
			}
		})
	}
}

// TestResampleWindow: computing only the part of the resized image that
// a crop keeps gives the same pixels as resizing whole and cropping.
func TestResampleWindow(t *testing.T) {
	src := readPNG(t, filepath.Join("testdata", "resize", "src.png"))
	full := resampleRGBA(src, src.Bounds(), image.Rect(0, 0, 50, 31), 50, 31)
	part := resampleRGBA(src, src.Bounds(), image.Rect(-9, -4, 41, 27), 20, 12)
	for y := range 12 {
		for x := range 20 {
			if g, w := part.RGBAAt(x, y), full.RGBAAt(x+9, y+4); g != w {
				t.Fatalf("(%d,%d) = %v, whole resize then crop %v", x, y, g, w)
			}
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
