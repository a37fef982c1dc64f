package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
)

// This file is a decoder for the JPEGs cameras, phones and image libraries
// write: baseline or extended sequential Huffman coding, 8-bit samples,
// one gray component or three YCbCr ones with the chroma at one sample
// per MCU, all of them in one scan, restart markers or not. It decodes
// such a 640x480 photo about four times as fast as image/jpeg (1.05
// against 4.0-4.2 ms; BenchmarkImage/decode-pooled, as the decoding
// workers run it, against decode-image-jpeg), whose bit reading and
// Huffman decoding take 70% of its time: it reads the entropy-coded
// data eight bytes at a time, decodes most AC coefficients, code and
// value together, with one 11-bit table lookup, and runs its inverse DCT
// in AVX2 where the CPU has it.
//
// Its inverse DCT is libjpeg's default one (JDCT_ISLOW, the Loeffler,
// Ligtenberg and Moschytz algorithm in 13-bit fixed point), so the gray
// and YCbCr planes it writes are the ones libjpeg-turbo, hence Pillow,
// decodes; image/jpeg's inverse DCT differs from it by a unit here and
// there. The image types are image/jpeg's: *image.Gray and *image.YCbCr.
//
// Anything else (progressive, arithmetic coding, 12-bit samples, CMYK,
// RGB JPEGs, one scan per component, other subsamplings) and any file it
// finds malformed are left to image/jpeg: decodeJPEGLimit then returns
// an error and the caller decodes with image/jpeg, which either reads the
// file its own way or gives the error the user sees. So this decoder
// never refuses a file image/jpeg reads, and its own errors need no
// detail.

var errJPEGFallback = errors.New("jpeg: left to image/jpeg")

// jpegZigzag maps the zigzag order of coefficients in the stream to their
// row-major index in the 8x8 block (ITU T.81 figure A.6).
var jpegZigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// huffLookBits is how many bits of the stream one table lookup decodes.
const huffLookBits = 11

// jpegHuff is one Huffman table in decoding form.
type jpegHuff struct {
	// look[b] for the next huffLookBits bits b is len<<8 | symbol for a
	// code of at most huffLookBits bits, 0 for a longer one.
	look [1 << huffLookBits]uint16
	// ac[b] decodes an AC coefficient's code and value together when
	// both fit in the huffLookBits bits b: value<<8 | run<<4 | bits used
	// (0: not in the table). DC tables leave it empty.
	ac [1 << huffLookBits]int32
	// maxCode[l] is the largest code of l bits (-1: none) and
	// offset[l] is added to a code of l bits to index vals.
	maxCode [18]int32
	offset  [17]int32
	vals    [256]uint8
	// key is the DHT bytes the table was built from: the next image of
	// the same encoder (or camera) has the same tables, which are then
	// not built again.
	key []byte
}

// jpegTables are the Huffman tables of a decoding, by class (DC, AC)
// and destination.
type jpegTables [2][4]jpegHuff

// build makes the decoding tables from a DHT segment's 16 counts and the
// symbols after them; the ac table only for an AC table (ac set), as only
// AC coefficients are decoded with it.
func (h *jpegHuff) build(counts []byte, vals []byte, ac bool) error {
	*h = jpegHuff{key: h.key[:0]}
	copy(h.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		h.offset[l] = k - code
		if n == 0 {
			h.maxCode[l] = -1
		} else {
			h.maxCode[l] = code + n - 1
		}
		for range n {
			if code >= 1<<l {
				return errJPEGFallback // more codes than l bits hold
			}
			if l <= huffLookBits {
				shift := huffLookBits - l
				for j := code << shift; j < (code+1)<<shift; j++ {
					h.look[j] = uint16(l)<<8 | uint16(vals[k])
				}
			}
			code++
			k++
		}
		code <<= 1
	}
	h.maxCode[17] = 1 << 30 // ends the slow search (an invalid code is caught there)
	if !ac {
		return nil
	}
	for b := range h.look {
		e := h.look[b]
		l, rs := int32(e>>8), int32(e&0xff)
		run, size := rs>>4, rs&15
		if e == 0 || size == 0 || l+size > huffLookBits {
			continue
		}
		v := extend(int32(b>>(huffLookBits-l-size))&(1<<size-1), size)
		h.ac[b] = v<<8 | run<<4 | (l + size)
	}
	return nil
}

