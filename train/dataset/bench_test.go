package dataset

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand"
	"testing"
)

// photoLike is a w x h image with smooth gradients, edges and noise, so
// that its JPEG decodes about as slowly as a photograph's.
func photoLike(w, h int, seed int64) *image.RGBA {
	rng := rand.New(rand.NewSource(seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			p := img.Pix[img.PixOffset(x, y):]
			band := uint8(0)
			if (x/37+y/23)%3 == 0 {
				band = 60
			}
			p[0] = uint8(x*255/w) + band + uint8(rng.Intn(24))
			p[1] = uint8(y*255/h) + uint8(rng.Intn(24))
			p[2] = uint8((x+y)*127/(w+h)) + band/2 + uint8(rng.Intn(24))
			p[3] = 255
		}
	}
	return img
}

// benchJPEG is a 640x480 4:2:0 JPEG, the shape of a typical data set image.
func benchJPEG(b *testing.B) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photoLike(640, 480, 1), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkImage is one image's trip to a 224x224 tensor, resized to 256
// and center-cropped as in `graft adapt --resize 256`, in parts.
func BenchmarkImage(b *testing.B) {
	data := benchJPEG(b)
	p := &Preprocess{Height: 224, Width: 224, Resize: 256}
	c, err := p.compile()
	if err != nil {
		b.Fatal(err)
	}
	img, err := decode(data, 0)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, p.Size())
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := decode(data, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-pooled", func(b *testing.B) {
		// as the decoding workers decode (decodePooled): one scratch, its
		// planes and Huffman tables reused image after image
		var s decodeScratch
		for b.Loop() {
			if _, err := decodeWith(data, 0, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-image-jpeg", func(b *testing.B) { // what decode replaced for JPEGs
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tensor", func(b *testing.B) {
		for b.Loop() {
			if err := c.tensor(img, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("augment", func(b *testing.B) {
		rng := rand.New(rand.NewSource(1))
		for b.Loop() {
			if err := p.Augment(img, rng, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode+tensor", func(b *testing.B) {
		for b.Loop() {
			img, err := decode(data, 0)
			if err == nil {
				err = c.tensor(img, dst)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStages times each stage of BenchmarkImage's tensor over the
// pixels it handles: the 425x425 source pixels the crop reads, converted
// from YCbCr and resampled horizontally, then the 224 rows of the
// vertical pass and of the writes.
func BenchmarkStages(b *testing.B) {
	img, err := decode(benchJPEG(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	c, err := (&Preprocess{Height: 224, Width: 224, Resize: 256}).compile()
	if err != nil {
		b.Fatal(err)
	}
	xa := newAxis(640, 341, 58, 58+224)
	ya := newAxis(480, 256, 16, 16+224)
	if useAVX2 {
		xa.expand()
	}
	n := xa.hi - xa.lo
	rows := rowsOf(img)
	row := make([]uint8, 3*(n+xa.k)+slack)
	mid := make([]uint8, 3*224*(ya.hi-ya.lo+ya.k)+slack)
	out, acc := make([]uint8, 3*224), make([]int32, 3*224)
	b.Run("ycbcr", func(b *testing.B) {
		for b.Loop() {
			for y := ya.lo; y < ya.hi; y++ {
				rows.read(y, xa.lo, xa.hi, row)
			}
		}
	})
	b.Run("hpass", func(b *testing.B) {
		for b.Loop() {
			for y := ya.lo; y < ya.hi; y++ {
				hpass3(mid[3*224*(y-ya.lo):], row, &xa)
			}
		}
	})
	b.Run("vpass", func(b *testing.B) {
		for b.Loop() {
			for y, first := range ya.first {
				vpass(out, acc, mid[3*224*first:], 3*224, ya.w[ya.k*y:ya.k*(y+1)])
			}
		}
	})
	dst := make([]float32, 3*224*224)
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			for y := range 224 {
				c.writeColor(y, out, 3, false, dst)
			}
		}
	})
}
