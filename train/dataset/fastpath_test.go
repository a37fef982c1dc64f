package dataset

// The fast paths of the preprocessing against the reference path of
// reference_test.go, to the bit, on random images of every type the
// decoders return.

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// eachImpl runs test with the Go code and, when the CPU has AVX2, with
// the AVX2 kernels (resampling passes, YCbCr conversion, inverse DCT).
func eachImpl(t *testing.T, test func(t *testing.T)) {
	defer func(was bool) { useAVX2 = was }(useAVX2)
	for _, avx2 := range []bool{false, true} {
		if avx2 && !hasAVX2 {
			t.Log("no AVX2 on this CPU: only the Go passes are tested")
			continue
		}
		useAVX2 = avx2
		t.Run(map[bool]string{false: "go", true: "avx2"}[avx2], test)
	}
}

// TestPassesAVX2: the AVX2 passes compute the Go passes' bytes, for any
// number of taps and row length, weights of either sign and sums past
// either end of 0..255.
func TestPassesAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	rng := rand.New(rand.NewSource(8))
	fill := func(b []uint8) {
		for i := range b {
			b[i] = uint8(rng.Intn(256))
			if rng.Intn(8) == 0 {
				b[i] = 255
			}
		}
	}
	weights := func(n int) []int32 {
		w := make([]int32, n)
		for i := range w {
			w[i] = int32(rng.Intn(1<<22+1<<18)) - 1<<18
		}
		return w
	}
	for _, k := range []int{4, 8, 12, 24} {
		for _, n := range []int{1, 2, 5, 31, 32, 33, 224, 225} {
			// horizontal: n outputs over a row of m pixels
			m := 3*n + k
			a := axis{k: k, first: make([]int, n), w: weights(k * n), lo: 0, hi: m}
			for i := range a.first {
				a.first[i] = rng.Intn(m - k + 1)
			}
			src := make([]uint8, 3*(a.hi-a.lo+a.k)+slack)
			fill(src)
			want, got := make([]uint8, 3*n+slack), make([]uint8, 3*n+slack)
			hpass3Go(want, src, &a)
			a.expand()
			hpass3(got, src, &a)
			if !bytes.Equal(got[:3*n], want[:3*n]) {
				t.Fatalf("hpass3, %d taps, %d pixels:\navx2 %v\ngo   %v", k, n, got[:3*n], want[:3*n])
			}
			// vertical: a row of 3n bytes from k rows
			stride := 3*n + rng.Intn(5)
			rows := make([]uint8, k*stride)
			fill(rows)
			w := weights(k)
			acc := make([]int32, 3*n)
			want, got = make([]uint8, 3*n), make([]uint8, 3*n)
			vpassGo(want, acc, rows, stride, w)
			vpass(got, acc, rows, stride, w)
			if !bytes.Equal(got, want) {
				t.Fatalf("vpass, %d taps, %d bytes:\navx2 %v\ngo   %v", k, 3*n, got, want)
			}
		}
	}
}

// resampleRGBA is resampleRows collected into an RGBA image (alpha 255),
// the reference's form.
func resampleRGBA(src image.Image, sr, dr image.Rectangle, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	resampleRows(src, sr, dr, w, h, func(y int, row []uint8, nc int) {
		d := dst.Pix[y*dst.Stride:]
		for x := range w {
			if nc == 1 {
				v := row[x]
				d[4*x], d[4*x+1], d[4*x+2] = v, v, v
			} else {
				d[4*x], d[4*x+1], d[4*x+2] = row[3*x], row[3*x+1], row[3*x+2]
			}
			d[4*x+3] = 255
		}
	})
	return dst
}