// jpegBits reads the entropy-coded data of a scan, most significant bit
// first, taking out the 0x00 stuffed after each 0xFF byte. At a marker it
// stops reading and shifts in zeros: n goes negative when a block used
// them, which a valid stream never does.
type jpegBits struct {
	data []byte
	pos  int
	acc  uint64 // the next bits, left-aligned
	n    int    // how many of acc's bits are the stream's
}

// fill tops the accumulator up to at least 57 bits unless a marker or the
// end of the data comes first.
func (r *jpegBits) fill() {
	if r.pos+8 <= len(r.data) {
		v := binary.BigEndian.Uint64(r.data[r.pos:])
		// No 0xFF byte among the eight: take as many whole bytes as fit.
		if x := ^v; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			take := (64 - r.n) >> 3
			r.acc |= v >> (64 - 8*take) << (64 - r.n - 8*take)
			r.pos += take
			r.n += 8 * take
			return
		}
	}
	for r.n <= 56 {
		if r.pos >= len(r.data) {
			return
		}
		b := r.data[r.pos]
		if b == 0xff {
			if r.pos+1 >= len(r.data) || r.data[r.pos+1] != 0 {
				return // a marker
			}
			r.pos++
		}
		r.pos++
		r.acc |= uint64(b) << (56 - r.n)
		r.n += 8
	}
}

// extend returns the signed value v codes in s bits, s from 1 to 16
// (ITU T.81 F.2.2.1 EXTEND): a top bit of 0 makes it negative. The masks
// change no shift; they show the compiler that none needs a range check.
func extend(v, s int32) int32 {
	if v < 1<<((s-1)&31) {
		v -= 1<<(s&31) - 1
	}
	return v
}

// receive takes s bits (1 to 16) and returns the signed value they code
// (ITU T.81 F.2.2.1 RECEIVE, then EXTEND).
func (r *jpegBits) receive(s int32) int32 {
	v := int32(r.acc >> (64 - s))
	r.acc <<= s
	r.n -= int(s)
	return extend(v, s)
}

// decode returns the next symbol coded with h.
func (r *jpegBits) decode(h *jpegHuff) (int32, error) {
	if e := h.look[r.acc>>(64-huffLookBits)]; e != 0 {
		l := int(e >> 8)
		r.acc <<= l
		r.n -= l
		return int32(e & 0xff), nil
	}
	l := huffLookBits + 1
	code := int32(r.acc >> (64 - l))
	for code > h.maxCode[l] {
		l++
		code = int32(r.acc >> (64 - l))
	}
	if l > 16 {
		return 0, errJPEGFallback
	}
	r.acc <<= l
	r.n -= l
	return int32(h.vals[(code+h.offset[l])&0xff]), nil
}

// jpegComp is a component of the frame.
type jpegComp struct {
	id     byte
	h, v   int // sampling factors
	tq     int // quantization table
	td, ta int // Huffman tables of the scan
	pred   int32
	plane  []uint8
	stride int
}

// jpegDec holds a decoding's state.
type jpegDec struct {
	data          []byte
	pos           int
	quant         [4][64]int32 // in zigzag order
	quantSet      [4]bool
	huff          *jpegTables
	defined       [2][4]bool // the tables this file defines
	comps         []jpegComp // nil until the frame header (SOF)
	width, height int
	restart       int
	jfif          bool
	adobe         int  // APP14 transform, -1 without APP14
	baseline      bool // SOF0: Huffman tables 0 and 1 only (T.81 table B.5)
	img           image.Image
	scratch       *decodeScratch // memory for the planes, when not nil
	maxPixels     int64          // checkSize's limit (0: DefaultMaxPixels)
}

// planes returns n bytes for the image's planes, from d.scratch when
// there is one. They are not cleared: the scan writes every byte.
func (d *jpegDec) planes(n int) []byte {
	if d.scratch == nil {
		return make([]byte, n)
	}
	if cap(d.scratch.pix) < n {
		d.scratch.pix = make([]byte, n)
	}
	return d.scratch.pix[:n]
}

