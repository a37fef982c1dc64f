package dataset

// The preprocessing as graft first wrote it, kept as the reference that
// the fast paths must match to the bit: each pixel converted through
// image.Image's interfaces into an RGBA copy of the source rectangle,
// resampled with 64-bit sums, written to the tensor pixel by pixel.

import (
	"image"
	"image/color"
)

// refTensor is prep.tensor by the reference path.
func (c *prep) refTensor(img image.Image, dst []float32) {
	b := img.Bounds()
	rw, rh := resizeDims(b.Dx(), b.Dy(), c.resize)
	x0, y0 := cropOffset(rw, c.w), cropOffset(rh, c.h)
	dr := image.Rect(-x0, -y0, rw-x0, rh-y0)
	c.refWrite(refResample(img, b, dr, c.w, c.h), false, dst)
}

// refResample maps src's part sr onto dr and returns the w x h window of the
// result at the origin, 8-bit RGB over black. When sr and dr have the same
// size no filtering is done: the pixels are copied.
func refResample(src image.Image, sr, dr image.Rectangle, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if sr.Size() == dr.Size() {
		refCopyPixels(dst, src, sr.Min.Sub(dr.Min))
		return dst
	}
	refResampleInto(dst, dr, src, sr)
	return dst
}

// refCopyPixels sets each dst pixel p to src's pixel p+off, as 8-bit values
// premultiplied by alpha (that is, over black), through At and RGBA.
func refCopyPixels(dst *image.RGBA, src image.Image, off image.Point) {
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	row := func(y int) []uint8 { return dst.Pix[y*dst.Stride : y*dst.Stride+4*w] }
	switch s := src.(type) {
	case *image.Paletted:
		var pal [256][4]uint8
		for i := range pal {
			c := color.Color(color.Black) // what an index past the palette shows
			if i < len(s.Palette) {
				c = s.Palette[i]
			}
			refSetRGBA(pal[i][:], c)
		}
		for y := range h {
			d, sp := row(y), s.Pix[s.PixOffset(off.X, y+off.Y):]
			for x := range w {
				copy(d[4*x:4*x+4], pal[sp[x]][:])
			}
		}
	default:
		for y := range h {
			d := row(y)
			for x := range w {
				refSetRGBA(d[4*x:], src.At(x+off.X, y+off.Y))
			}
		}
	}
}

// refSetRGBA stores c as 8-bit premultiplied values.
func refSetRGBA(d []uint8, c color.Color) {
	r, g, b, a := c.RGBA()
	d[0], d[1], d[2], d[3] = uint8(r>>8), uint8(g>>8), uint8(b>>8), uint8(a>>8)
}

// refWrite scales, normalizes and lays out the pixels of img (c.w x c.h
// at the origin) into dst, mirrored left to right when flip is set: one
// channel as gray pixels as they are and color ones by their luma, three
// in RGB or BGR order, each value by its own float32 steps.
func (c *prep) refWrite(img *image.RGBA, flip bool, dst []float32) {
	plane := c.h * c.w
	for y := 0; y < c.h; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < c.w; x++ {
			sx := x
			if flip {
				sx = c.w - 1 - x
			}
			px := row[4*sx : 4*sx+3 : 4*sx+3]
			i := y*c.w + x
			if c.c == 1 {
				v := float32(px[0])
				if px[0] != px[1] || px[1] != px[2] {
					v = float32(0.299*float32(px[0])) + float32(0.587*float32(px[1])) + float32(0.114*float32(px[2]))
				}
				dst[i] = (float32(v*c.scale) - c.mean[0]) / c.std[0]
				continue
			}
			for ch := range 3 {
				v := px[ch]
				if c.bgr {
					v = px[2-ch]
				}
				f := (float32(float32(v)*c.scale) - c.mean[ch]) / c.std[ch]
				if c.nhwc {
					dst[i*3+ch] = f
				} else {
					dst[ch*plane+i] = f
				}
			}
		}
	}
}

// refClip8 is a fixed-point sum rounded to 8 bits: the sum starts at half a
// unit, so the shift rounds half up.
func refClip8(s int64) uint8 {
	v := s >> precision
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// refResampleInto maps the source rectangle sr of src onto the destination
// rectangle dr (in dst's coordinates; it may reach past dst's bounds, as
// a center crop does) and writes the part inside dst's bounds, as 8-bit
// RGB over black (alpha 255). sr and dr must not be empty.
func refResampleInto(dst *image.RGBA, dr image.Rectangle, src image.Image, sr image.Rectangle) {
	win := dr.Intersect(dst.Rect)
	if win.Empty() {
		return
	}
	sw, sh, dw, dh := sr.Dx(), sr.Dy(), dr.Dx(), dr.Dy()
	// output columns and rows of the dr-sized resized image that land in
	// dst, and the source pixels they read
	xcols := refFilterTapsOrCopy(sw, dw, win.Min.X-dr.Min.X, win.Max.X-dr.Min.X)
	yrows := refFilterTapsOrCopy(sh, dh, win.Min.Y-dr.Min.Y, win.Max.Y-dr.Min.Y)
	ylo, yhi := yrows[0].first, yrows[len(yrows)-1].first+len(yrows[len(yrows)-1].w)
	xlo := xcols[0].first
	xhi := xlo
	for _, t := range xcols {
		xhi = max(xhi, t.first+len(t.w))
	}
	// the source rows the vertical pass reads, columns xlo..xhi-1, as RGBA
	part := image.NewRGBA(image.Rect(0, 0, xhi-xlo, yhi-ylo))
	refCopyPixels(part, src, sr.Min.Add(image.Pt(xlo, ylo)))
	// horizontal pass: those rows, at the output's width (3 bytes a pixel)
	ow := len(xcols)
	mid := make([]uint8, 3*ow*(yhi-ylo))
	for y := range yhi - ylo {
		in := part.Pix[y*part.Stride:]
		out := mid[3*ow*y:]
		for i, t := range xcols {
			r, g, b := int64(1)<<(precision-1), int64(1)<<(precision-1), int64(1)<<(precision-1)
			p := in[4*(t.first-xlo):]
			for j, w := range t.w {
				q := p[4*j : 4*j+3 : 4*j+3]
				r += int64(q[0]) * int64(w)
				g += int64(q[1]) * int64(w)
				b += int64(q[2]) * int64(w)
			}
			out[3*i], out[3*i+1], out[3*i+2] = refClip8(r), refClip8(g), refClip8(b)
		}
	}
	// vertical pass, into dst
	for i, t := range yrows {
		d := dst.Pix[dst.PixOffset(win.Min.X, win.Min.Y+i):]
		for x := range ow {
			r, g, b := int64(1)<<(precision-1), int64(1)<<(precision-1), int64(1)<<(precision-1)
			for j, w := range t.w {
				q := mid[3*((t.first-ylo+j)*ow+x):]
				r += int64(q[0]) * int64(w)
				g += int64(q[1]) * int64(w)
				b += int64(q[2]) * int64(w)
			}
			d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = refClip8(r), refClip8(g), refClip8(b), 255
		}
	}
}

// refFilterTapsOrCopy is filterTaps, or, when the axis keeps its length
// (Pillow skips the pass then), one tap of weight 1 per pixel, which
// copies it exactly.
func refFilterTapsOrCopy(in, out, lo, hi int) []taps {
	if in != out {
		return filterTaps(in, out, lo, hi)
	}
	one := []int32{1 << precision}
	res := make([]taps, 0, hi-lo)
	for i := lo; i < hi; i++ {
		res = append(res, taps{first: i, w: one})
	}
	return res
}
