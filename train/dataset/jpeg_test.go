package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fastJPEG decodes a testdata/jpeg file with decodeJPEGLimit, which must
// not leave it to image/jpeg.
func fastJPEG(t testing.TB, name string) image.Image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "jpeg", name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := decodeJPEGLimit(data, 0, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return img
}

// TestJPEGMatchesLibjpeg compares the decoder's samples with libjpeg's
// (decoded by Pillow, see gen_jpeg.py): equal to the last bit, as both
// compute the same integer inverse DCT.
func TestJPEGMatchesLibjpeg(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		gray := fastJPEG(t, "gray.jpg").(*image.Gray)
		want := readPNG(t, filepath.Join("testdata", "jpeg", "gray_libjpeg.png")).(*image.Gray)
		closePlanes(t, "gray.jpg", "libjpeg", gray.Pix, gray.Stride, want.Pix, want.Stride, want.Rect.Dx(), want.Rect.Dy(), 0)

		planes := readPNG(t, filepath.Join("testdata", "jpeg", "444_libjpeg_ycc.png"))
		b := planes.Bounds()
		var wy, wcb, wcr []uint8
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(planes.At(x, y)).(color.NRGBA)
				wy, wcb, wcr = append(wy, c.R), append(wcb, c.G), append(wcr, c.B)
			}
		}
		wantY := readPNG(t, filepath.Join("testdata", "jpeg", "420_odd_libjpeg_y.png")).(*image.Gray)
		// the _restart files hold the same coefficients with restart
		// markers (34 and 11 of them: every RST number, wrapping)
		for _, name := range []string{"444.jpg", "444_restart.jpg"} {
			ycc := fastJPEG(t, name).(*image.YCbCr)
			closePlanes(t, name+" Y", "libjpeg", ycc.Y, ycc.YStride, wy, b.Dx(), b.Dx(), b.Dy(), 0)
			closePlanes(t, name+" Cb", "libjpeg", ycc.Cb, ycc.CStride, wcb, b.Dx(), b.Dx(), b.Dy(), 0)
			closePlanes(t, name+" Cr", "libjpeg", ycc.Cr, ycc.CStride, wcr, b.Dx(), b.Dx(), b.Dy(), 0)
		}
		for _, name := range []string{"420_odd.jpg", "420_odd_restart.jpg"} {
			odd := fastJPEG(t, name).(*image.YCbCr)
			if odd.SubsampleRatio != image.YCbCrSubsampleRatio420 {
				t.Fatalf("%s decoded as %v", name, odd.SubsampleRatio)
			}
			closePlanes(t, name+" Y", "libjpeg", odd.Y, odd.YStride, wantY.Pix, wantY.Stride, wantY.Rect.Dx(), wantY.Rect.Dy(), 0)
		}
	})
}

// jpegCorpus returns JPEG files of many encoders and layouts: Go's
// encoder at several qualities and sizes (gray and color), Pillow's
// fixtures and, when the Go installation has its sources, image/jpeg's
// test images (libjpeg's cjpeg: restart markers, 4:1:0 to 4:4:4,
// progressive, CMYK, RGB).
func jpegCorpus(t testing.TB) map[string][]byte {
	files := map[string][]byte{}
	rng := rand.New(rand.NewSource(1))
	for _, size := range [][2]int{{1, 1}, {8, 8}, {17, 9}, {33, 70}, {640, 480}} {
		rgb := image.NewRGBA(image.Rect(0, 0, size[0], size[1]))
		gray := image.NewGray(rgb.Rect)
		for i := range rgb.Pix {
			// smooth gradients with noise: realistic, and large coefficients
			x, y := (i/4)%size[0], (i/4)/size[0]
			rgb.Pix[i] = uint8(x*3+y*2+i%4*60) + uint8(rng.Intn(40))
		}
		for i := range gray.Pix {
			gray.Pix[i] = rgb.Pix[4*i+1]
		}
		for _, q := range []int{1, 50, 90, 100} {
			for kind, img := range map[string]image.Image{"rgb": rgb, "gray": gray} {
				var buf bytes.Buffer
				if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
					t.Fatal(err)
				}
				files[fmt.Sprintf("go %s %dx%d q%d", kind, size[0], size[1], q)] = buf.Bytes()
			}
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "jpeg", "*.jpg"))
	std, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "image", "testdata", "*.jpeg"))
	if len(std) == 0 {
		t.Logf("no image/jpeg test images under %s: testing without them", runtime.GOROOT())
	}
	for _, f := range append(fixtures, std...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(f)] = data
	}
	return files
}