// decodeJPEGLimit decodes data, a whole JPEG file, or returns an error
// when image/jpeg should (see the top of this file), as for the images of
// more than maxPixels pixels (0: DefaultMaxPixels): it refuses those from
// their header, with checkSize. The planes are s's memory when s is not
// nil.
func decodeJPEGLimit(data []byte, maxPixels int64, s *decodeScratch) (image.Image, error) {
	d := &jpegDec{data: data, adobe: -1, scratch: s, maxPixels: maxPixels}
	if s != nil {
		if s.huff == nil {
			s.huff = new(jpegTables)
		}
		d.huff = s.huff
	} else {
		d.huff = new(jpegTables)
	}
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		return nil, errJPEGFallback
	}
	d.pos = 2
	for {
		// Markers may be preceded by 0xFF fill bytes.
		if d.pos+2 > len(data) || data[d.pos] != 0xff {
			return nil, errJPEGFallback
		}
		for d.pos < len(data) && data[d.pos] == 0xff {
			d.pos++
		}
		if d.pos >= len(data) {
			return nil, errJPEGFallback
		}
		marker := data[d.pos]
		d.pos++
		if marker == 0xd9 { // EOI
			if d.img == nil {
				return nil, errJPEGFallback
			}
			return d.img, nil
		}
		if d.pos+2 > len(data) {
			return nil, errJPEGFallback
		}
		n := int(data[d.pos])<<8 | int(data[d.pos+1])
		if n < 2 || d.pos+n > len(data) {
			return nil, errJPEGFallback
		}
		seg := data[d.pos+2 : d.pos+n]
		d.pos += n
		var err error
		switch {
		case d.img != nil:
			// Only EOI may follow the scan: a second scan is image/jpeg's.
			err = errJPEGFallback
		case marker == 0xc0 || marker == 0xc1:
			d.baseline = marker == 0xc0
			err = d.frame(seg)
		case marker == 0xc4:
			err = d.huffman(seg)
		case marker == 0xdb:
			err = d.quantization(seg)
		case marker == 0xdd:
			if len(seg) != 2 {
				return nil, errJPEGFallback
			}
			d.restart = int(seg[0])<<8 | int(seg[1])
		case marker == 0xda:
			err = d.scan(seg)
		case marker == 0xe0:
			d.jfif = len(seg) >= 5 && string(seg[:5]) == "JFIF\x00"
		case marker == 0xee:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe = int(seg[11])
			}
		case marker >= 0xe1 && marker <= 0xef || marker == 0xfe:
			// other APPn and comments
		default:
			err = errJPEGFallback
		}
		if err != nil {
			return nil, err
		}
	}
}

func (d *jpegDec) frame(seg []byte) error {
	if d.comps != nil || len(seg) < 6 || seg[0] != 8 {
		return errJPEGFallback
	}
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	nc := int(seg[5])
	if (nc != 1 && nc != 3) || len(seg) != 6+3*nc {
		return errJPEGFallback
	}
	if checkSize(image.Config{Width: d.width, Height: d.height}, d.maxPixels) != nil {
		return errJPEGFallback
	}
	d.comps = make([]jpegComp, nc)
	for i := range d.comps {
		c := &d.comps[i]
		c.id, c.h, c.v, c.tq = seg[6+3*i], int(seg[7+3*i]>>4), int(seg[7+3*i]&15), int(seg[8+3*i])
		// image/jpeg refuses factors outside 1..4, and 3, for any
		// component (a gray one's included, though they do not matter)
		if c.tq > 3 || c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.h == 3 || c.v == 3 {
			return errJPEGFallback
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return errJPEGFallback
			}
		}
	}
	if nc == 1 {
		// One component is never interleaved: its blocks run left to
		// right whatever its sampling factors (T.81 A.2). With factors
		// of 1 its MCUs are its blocks, which cover the image: scan's
		// MCU counts are then its block counts.
		d.comps[0].h, d.comps[0].v = 1, 1
		return nil
	}
	y := d.comps[0]
	for _, c := range d.comps[1:] {
		if c.h != 1 || c.v != 1 {
			return errJPEGFallback
		}
	}
	// The luma's factors are 1, 2 or 4 (checked above), and image.YCbCr
	// has a subsample ratio for each pair but those with a vertical 4.
	if y.v == 4 {
		return errJPEGFallback
	}
	return nil
}

func (d *jpegDec) quantization(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return errJPEGFallback
		}
		seg = seg[1:]
		q := &d.quant[tq]
		if pq == 0 {
			if len(seg) < 64 {
				return errJPEGFallback
			}
			for i := range q {
				q[i] = int32(seg[i])
			}
			seg = seg[64:]
		} else {
			if len(seg) < 128 {
				return errJPEGFallback
			}
			for i := range q {
				q[i] = int32(seg[2*i])<<8 | int32(seg[2*i+1])
			}
			seg = seg[128:]
		}
		d.quantSet[tq] = true
	}
	return nil
}

