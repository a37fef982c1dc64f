package dataset

import (
	"image"
	"image/color"
)

// A rowReader writes the pixels x0..x1-1 of an image's row y into out as
// 8-bit values premultiplied by alpha (that is, composited over black),
// nc bytes a pixel: nc is 1 for gray images, whose three channels are
// equal, and 3 (R, G, B) for the others. Each value is what the image's
// At(x, y).RGBA() gives, shifted right by 8; the readers of the common
// types compute it without an interface call per pixel. A reader may
// overwrite up to slack bytes after the row when out's capacity has them
// (the AVX2 YCbCr conversion stores 4 bytes more).
type rowReader struct {
	nc   int
	read func(y, x0, x1 int, out []uint8)
}

// rowsOf returns the rowReader of img.
func rowsOf(img image.Image) rowReader {
	switch s := img.(type) {
	case *image.YCbCr:
		return rowReader{3, func(y, x0, x1 int, out []uint8) { ycbcrRow(s, y, x0, x1, out) }}
	case *image.Gray:
		return rowReader{1, func(y, x0, x1 int, out []uint8) {
			i := s.PixOffset(x0, y)
			copy(out[:x1-x0], s.Pix[i:])
		}}
	case *image.Gray16:
		return rowReader{1, func(y, x0, x1 int, out []uint8) {
			p := s.Pix[s.PixOffset(x0, y):]
			p = p[:2*(x1-x0)]
			out = out[:x1-x0]
			for x := range out {
				out[x] = p[2*x] // the high byte
			}
		}}
	case *image.RGBA:
		return rowReader{3, func(y, x0, x1 int, out []uint8) {
			p := s.Pix[s.PixOffset(x0, y):]
			p = p[:4*(x1-x0)]
			out = out[:3*(x1-x0)]
			for len(p) >= 4 && len(out) >= 3 {
				out[0], out[1], out[2] = p[0], p[1], p[2]
				p, out = p[4:], out[3:]
			}
		}}
	case *image.NRGBA:
		return rowReader{3, func(y, x0, x1 int, out []uint8) {
			p := s.Pix[s.PixOffset(x0, y):]
			p = p[:4*(x1-x0)]
			out = out[:3*(x1-x0)]
			for len(p) >= 4 && len(out) >= 3 {
				// color.NRGBA.RGBA, shifted right by 8
				a := uint32(p[3])
				out[0] = uint8(uint32(p[0]) * 0x101 * a / 0xff >> 8)
				out[1] = uint8(uint32(p[1]) * 0x101 * a / 0xff >> 8)
				out[2] = uint8(uint32(p[2]) * 0x101 * a / 0xff >> 8)
				p, out = p[4:], out[3:]
			}
		}}
	case *image.RGBA64:
		return rowReader{3, func(y, x0, x1 int, out []uint8) {
			p := s.Pix[s.PixOffset(x0, y):]
			p = p[:8*(x1-x0)]
			out = out[:3*(x1-x0)]
			for len(p) >= 8 && len(out) >= 3 {
				out[0], out[1], out[2] = p[0], p[2], p[4] // the high bytes
				p, out = p[8:], out[3:]
			}
		}}
	case *image.NRGBA64:
		return rowReader{3, func(y, x0, x1 int, out []uint8) {
			p := s.Pix[s.PixOffset(x0, y):]
			p = p[:8*(x1-x0)]
			out = out[:3*(x1-x0)]
			for len(p) >= 8 && len(out) >= 3 {
				// color.NRGBA64.RGBA, shifted right by 8
				a := uint32(p[6])<<8 | uint32(p[7])
				out[0] = uint8((uint32(p[0])<<8 | uint32(p[1])) * a / 0xffff >> 8)
				out[1] = uint8((uint32(p[2])<<8 | uint32(p[3])) * a / 0xffff >> 8)
				out[2] = uint8((uint32(p[4])<<8 | uint32(p[5])) * a / 0xffff >> 8)
				p, out = p[8:], out[3:]
			}
		}}
	case *image.Paletted:
		var pal [256][3]uint8
		for i := range pal {
			c := color.Color(color.Black) // what an index past the palette shows
			if i < len(s.Palette) {
				c = s.Palette[i]
			}
			pal[i] = rgb8(c)
		}
		return rowReader{3, func(y, x0, x1 int, out []uint8) {
			p := s.Pix[s.PixOffset(x0, y):]
			p = p[:x1-x0]
			out = out[:3*len(p)]
			for x, k := range p {
				c := &pal[k]
				o := out[3*x : 3*x+3 : 3*x+3]
				o[0], o[1], o[2] = c[0], c[1], c[2]
			}
		}}
	}
	return rowReader{3, func(y, x0, x1 int, out []uint8) {
		out = out[:3*(x1-x0)]
		for x := x0; x < x1; x++ {
			c := rgb8(img.At(x, y))
			o := out[3*(x-x0) : 3*(x-x0)+3 : 3*(x-x0)+3]
			o[0], o[1], o[2] = c[0], c[1], c[2]
		}
	}}
}