// randomImages returns images of every type graft reads, r's size and
// origin, with random pixels: the decoders' types (YCbCr of each
// subsampling ratio, Gray, Gray16, RGBA, NRGBA, RGBA64, NRGBA64,
// Paletted with indexes past its palette, NYCbCrA, CMYK) and one no fast
// path knows.
func randomImages(rng *rand.Rand, r image.Rectangle) map[string]image.Image {
	fill := func(pix []uint8) {
		for i := range pix {
			pix[i] = uint8(rng.Intn(256))
		}
	}
	gray := image.NewGray(r)
	fill(gray.Pix)
	gray16 := image.NewGray16(r)
	fill(gray16.Pix)
	rgba := image.NewRGBA(r)
	for i := 0; i < len(rgba.Pix); i += 4 { // premultiplied: no value above alpha
		a := uint8(rng.Intn(256))
		for j := range 3 {
			rgba.Pix[i+j] = uint8(rng.Intn(int(a) + 1))
		}
		rgba.Pix[i+3] = a
	}
	nrgba := image.NewNRGBA(r)
	fill(nrgba.Pix)
	rgba64 := image.NewRGBA64(r)
	for x := r.Min.X; x < r.Max.X; x++ {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			a := uint16(rng.Intn(65536))
			c := color.RGBA64{A: a}
			c.R, c.G, c.B = uint16(rng.Intn(int(a)+1)), uint16(rng.Intn(int(a)+1)), uint16(rng.Intn(int(a)+1))
			rgba64.SetRGBA64(x, y, c)
		}
	}
	nrgba64 := image.NewNRGBA64(r)
	fill(nrgba64.Pix)
	paletted := image.NewPaletted(r, palette.Plan9[:100])
	fill(paletted.Pix) // indexes past the palette too
	cmyk := image.NewCMYK(r)
	fill(cmyk.Pix)
	nycbcra := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio420)
	fill(nycbcra.Y)
	fill(nycbcra.Cb)
	fill(nycbcra.Cr)
	fill(nycbcra.A)
	imgs := map[string]image.Image{
		"Gray": gray, "Gray16": gray16, "RGBA": rgba, "NRGBA": nrgba, "RGBA64": rgba64,
		"NRGBA64": nrgba64, "Paletted": paletted, "CMYK": cmyk, "NYCbCrA": nycbcra,
		"opaque": opaque{nrgba},
	}
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		y := image.NewYCbCr(r, ratio)
		fill(y.Y)
		fill(y.Cb)
		fill(y.Cr)
		imgs["YCbCr"+ratio.String()] = y
	}
	return imgs
}

// opaque hides an image's type, so that no fast path applies.
type opaque struct{ image.Image }

// refRow is the reference of a rowReader: row y's pixels x0..x1-1, RGB.
func refRow(img image.Image, y, x0, x1 int) []uint8 {
	out := make([]uint8, 0, 3*(x1-x0))
	for x := x0; x < x1; x++ {
		var c color.Color
		if p, ok := img.(*image.Paletted); ok {
			// Paletted.At fails past the palette, which shows black
			c = color.Black
			if k := int(p.ColorIndexAt(x, y)); k < len(p.Palette) {
				c = p.Palette[k]
			}
		} else {
			c = img.At(x, y)
		}
		var px [4]uint8
		refSetRGBA(px[:], c)
		out = append(out, px[:3]...)
	}
	return out
}

// TestRowReaders: each type's rowReader gives the RGB bytes of At and
// RGBA, shifted to 8 bits, on any span of a row; for origins that are odd
// and negative too, where chroma subsampling rounds toward zero.
func TestRowReaders(t *testing.T) {
	eachImpl(t, testRowReaders)
}

func testRowReaders(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, r := range []image.Rectangle{
		image.Rect(0, 0, 13, 7), image.Rect(3, 2, 12, 9), image.Rect(-7, -5, 6, 4), image.Rect(1, 1, 2, 2),
		image.Rect(0, 0, 67, 5), image.Rect(5, 3, 90, 8),
	} {
		for name, img := range randomImages(rng, r) {
			rows := rowsOf(img)
			wantNC := 3
			if name == "Gray" || name == "Gray16" {
				wantNC = 1
			}
			if rows.nc != wantNC {
				t.Errorf("%s: %d bytes a pixel, want %d", name, rows.nc, wantNC)
			}
			for range 20 {
				y := r.Min.Y + rng.Intn(r.Dy())
				x0 := r.Min.X + rng.Intn(r.Dx())
				x1 := x0 + 1 + rng.Intn(r.Max.X-x0)
				// longer than the span: readers may write slack bytes past it
				out := make([]uint8, rows.nc*(x1-x0)+slack+5)
				for i := range out {
					out[i] = 7
				}
				rows.read(y, x0, x1, out)
				got := out[:rows.nc*(x1-x0)]
				if rows.nc == 1 {
					got = nil
					for _, v := range out[:x1-x0] {
						got = append(got, v, v, v)
					}
				}
				if want := refRow(img, y, x0, x1); !bytes.Equal(got, want) {
					t.Fatalf("%s %v: row %d, x %d..%d: %v, reference %v", name, r, y, x0, x1, got, want)
				}
				for i, v := range out[rows.nc*(x1-x0)+slack:] {
					if v != 7 {
						t.Fatalf("%s %v: row %d, x %d..%d: wrote byte %d past the span and slack", name, r, y, x0, x1, i)
					}
				}
			}
		}
	}
}