func (d *jpegDec) huffman(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return errJPEGFallback
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 || d.baseline && th > 1 {
			return errJPEGFallback
		}
		total := 0
		for _, c := range seg[1:17] {
			total += int(c)
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			return errJPEGFallback
		}
		h := &d.huff[tc][th]
		if def := seg[:17+total]; !bytes.Equal(h.key, def) {
			if err := h.build(def[1:17], def[17:], tc == 1); err != nil {
				h.key = h.key[:0]
				return err
			}
			h.key = append(h.key, def...)
		}
		d.defined[tc][th] = true
		for _, v := range seg[17 : 17+total] {
			if tc == 0 && v > 11 {
				return errJPEGFallback // a DC difference has at most 11 bits
			}
			if tc == 1 && v&15 == 0 && v != 0 && v != 0xf0 {
				// an EOB run, which only progressive scans have: libjpeg
				// reads it as an end of block, image/jpeg as a run, so
				// image/jpeg decides
				return errJPEGFallback
			}
		}
		seg = seg[17+total:]
	}
	return nil
}

// scan reads the SOS header, then decodes the scan's data, which starts
// at d.pos, into a new image.
func (d *jpegDec) scan(seg []byte) error {
	nc := len(d.comps)
	if d.comps == nil || len(seg) != 4+2*nc || int(seg[0]) != nc {
		return errJPEGFallback
	}
	for i := range d.comps {
		c := &d.comps[i]
		if seg[1+2*i] != c.id {
			return errJPEGFallback
		}
		c.td, c.ta = int(seg[2+2*i]>>4), int(seg[2+2*i]&15)
		if c.td > 3 || c.ta > 3 || d.baseline && (c.td > 1 || c.ta > 1) || !d.defined[0][c.td] || !d.defined[1][c.ta] || !d.quantSet[c.tq] {
			return errJPEGFallback
		}
	}
	// RGB JPEGs are image/jpeg's (it returns them as RGBA).
	if nc == 3 && !d.jfif && (d.adobe == 0 || d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B') {
		return errJPEGFallback
	}
	if ss, se, a := seg[1+2*nc], seg[2+2*nc], seg[3+2*nc]; ss != 0 || se != 63 || a != 0 {
		return errJPEGFallback
	}
	hmax, vmax := d.comps[0].h, d.comps[0].v
	mxx := (d.width + 8*hmax - 1) / (8 * hmax)
	myy := (d.height + 8*vmax - 1) / (8 * vmax)
	// Planes cover whole MCUs, as image/jpeg's, and the image is the
	// width x height part of them.
	full := image.Rect(0, 0, 8*hmax*mxx, 8*vmax*myy)
	bounds := image.Rect(0, 0, d.width, d.height)
	w, h := full.Dx(), full.Dy()
	if int64(w)*int64(h) > 1<<31 {
		return errJPEGFallback
	}
	if nc == 1 {
		g := &image.Gray{Pix: d.planes(w * h), Stride: w, Rect: full}
		d.comps[0].plane, d.comps[0].stride = g.Pix, g.Stride
		d.img = g.SubImage(bounds)
	} else {
		// frame let through hmax 1, 2 or 4 and vmax 1 or 2
		var ratio image.YCbCrSubsampleRatio
		switch [2]int{hmax, vmax} {
		case [2]int{1, 1}:
			ratio = image.YCbCrSubsampleRatio444
		case [2]int{2, 1}:
			ratio = image.YCbCrSubsampleRatio422
		case [2]int{2, 2}:
			ratio = image.YCbCrSubsampleRatio420
		case [2]int{1, 2}:
			ratio = image.YCbCrSubsampleRatio440
		case [2]int{4, 1}:
			ratio = image.YCbCrSubsampleRatio411
		case [2]int{4, 2}:
			ratio = image.YCbCrSubsampleRatio410
		}
		// image.NewYCbCr's layout; the chroma planes are a whole 1/hmax
		// by 1/vmax of the luma one.
		cw, ch := w/hmax, h/vmax
		pix := d.planes(w*h + 2*cw*ch)
		m := &image.YCbCr{
			Y: pix[: w*h : w*h], Cb: pix[w*h : w*h+cw*ch : w*h+cw*ch], Cr: pix[w*h+cw*ch:],
			YStride: w, CStride: cw, SubsampleRatio: ratio, Rect: full,
		}
		d.comps[0].plane, d.comps[0].stride = m.Y, m.YStride
		d.comps[1].plane, d.comps[1].stride = m.Cb, m.CStride
		d.comps[2].plane, d.comps[2].stride = m.Cr, m.CStride
		d.img = m.SubImage(bounds)
	}

	r := jpegBits{data: d.data, pos: d.pos}
	var blk [64]int32
	rst := 0
	for my := range myy {
		for mx := range mxx {
			if d.restart > 0 && (my*mxx+mx) > 0 && (my*mxx+mx)%d.restart == 0 {
				if err := d.restartAt(&r, rst); err != nil {
					return err
				}
				rst = (rst + 1) & 7
			}
			for ci := range d.comps {
				c := &d.comps[ci]
				q := &d.quant[c.tq]
				for v := range c.v {
					for h := range c.h {
						nonzero, err := d.block(&r, c, q, &blk)
						if err != nil {
							return err
						}
						off := (my*c.v+v)*8*c.stride + (mx*c.h+h)*8
						dst := c.plane[off : off+7*c.stride+8]
						switch {
						case nonzero && useAVX2:
							idctIslowAVX2(&blk, &dst[0], c.stride)
						case nonzero:
							idctIslow(&blk, dst, c.stride)
						default:
							idctDC(blk[0], dst, c.stride)
						}
					}
				}
			}
		}
	}
	// The scan ends at the next marker, where d's loop goes on.
	pos := r.pos
	for pos < len(d.data) && !(d.data[pos] == 0xff && pos+1 < len(d.data) && d.data[pos+1] != 0) {
		pos++
	}
	d.pos = pos
	return nil
}

