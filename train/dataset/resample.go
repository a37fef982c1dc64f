package dataset

import (
	"image"
	"math"
	"sync"
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
// source pixels it reads are converted and filtered: a row at a time from
// the image to 8-bit RGB (or gray), through the horizontal pass, into the
// rows the vertical pass reads; each output row goes to the caller as it
// is done, so that no whole-image copy is made.

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
// resampled from length in to length out. The weights share one array.
func filterTaps(in, out, lo, hi int) []taps {
	scale := float64(in) / float64(out)
	fscale := max(scale, 1)
	support := fscale // the triangle's support is 1, widened by fscale
	res := make([]taps, 0, hi-lo)
	ws := make([]int32, 0, (hi-lo)*(2*int(math.Ceil(support))+1))
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
		n := len(ws)
		for _, w := range k {
			if sum != 0 {
				w /= sum
			}
			// round half away from zero (the weights are never negative)
			ws = append(ws, int32(w*(1<<precision)+0.5))
		}
		res = append(res, taps{first: x0, w: ws[n:len(ws):len(ws)]})
	}
	return res
}

// half is the fixed-point sums' start: half a unit, so that the final
// shift rounds half up.
const half = 1 << (precision - 1)

// clip8 is a fixed-point sum rounded to 8 bits and clamped to 0..255.
// The sums fit in int32: the weights are positive and sum to about
// 2^precision, times at most 255.
func clip8(s int32) uint8 {
	v := s >> precision
	if uint32(v) > 255 {
		return uint8(^(v >> 31)) // 0 below, 255 above
	}
	return uint8(v)
}

// axis is how the output pixels 0..n-1 of a window along one axis read
// the source, relative to the source rectangle: pixel i reads the k
// pixels first[i]..first[i]+k-1 weighted by w[k*i:k*i+k]. k is a multiple
// of 4, so that the passes take the taps four at a time; the weights past
// a pixel's own taps are 0, so that the pixels they read (up to k-1 past
// hi) do not count. When the axis keeps its length (Pillow skips the pass
// then) k is 0: output pixel i is pixel lo+i, copied. The pixels that
// count are lo..hi-1.
type axis struct {
	k      int
	first  []int
	w      []int32
	lo, hi int
	wx     []int32 // for hpass3AVX2: w with each weight 4 times, or nil
}

// newAxis is the axis of output pixels lo..hi-1 of a length resampled
// from in to out.
func newAxis(in, out, lo, hi int) axis {
	if in == out {
		return axis{lo: lo, hi: hi}
	}
	taps := filterTaps(in, out, lo, hi)
	a := axis{lo: taps[0].first, hi: taps[0].first}
	for _, t := range taps {
		a.lo, a.hi = min(a.lo, t.first), max(a.hi, t.first+len(t.w))
		a.k = max(a.k, len(t.w))
	}
	a.k = (a.k + 3) &^ 3
	a.first = make([]int, len(taps))
	a.w = make([]int32, a.k*len(taps))
	for i, t := range taps {
		a.first[i] = t.first - a.lo
		copy(a.w[a.k*i:], t.w)
	}
	return a
}

// expand sets a.wx for hpass3AVX2, which multiplies the R, G, B (and a
// zero) of a pixel by 4 copies of its weight at once.
func (a *axis) expand() {
	a.wx = make([]int32, 4*len(a.w))
	for i, w := range a.w {
		a.wx[4*i], a.wx[4*i+1], a.wx[4*i+2], a.wx[4*i+3] = w, w, w, w
	}
}

// slack is how many bytes the buffers hold past the pixels the passes
// read and write, for the AVX2 passes' wider loads and stores.
const slack = 16

// scratch holds the buffers of one resampling, kept for the next one.
type scratch struct {
	row  []uint8 // one source row, converted
	mid  []uint8 // the rows the vertical pass reads
	out  []uint8 // one output row
	acc  []int32 // the vertical pass's sums
	axes [2]keyedAxis
}

// keyedAxis is an axis with newAxis's arguments, kept for the next image
// of the same size.
type keyedAxis struct {
	key [4]int
	a   axis
}

