package dataset

import (
	"image"
	"math"
)

// The bilinear resampler of Tensor and Augment. It computes what Pillow's
// Image.resize(size, Image.BILINEAR) computes for 8-bit images, which is
// what torchvision's Resize and RandomResizedCrop run on PIL images, so a
// model trained in PyTorch sees the same pixels here:
//
//   - each axis is resampled separately, horizontally first, with a
//     triangle filter that widens by the scale factor when shrinking
//     (antialiasing): output pixel i of n, from a source of length m,
//     centers at (i+0.5)·m/n and reads the source pixels within
//     max(m/n, 1) of it, weights normalised to sum 1;
//   - the weights are rounded to 22-bit fixed point and the sums to 8
//     bits (half up, clamped to 0..255) after each pass.
//
// An axis whose length does not change is not resampled. Only the part
// of the output inside the destination window is computed, and only the
// source rows it reads are converted and filtered.

// precision is the fixed-point precision of the filter weights (Pillow's
// PRECISION_BITS: 32 - 8 - 2).
const precision = 22

// taps are the filter weights of one output pixel: the source pixels
// first, first+1, ..., first+len(w)-1, each with weight w[i]/2^precision.
type taps struct {
	first int
	w     []int32
}

// filterTaps computes the taps of the output pixels lo..hi-1 of an axis
// resampled from length in to length out.
func filterTaps(in, out, lo, hi int) []taps {
	scale := float64(in) / float64(out)
	fscale := max(scale, 1)
	support := fscale // the triangle's support is 1, widened by fscale
	res := make([]taps, 0, hi-lo)
	var k []float64
	for i := lo; i < hi; i++ {
		center := (float64(i) + 0.5) * scale
		// int() truncates toward zero, as the C cast does
		x0 := max(int(center-support+0.5), 0)
		x1 := min(int(center+support+0.5), in)
		k = k[:0]
		sum := 0.0
		for x := x0; x < x1; x++ {
			t := math.Abs((float64(x) - center + 0.5) / fscale)
			w := 0.0
			if t < 1 {
				w = 1 - t
			}
			k = append(k, w)
			sum += w
		}
		tp := taps{first: x0, w: make([]int32, len(k))}
		for j, w := range k {
			if sum != 0 {
				w /= sum
			}
			// round half away from zero (the weights are never negative)
			tp.w[j] = int32(w*(1<<precision) + 0.5)
		}
		res = append(res, tp)
	}
	return res
}

// clip8 is a fixed-point sum rounded to 8 bits: the sum starts at half a
// unit, so the shift rounds half up.
func clip8(s int64) uint8 {
	v := s >> precision
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// resampleInto maps the source rectangle sr of src onto the destination
// rectangle dr (in dst's coordinates; it may reach past dst's bounds, as
// a center crop does) and writes the part inside dst's bounds, as 8-bit
// RGB over black (alpha 255). sr and dr must not be empty.
func resampleInto(dst *image.RGBA, dr image.Rectangle, src image.Image, sr image.Rectangle) {
	win := dr.Intersect(dst.Rect)
	if win.Empty() {
		return
	}
	sw, sh, dw, dh := sr.Dx(), sr.Dy(), dr.Dx(), dr.Dy()
	// output columns and rows of the dr-sized resized image that land in
	// dst, and the source pixels they read
	xcols := filterTapsOrCopy(sw, dw, win.Min.X-dr.Min.X, win.Max.X-dr.Min.X)
	yrows := filterTapsOrCopy(sh, dh, win.Min.Y-dr.Min.Y, win.Max.Y-dr.Min.Y)
	ylo, yhi := yrows[0].first, yrows[len(yrows)-1].first+len(yrows[len(yrows)-1].w)
	xlo := xcols[0].first
	xhi := xlo
	for _, t := range xcols {
		xhi = max(xhi, t.first+len(t.w))
	}
	// the source rows the vertical pass reads, columns xlo..xhi-1, as RGBA
	part := image.NewRGBA(image.Rect(0, 0, xhi-xlo, yhi-ylo))
	copyPixels(part, src, sr.Min.Add(image.Pt(xlo, ylo)))
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
			out[3*i], out[3*i+1], out[3*i+2] = clip8(r), clip8(g), clip8(b)
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
			d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = clip8(r), clip8(g), clip8(b), 255
		}
	}
}

// filterTapsOrCopy is filterTaps, or, when the axis keeps its length
// (Pillow skips the pass then), one tap of weight 1 per pixel, which
// copies it exactly.
func filterTapsOrCopy(in, out, lo, hi int) []taps {
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