// restartAt expects restart marker number rst right after the bits
// used so far (and the padding that ends their byte), and resets the
// reader and the DC predictions behind it.
func (d *jpegDec) restartAt(r *jpegBits, rst int) error {
	// The reader stops at a marker, so once filled it holds everything
	// before the marker: less than a byte of padding in a valid stream.
	r.fill()
	p := r.pos
	if r.n < 0 || r.n >= 8 || p+2 > len(r.data) || r.data[p] != 0xff || r.data[p+1] != 0xd0+byte(rst) {
		return errJPEGFallback
	}
	*r = jpegBits{data: r.data, pos: p + 2}
	for i := range d.comps {
		d.comps[i].pred = 0
	}
	return nil
}

// block decodes one block's coefficients into blk, dequantized, and
// reports whether any AC coefficient is nonzero (otherwise only blk[0]
// is set). The reader's bits live in locals while it runs.
func (d *jpegDec) block(r *jpegBits, c *jpegComp, q *[64]int32, blk *[64]int32) (bool, error) {
	if r.n < 32 {
		r.fill()
	}
	s, err := r.decode(&d.huff[0][c.td])
	if err != nil {
		return false, err
	}
	if s > 0 {
		c.pred += r.receive(s)
	}
	*blk = [64]int32{}
	blk[0] = c.pred * q[0]
	h := &d.huff[1][c.ta]
	acc, n := r.acc, r.n
	nonzero := false
	for k := 1; k < 64; {
		if n < 32 {
			r.acc, r.n = acc, n
			r.fill()
			acc, n = r.acc, r.n
		}
		b := acc >> (64 - huffLookBits)
		if e := h.ac[b]; e != 0 {
			// code and value in one lookup
			used := uint(e & 15)
			acc <<= used
			n -= int(used)
			k += int(e>>4) & 15
			if k > 63 {
				return false, errJPEGFallback
			}
			blk[jpegZigzag[k]] = (e >> 8) * q[k]
			k++
			nonzero = true
			continue
		}
		var rs int32
		if e := h.look[b]; e != 0 {
			l := uint(e >> 8)
			acc <<= l
			n -= int(l)
			rs = int32(e & 0xff)
		} else {
			r.acc, r.n = acc, n
			if rs, err = r.decode(h); err != nil {
				return false, err
			}
			acc, n = r.acc, r.n
		}
		run, size := int(rs>>4), uint(rs&15)
		if size == 0 {
			if run != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += run
		if k > 63 {
			return false, errJPEGFallback
		}
		v := extend(int32(acc>>(64-size)), int32(size))
		acc <<= size
		n -= int(size)
		blk[jpegZigzag[k]] = v * q[k]
		k++
		nonzero = true
	}
	r.acc, r.n = acc, n
	if n < 0 {
		return false, errJPEGFallback // the block used bits past the data
	}
	return nonzero, nil
}