// axis returns newAxis(in, out, lo, hi) from slot i (0 for x, 1 for y),
// made again only when the slot holds another.
func (s *scratch) axis(i, in, out, lo, hi int) *axis {
	c := &s.axes[i]
	if key := [4]int{in, out, lo, hi}; c.key != key {
		c.key, c.a = key, newAxis(in, out, lo, hi)
	}
	return &c.a
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow returns b resized to n, reallocated only when too small.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// resampleRows maps the source rectangle sr of src onto the destination
// rectangle dr, which must contain the w x h window at the origin, and
// hands the window's rows to emit in order, y from 0 to h-1: w pixels of
// nc bytes, 8-bit RGB over black (nc 3) or gray (nc 1, the three channels
// being equal). sr must not be empty. A row passed to emit is valid only
// during the call.
func resampleRows(src image.Image, sr, dr image.Rectangle, w, h int, emit func(y int, row []uint8, nc int)) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	rows := rowsOf(src)
	nc := rows.nc
	xa := s.axis(0, sr.Dx(), dr.Dx(), -dr.Min.X, w-dr.Min.X)
	ya := s.axis(1, sr.Dy(), dr.Dy(), -dr.Min.Y, h-dr.Min.Y)
	stride := nc * w // of mid's rows: w output columns
	// k rows and pixels of slack for the taps of weight 0
	s.mid = grow(s.mid, stride*(ya.hi-ya.lo+ya.k)+slack)
	s.row = grow(s.row, nc*(xa.hi-xa.lo+xa.k)+slack)
	if useAVX2 && nc == 3 && xa.k != 0 && xa.wx == nil {
		xa.expand()
	}
	x0, x1 := sr.Min.X+xa.lo, sr.Min.X+xa.hi
	for y := ya.lo; y < ya.hi; y++ {
		m := s.mid[stride*(y-ya.lo):]
		if xa.k == 0 {
			rows.read(sr.Min.Y+y, x0, x1, m)
			continue
		}
		rows.read(sr.Min.Y+y, x0, x1, s.row)
		if nc == 3 {
			hpass3(m, s.row, xa)
		} else {
			hpass1(m, s.row, xa)
		}
	}
	if ya.k == 0 {
		for y := range h {
			emit(y, s.mid[stride*y:stride*(y+1)], nc)
		}
		return
	}
	s.out = grow(s.out, stride)
	s.acc = grow(s.acc, stride)
	for y, first := range ya.first {
		vpass(s.out, s.acc, s.mid[stride*first:], stride, ya.w[ya.k*y:ya.k*(y+1)])
		emit(y, s.out, nc)
	}
}

// hpass3 resamples one row of RGB pixels, src (whose first pixel is the
// axis's pixel lo, followed by a.k pixels and slack bytes), into dst (3
// bytes a pixel, and slack).
func hpass3(dst, src []uint8, a *axis) {
	if useAVX2 && a.wx != nil {
		n := len(a.first)
		_ = dst[3*n]                   // the last pixel's 4-byte store
		_ = src[3*(a.hi-a.lo+a.k)+4-1] // the last taps' 16-byte load
		hpass3AVX2(&dst[0], &src[0], &a.first[0], &a.wx[0], a.k, n)
		return
	}
	hpass3Go(dst, src, a)
}

// hpass3Go is hpass3 in Go.
func hpass3Go(dst, src []uint8, a *axis) {
	k := a.k
	dst = dst[:3*len(a.first)]
	for i, first := range a.first {
		p := src[3*first : 3*(first+k)]
		w := a.w[k*i : k*(i+1)]
		r, g, b := int32(half), int32(half), int32(half)
		for len(w) >= 4 && len(p) >= 12 {
			w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
			r += int32(p[0])*w0 + int32(p[3])*w1 + int32(p[6])*w2 + int32(p[9])*w3
			g += int32(p[1])*w0 + int32(p[4])*w1 + int32(p[7])*w2 + int32(p[10])*w3
			b += int32(p[2])*w0 + int32(p[5])*w1 + int32(p[8])*w2 + int32(p[11])*w3
			w, p = w[4:], p[12:]
		}
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0], d[1], d[2] = clip8(r), clip8(g), clip8(b)
	}
}

// hpass1 is hpass3 for gray pixels.
func hpass1(dst, src []uint8, a *axis) {
	k := a.k
	dst = dst[:len(a.first)]
	for i, first := range a.first {
		p := src[first : first+k]
		w := a.w[k*i : k*(i+1)]
		v := int32(half)
		for len(w) >= 4 && len(p) >= 4 {
			v += int32(p[0])*w[0] + int32(p[1])*w[1] + int32(p[2])*w[2] + int32(p[3])*w[3]
			w, p = w[4:], p[4:]
		}
		dst[i] = clip8(v)
	}
}

// vpass computes one output row, out, from len(w) rows of rows, stride
// bytes apart, weighted by w (a multiple of 4 long). Every byte of a row
// is filtered alike, whatever channel it holds.
func vpass(out []uint8, acc []int32, rows []uint8, stride int, w []int32) {
	n := len(out)
	if useAVX2 && n >= 32 {
		_ = rows[(len(w)-1)*stride+n-1]
		m := n &^ 31
		vpassAVX2(&out[0], &rows[0], stride, &w[0], len(w), m)
		if m == n {
			return
		}
		out, rows = out[m:], rows[m:]
	}
	vpassGo(out, acc, rows, stride, w)
}

// vpassGo is vpass in Go.
func vpassGo(out []uint8, acc []int32, rows []uint8, stride int, w []int32) {
	n := len(out)
	if len(w) == 4 {
		r0, r1, r2, r3 := rows[:n], rows[stride:stride+n], rows[2*stride:2*stride+n], rows[3*stride:3*stride+n]
		w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
		for x := range out {
			out[x] = clip8(half + int32(r0[x])*w0 + int32(r1[x])*w1 + int32(r2[x])*w2 + int32(r3[x])*w3)
		}
		return
	}
	acc = acc[:n]
	for x := range acc {
		acc[x] = half
	}
	for j := 0; j+4 <= len(w); j += 4 {
		r := rows[j*stride:]
		r0, r1, r2, r3 := r[:n], r[stride:stride+n], r[2*stride:2*stride+n], r[3*stride:3*stride+n]
		w0, w1, w2, w3 := w[j], w[j+1], w[j+2], w[j+3]
		for x := range acc {
			acc[x] += int32(r0[x])*w0 + int32(r1[x])*w1 + int32(r2[x])*w2 + int32(r3[x])*w3
		}
	}
	for x, s := range acc {
		out[x] = clip8(s)
	}
}