// TestJPEGAgreesWithImageJPEG decodes the corpus with decodeJPEGLimit and
// with image/jpeg: the same image type, bounds and subsampling, and
// samples at most 1 apart (the two inverse DCTs round differently), or,
// for the files decodeJPEGLimit leaves to image/jpeg, image/jpeg's image
// from decode.
func TestJPEGAgreesWithImageJPEG(t *testing.T) {
	fast := 0
	for name, data := range jpegCorpus(t) {
		want, werr := jpeg.Decode(bytes.NewReader(data))
		got, err := decodeJPEGLimit(data, 0, nil)
		if err != nil && werr == nil && !leftToImageJPEG(name) {
			t.Errorf("%s: left to image/jpeg (%v), though the decoder reads its kind of file", name, err)
		}
		if err != nil {
			if werr != nil {
				continue
			}
			img, derr := decode(data, 0)
			if derr != nil || fmt.Sprintf("%T", img) != fmt.Sprintf("%T", want) || img.Bounds() != want.Bounds() {
				t.Errorf("%s: decode gives %T %v (%v), image/jpeg %T %v", name, img, img, derr, want, want.Bounds())
			}
			continue
		}
		fast++
		if werr != nil {
			t.Errorf("%s: decoded, but image/jpeg fails: %v", name, werr)
			continue
		}
		if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) || got.Bounds() != want.Bounds() {
			t.Errorf("%s: %T %v, image/jpeg %T %v", name, got, got.Bounds(), want, want.Bounds())
			continue
		}
		switch g := got.(type) {
		case *image.Gray:
			w := want.(*image.Gray)
			closePlanes(t, name, "image/jpeg", g.Pix, g.Stride, w.Pix, w.Stride, g.Rect.Dx(), g.Rect.Dy(), 1)
		case *image.YCbCr:
			w := want.(*image.YCbCr)
			if g.SubsampleRatio != w.SubsampleRatio {
				t.Errorf("%s: %v, image/jpeg %v", name, g.SubsampleRatio, w.SubsampleRatio)
				continue
			}
			closePlanes(t, name+" Y", "image/jpeg", g.Y, g.YStride, w.Y, w.YStride, g.Rect.Dx(), g.Rect.Dy(), 1)
			// the chroma samples of the image's pixels (its corner is 0, 0)
			last := g.COffset(g.Rect.Max.X-1, g.Rect.Max.Y-1)
			cw, ch := last%g.CStride+1, last/g.CStride+1
			closePlanes(t, name+" Cb", "image/jpeg", g.Cb, g.CStride, w.Cb, w.CStride, cw, ch, 1)
			closePlanes(t, name+" Cr", "image/jpeg", g.Cr, g.CStride, w.Cr, w.CStride, cw, ch, 1)
		}
	}
	if fast < 40 {
		t.Errorf("only %d files took the fast path", fast)
	}
}

// leftToImageJPEG reports whether the corpus file name is of a kind the
// decoder leaves to image/jpeg: progressive, CMYK, RGB, one scan per
// component, or chroma sampled other than once per MCU (2x2 1x2 1x2).
func leftToImageJPEG(name string) bool {
	for _, kind := range []string{"progressive", "cmyk", "rgb.jpeg", "separate", "221212"} {
		if strings.Contains(name, kind) {
			return true
		}
	}
	return false
}

// closePlanes checks the w x h samples of two planes, strides gs and ws,
// differ by at most tol, and that few differ at all (in planes large
// enough to say). ref names where want comes from.
func closePlanes(t *testing.T, what, ref string, got []uint8, gs int, want []uint8, ws, w, h, tol int) {
	t.Helper()
	differ := 0
	for y := range h {
		for x := range w {
			d := int(got[y*gs+x]) - int(want[y*ws+x])
			if d < -tol || d > tol {
				t.Errorf("%s: sample (%d, %d) is %d, %s's %d", what, x, y, got[y*gs+x], ref, want[y*ws+x])
				return
			}
			if d != 0 {
				differ++
			}
		}
	}
	if n := w * h; n >= 1000 && differ*10 > n {
		t.Errorf("%s: %d of %d samples differ from %s's", what, differ, n, ref)
	}
}

// TestIDCTAVX2 checks the assembly inverse DCT against the Go one, bit
// for bit, on blocks of every density, typical and extreme values.
func TestIDCTAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	rng := rand.New(rand.NewSource(2))
	for i := range 20000 {
		var blk [64]int32
		limit := []int32{4, 64, 1024, 1 << 14}[i%4]
		for k := range blk {
			if rng.Intn(64) <= i%64 {
				blk[k] = rng.Int31n(2*limit+1) - limit
			}
		}
		const stride = 13
		got, want := make([]uint8, 7*stride+8), make([]uint8, 7*stride+8)
		b := blk
		idctIslowAVX2(&b, &got[0], stride)
		if b != blk {
			t.Fatal("idctIslowAVX2 changed its input")
		}
		idctIslow(&blk, want, stride)
		if !bytes.Equal(got, want) {
			t.Fatalf("block %d %v: AVX2 %v, Go %v", i, blk, got, want)
		}
	}
}