// rgb8 is c's premultiplied color, 8 bits a channel.
func rgb8(c color.Color) [3]uint8 {
	r, g, b, _ := c.RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

// ycbcrRow is the rowReader of a YCbCr image: color.YCbCrToRGB of each
// pixel, whatever the chroma subsampling.
func ycbcrRow(s *image.YCbCr, y, x0, x1 int, out []uint8) {
	ys := s.Y[s.YOffset(x0, y):]
	ys = ys[:x1-x0]
	out = out[:3*len(ys)]
	if x0 < 0 {
		// COffset divides x rounding toward zero, not down
		for x := x0; x < x1; x++ {
			i := s.COffset(x, y)
			o := out[3*(x-x0) : 3*(x-x0)+3 : 3*(x-x0)+3]
			o[0], o[1], o[2] = color.YCbCrToRGB(s.Y[s.YOffset(x, y)], s.Cb[i], s.Cr[i])
		}
		return
	}
	// log2 of the chroma's horizontal subsampling: for x >= 0 pixel x's
	// chroma sample is x>>sh - x0>>sh after x0's
	sh := 0
	switch s.SubsampleRatio {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		sh = 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		sh = 2
	}
	c0 := s.COffset(x0, y)
	n := (x1-1)>>sh - x0>>sh + 1
	cb := s.Cb[c0 : c0+n]
	cr := s.Cr[c0 : c0+n]
	cr = cr[:len(cb)]
	if useAVX2 && sh <= 1 && cap(out) >= len(out)+slack {
		// 8 pixels at a time from an even pixel, the rest in Go
		odd := x0 & sh
		m := (len(ys) - odd) &^ 7
		if m > 0 {
			if sh == 0 {
				yccAVX2(&out[0], &ys[0], &cb[0], &cr[0], m, false)
				ys, cb, cr, out = ys[m:], cb[m:], cr[m:], out[3*m:]
			} else {
				if odd == 1 {
					ycbcrPairs(ys[:1], cb[:1], cr[:1], 1, out[:3])
				}
				yccAVX2(&out[3*odd], &ys[odd], &cb[odd], &cr[odd], m, true)
				ys, cb, cr, out = ys[odd+m:], cb[odd+m/2:], cr[odd+m/2:], out[3*(odd+m):]
				odd = 0
			}
		}
		if sh == 1 {
			ycbcrPairs(ys, cb, cr, odd, out)
			return
		}
	}
	if sh == 1 {
		ycbcrPairs(ys, cb, cr, x0&1, out)
		return
	}
	// the pixels of sample k are x0's run: up to the next multiple of
	// 1<<sh, all but the first run 1<<sh long, the last cut at x1
	x, end := 0, (x0>>sh+1)<<sh-x0
	for k, b := range cb {
		// color.YCbCrToRGB's sums, their chroma parts once a sample
		cb1, cr1 := int32(b)-128, int32(cr[k])-128
		rc, gc, bc := 91881*cr1, -22554*cb1-46802*cr1, 116130*cb1
		for ; x < min(end, len(ys)); x++ {
			yy := int32(ys[x]) * 0x10101
			o := out[3*x : 3*x+3 : 3*x+3]
			o[0], o[1], o[2] = clip16(yy+rc), clip16(yy+gc), clip16(yy+bc)
		}
		end += 1 << sh
	}
}

// ycbcrPairs is ycbcrRow for chroma halved horizontally: pixel x of ys
// has chroma sample (x+odd)/2, odd being 1 when the row starts at the
// second pixel of a pair.
func ycbcrPairs(ys, cb, cr []uint8, odd int, out []uint8) {
	x := 0
	if odd == 1 {
		// the first pixel ends the pair of chroma sample 0
		cb1, cr1 := int32(cb[0])-128, int32(cr[0])-128
		yy := int32(ys[0]) * 0x10101
		out[0], out[1], out[2] = clip16(yy+91881*cr1), clip16(yy-22554*cb1-46802*cr1), clip16(yy+116130*cb1)
		x, cb, cr = 1, cb[1:], cr[1:]
	}
	cr = cr[:len(cb)]
	for k, b := range cb {
		cb1, cr1 := int32(b)-128, int32(cr[k])-128
		rc, gc, bc := 91881*cr1, -22554*cb1-46802*cr1, 116130*cb1
		if x+1 < len(ys) {
			y0, y1 := int32(ys[x])*0x10101, int32(ys[x+1])*0x10101
			o := out[3*x : 3*x+6 : 3*x+6]
			o[0], o[1], o[2] = clip16(y0+rc), clip16(y0+gc), clip16(y0+bc)
			o[3], o[4], o[5] = clip16(y1+rc), clip16(y1+gc), clip16(y1+bc)
			x += 2
			continue
		}
		if x < len(ys) { // a last pixel alone
			yy := int32(ys[x]) * 0x10101
			o := out[3*x : 3*x+3 : 3*x+3]
			o[0], o[1], o[2] = clip16(yy+rc), clip16(yy+gc), clip16(yy+bc)
		}
	}
}

// clip16 is v>>16 when v is in [0, 2^24), else 0 below and 255 above, as
// color.YCbCrToRGB rounds.
func clip16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}