// TestYCbCrConversion: a 4:4:4 row is color.YCbCrToRGB of each pixel,
// which is what the reference reads (the 8 high bits of color.YCbCr's
// RGBA), for every color. (TestRowReaders checks the other subsamplings
// against the same reference.)
func TestYCbCrConversion(t *testing.T) {
	eachImpl(t, testYCbCrConversion)
}

func testYCbCrConversion(t *testing.T) {
	img := image.NewYCbCr(image.Rect(0, 0, 256, 1), image.YCbCrSubsampleRatio444)
	for x := range 256 {
		img.Y[x] = uint8(x)
	}
	out := make([]uint8, 3*256, 3*256+slack)
	for c := range 1 << 16 {
		cb, cr := uint8(c>>8), uint8(c)
		for x := range 256 {
			img.Cb[x], img.Cr[x] = cb, cr
		}
		ycbcrRow(img, 0, 0, 256, out)
		for y := range 256 {
			r, g, b := color.YCbCrToRGB(uint8(y), cb, cr)
			r16, g16, b16, _ := color.YCbCr{Y: uint8(y), Cb: cb, Cr: cr}.RGBA()
			got := [3]uint8(out[3*y:])
			if got != [3]uint8{r, g, b} || got != [3]uint8{uint8(r16 >> 8), uint8(g16 >> 8), uint8(b16 >> 8)} {
				t.Fatalf("YCbCr(%d, %d, %d): %v, YCbCrToRGB %d %d %d, RGBA>>8 %d %d %d",
					y, cb, cr, got, r, g, b, r16>>8, g16>>8, b16>>8)
			}
		}
	}
}

// sameFloats reports the first index where got and want differ in their
// bits, or -1.
func sameFloats(got, want []float32) int {
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i
		}
	}
	return -1
}

// preps are the preprocessings the comparisons run: both layouts, gray
// and color models, BGR, enlarging, shrinking and no resampling.
func preps(t *testing.T) map[string]*prep {
	ps := map[string]*Preprocess{
		"NCHW":          {Height: 9, Width: 7, Resize: 11},
		"NHWC_BGR":      {Layout: NHWC, BGR: true, Height: 8, Width: 10, Resize: 10},
		"gray":          {Channels: 1, Height: 5, Width: 6},
		"gray_NHWC":     {Layout: NHWC, Channels: 1, Height: 7, Width: 3, Resize: 30, Scale: 1, Mean: []float32{3}, Std: []float32{2}},
		"enlarge":       {Height: 31, Width: 40, Resize: 45, Mean: []float32{0.5}, Std: []float32{0.25}},
		"square_tensor": {Height: 13, Width: 13, Resize: 13},
	}
	out := map[string]*prep{}
	for name, p := range ps {
		c, err := p.compile()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = c
	}
	return out
}

// TestRenderMatchesReference: the tensors of Tensor's resize and center
// crop, and of random crops resized and flipped as Augment does, are
// those of the reference path to the bit, for images of every type and
// of odd, even, small and large sizes and origins.
func TestRenderMatchesReference(t *testing.T) {
	eachImpl(t, testRenderMatchesReference)
}

func testRenderMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	rects := []image.Rectangle{
		image.Rect(0, 0, 37, 23), image.Rect(0, 0, 13, 13), image.Rect(5, 3, 16, 40),
		image.Rect(-3, -1, 60, 50), image.Rect(0, 0, 4, 3), image.Rect(1, 0, 2, 1),
	}
	for _, r := range rects {
		imgs := randomImages(rng, r)
		for pname, c := range preps(t) {
			for name, img := range imgs {
				got, want := make([]float32, c.c*c.h*c.w), make([]float32, c.c*c.h*c.w)
				if err := c.tensor(img, got); err != nil {
					t.Fatal(err)
				}
				c.refTensor(img, want)
				if i := sameFloats(got, want); i >= 0 {
					t.Fatalf("%s, %s %v: tensor value %d is %g, reference %g", pname, name, r, i, got[i], want[i])
				}
				for range 4 {
					sr := randomResizedCrop(r.Dx(), r.Dy(), rng).Add(r.Min)
					if rng.Intn(4) == 0 { // a crop of exactly the output size
						sr = image.Rect(0, 0, min(c.w, r.Dx()), min(c.h, r.Dy())).Add(r.Min)
					}
					dr := image.Rect(0, 0, c.w, c.h)
					flip := rng.Intn(2) == 0
					c.render(img, sr, dr, flip, got)
					c.refWrite(refResample(img, sr, dr, c.w, c.h), flip, want)
					if i := sameFloats(got, want); i >= 0 {
						t.Fatalf("%s, %s %v: crop %v flip %v: value %d is %g, reference %g", pname, name, r, sr, flip, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestDecodedMatchesReference: images as the decoders return them, JPEGs
// of every chroma subsampling the encoder and Pillow write (4:2:0 from
// image/jpeg, the others from testdata), gray JPEGs and 8 and 16-bit
// PNGs, preprocess to the reference's tensors.
func TestDecodedMatchesReference(t *testing.T) {
	eachImpl(t, testDecodedMatchesReference)
}

func testDecodedMatchesReference(t *testing.T) {
	var files [][]byte
	src := photoLike(97, 61, 2)
	var gray image.Gray
	gray.Pix, gray.Stride, gray.Rect = make([]uint8, 97*61), 97, src.Rect
	for i := range gray.Pix {
		gray.Pix[i] = src.Pix[4*i+1]
	}
	rgba64 := image.NewNRGBA64(src.Rect)
	for i := range src.Pix {
		rgba64.Pix[2*i], rgba64.Pix[2*i+1] = src.Pix[i], uint8(i*7)
		if i%4 == 3 {
			rgba64.Pix[2*i] = uint8(i * 13) // some transparency
		}
	}
	gray16 := image.NewGray16(src.Rect)
	for i := range gray16.Pix {
		gray16.Pix[i] = uint8(i * 5)
	}
	paletted := image.NewPaletted(src.Rect, palette.WebSafe)
	for i := range paletted.Pix {
		paletted.Pix[i] = uint8(i * 11 % len(palette.WebSafe))
	}
	for _, img := range []image.Image{src, &gray, rgba64, gray16, paletted} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		files = append(files, buf.Bytes())
		if img == src || img == &gray {
			buf = bytes.Buffer{}
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
				t.Fatal(err)
			}
			files = append(files, buf.Bytes())
		}
	}
	files = append(files, pillowJPEGs(t)...)
	seen := map[string]bool{}
	for i, data := range files {
		img, err := decode(data, 0)
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		kind := fmt.Sprintf("%T", img)
		if y, ok := img.(*image.YCbCr); ok {
			kind += " " + y.SubsampleRatio.String()
		}
		seen[kind] = true
		for pname, c := range preps(t) {
			got, want := make([]float32, c.c*c.h*c.w), make([]float32, c.c*c.h*c.w)
			if err := c.tensor(img, got); err != nil {
				t.Fatal(err)
			}
			c.refTensor(img, want)
			if j := sameFloats(got, want); j >= 0 {
				t.Errorf("%s, %s: value %d is %g, reference %g", pname, kind, j, got[j], want[j])
			}
		}
	}
	for _, kind := range []string{
		"*image.YCbCr YCbCrSubsampleRatio420", "*image.YCbCr YCbCrSubsampleRatio422", "*image.YCbCr YCbCrSubsampleRatio444",
		"*image.Gray", "*image.NRGBA64", "*image.Gray16", "*image.RGBA", "*image.Paletted",
	} {
		if !seen[kind] {
			t.Errorf("no decoded %s among %v", kind, seen)
		}
	}
}

// pillowJPEGs reads testdata/jpeg (see gen_jpeg.py): 4:4:4 and 4:2:2
// JPEGs, and a 4:2:0 one of odd sizes.
func pillowJPEGs(t *testing.T) [][]byte {
	var files [][]byte
	for _, name := range []string{"444.jpg", "422.jpg", "420_odd.jpg"} {
		data, err := os.ReadFile(filepath.Join("testdata", "jpeg", name))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
	}
	return files
}