// TestIDCTDC checks the shortcut for blocks with only a DC coefficient.
func TestIDCTDC(t *testing.T) {
	for dc := int32(-3000); dc <= 3000; dc++ {
		var blk [64]int32
		blk[0] = dc
		got, want := make([]uint8, 64), make([]uint8, 64)
		idctDC(dc, got, 8)
		idctIslow(&blk, want, 8)
		if !bytes.Equal(got, want) {
			t.Fatalf("dc %d: %v, full transform %v", dc, got[0], want[0])
		}
	}
}

// TestJPEGDamaged truncates and corrupts valid files: decodeJPEGLimit must
// not panic, and must leave to image/jpeg whatever image/jpeg rejects.
func TestJPEGDamaged(t *testing.T) {
	corpus := jpegCorpus(t)
	rng := rand.New(rand.NewSource(3))
	for _, name := range []string{"go rgb 33x70 q90", "go gray 17x9 q50", "444.jpg", "420_odd.jpg", "video-001.restart2.jpeg"} {
		data, ok := corpus[name]
		if !ok {
			continue
		}
		check := func(what string, d []byte) {
			img, err := decodeJPEGLimit(d, 0, nil)
			if err != nil {
				return
			}
			want, werr := jpeg.Decode(bytes.NewReader(d))
			if werr != nil {
				t.Errorf("%s %s: decoded, image/jpeg fails: %v", name, what, werr)
			} else if img.Bounds() != want.Bounds() {
				t.Errorf("%s %s: bounds %v, image/jpeg %v", name, what, img.Bounds(), want.Bounds())
			}
		}
		for n := 0; n < len(data); n += 1 + n/50 {
			check(fmt.Sprintf("truncated to %d bytes", n), data[:n])
		}
		for range 300 {
			d := bytes.Clone(data)
			i := rng.Intn(len(d))
			d[i] = byte(rng.Intn(256))
			check(fmt.Sprintf("byte %d set", i), d)
		}
	}
}

// FuzzDecodeJPEG: decodeJPEGLimit never panics, and what it decodes
// image/jpeg decodes too, to the same bounds and image type.
func FuzzDecodeJPEG(f *testing.F) {
	// The decoder refuses larger images from their header, before it
	// allocates, so fuzzed headers of gigapixels stay fast. The seeds,
	// 640x480 at most, are below; fuzzMaxPixels (64x64) would refuse
	// most of them.
	const maxPixels = 1 << 20
	for _, data := range jpegCorpus(f) {
		if len(data) < 20000 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeJPEGLimit(data, maxPixels, nil)
		if err != nil {
			return
		}
		want, werr := jpeg.Decode(bytes.NewReader(data))
		if werr != nil {
			t.Fatalf("decoded %T %v; image/jpeg fails: %v", img, img.Bounds(), werr)
		}
		if img.Bounds() != want.Bounds() || fmt.Sprintf("%T", img) != fmt.Sprintf("%T", want) {
			t.Fatalf("%T %v, image/jpeg %T %v", img, img.Bounds(), want, want.Bounds())
		}
	})
}

// TestDecodeScratch decodes image after image into one scratch: each
// image is what a decoding without it gives.
func TestDecodeScratch(t *testing.T) {
	var s decodeScratch
	for name, data := range jpegCorpus(t) {
		want, err := decodeJPEGLimit(data, 0, nil)
		if err != nil {
			continue
		}
		got, err := decodeJPEGLimit(data, 0, &s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b := want.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if got.At(x, y) != want.At(x, y) {
					t.Fatalf("%s: pixel (%d, %d) %v, without scratch %v", name, x, y, got.At(x, y), want.At(x, y))
				}
			}
		}
	}
}

// TestJPEGMaxPixels: a JPEG larger than the limit is refused from its
// header with ErrTooManyPixels, though the fast decoder reads the file
// before image/jpeg's header check.
func TestJPEGMaxPixels(t *testing.T) {
	data := jpegCorpus(t)["go rgb 640x480 q90"]
	if _, err := decode(data, 640*480); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := decode(data, 640*480-1); !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("one pixel over the limit: %v, want ErrTooManyPixels", err)
	}
}
