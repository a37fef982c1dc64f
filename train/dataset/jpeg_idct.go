package dataset

// The inverse DCT of libjpeg's JDCT_ISLOW method: the Loeffler, Ligtenberg
// and Moschytz factorization (12 multiplies per 8-point pass) in fixed
// point with 13-bit constants, the columns first with 2 extra bits of
// precision, then the rows. Computed in the same integer steps, its
// output is libjpeg's (and libjpeg-turbo's, whose SIMD kernels match
// their C code bit for bit).

const (
	idctConstBits = 13
	idctPass1Bits = 2
	// round(x * 2^13) of the factorization's constants
	fix0298631336 = 2446  // sqrt(2) * (-c1 + c3 + c5 - c7)
	fix0390180644 = 3196  // sqrt(2) * (c5 - c3)
	fix0541196100 = 4433  // sqrt(2) * c6
	fix0765366865 = 6270  // sqrt(2) * (c2 - c6)
	fix0899976223 = 7373  // sqrt(2) * (c7 - c3)
	fix1175875602 = 9633  // sqrt(2) * c3
	fix1501321110 = 12299 // sqrt(2) * (c1 + c3 - c5 - c7)
	fix1847759065 = 15137 // sqrt(2) * (c2 + c6)
	fix1961570560 = 16069 // sqrt(2) * (c3 + c5)
	fix2053119869 = 16819 // sqrt(2) * (c1 + c3 - c5 + c7)
	fix2562915447 = 20995 // sqrt(2) * (c1 + c3)
	fix3072711026 = 25172 // sqrt(2) * (c1 + c3 + c5 - c7)
)

// idct8 is the 8-point inverse DCT of x0..x7 (one column or row of
// coefficients) before the final descaling: the even part's sums scaled
// by 2^13, the odd part's products.
func idct8(x0, x1, x2, x3, x4, x5, x6, x7 int32) (o0, o1, o2, o3, o4, o5, o6, o7 int32) {
	// even part
	z1 := (x2 + x6) * fix0541196100
	t2 := z1 - x6*fix1847759065
	t3 := z1 + x2*fix0765366865
	t0 := (x0 + x4) << idctConstBits
	t1 := (x0 - x4) << idctConstBits
	t10, t13 := t0+t3, t0-t3
	t11, t12 := t1+t2, t1-t2
	// odd part
	a0, a1, a2, a3 := x7, x5, x3, x1
	z1 = a0 + a3
	z2 := a1 + a2
	z3 := a0 + a2
	z4 := a1 + a3
	z5 := (z3 + z4) * fix1175875602
	a0 *= fix0298631336
	a1 *= fix2053119869
	a2 *= fix3072711026
	a3 *= fix1501321110
	z1 *= -fix0899976223
	z2 *= -fix2562915447
	z3 = z3*-fix1961570560 + z5
	z4 = z4*-fix0390180644 + z5
	a0 += z1 + z3
	a1 += z2 + z4
	a2 += z2 + z3
	a3 += z1 + z4
	return t10 + a3, t11 + a2, t12 + a1, t13 + a0, t13 - a0, t12 - a1, t11 - a2, t10 - a3
}

// idctIslow writes the 8x8 pixels of the dequantized coefficients blk
// (row-major) into dst, rows stride bytes apart.
func idctIslow(blk *[64]int32, dst []uint8, stride int) {
	var ws [64]int32
	const r1 = 1 << (idctConstBits - idctPass1Bits - 1)
	for c := range 8 {
		if blk[8+c]|blk[16+c]|blk[24+c]|blk[32+c]|blk[40+c]|blk[48+c]|blk[56+c] == 0 {
			dc := blk[c] << idctPass1Bits
			ws[c], ws[8+c], ws[16+c], ws[24+c], ws[32+c], ws[40+c], ws[48+c], ws[56+c] = dc, dc, dc, dc, dc, dc, dc, dc
			continue
		}
		o0, o1, o2, o3, o4, o5, o6, o7 := idct8(blk[c], blk[8+c], blk[16+c], blk[24+c], blk[32+c], blk[40+c], blk[48+c], blk[56+c])
		const s = idctConstBits - idctPass1Bits
		ws[c] = (o0 + r1) >> s
		ws[8+c] = (o1 + r1) >> s
		ws[16+c] = (o2 + r1) >> s
		ws[24+c] = (o3 + r1) >> s
		ws[32+c] = (o4 + r1) >> s
		ws[40+c] = (o5 + r1) >> s
		ws[48+c] = (o6 + r1) >> s
		ws[56+c] = (o7 + r1) >> s
	}
	// The rows: descale by 2^(13+2+3) (the 8 of the 2-D transform's
	// normalization included), rounding, then shift to 0..255 around 128.
	const s2 = idctConstBits + idctPass1Bits + 3
	const r2 = 1<<(s2-1) + 128<<s2
	for y := range 8 {
		w := (*[8]int32)(ws[8*y : 8*y+8])
		out := dst[y*stride : y*stride+8 : y*stride+8]
		if w[1]|w[2]|w[3]|w[4]|w[5]|w[6]|w[7] == 0 {
			v := flatPixel(w[0])
			out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7] = v, v, v, v, v, v, v, v
			continue
		}
		o0, o1, o2, o3, o4, o5, o6, o7 := idct8(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
		out[0] = clamp8((o0 + r2) >> s2)
		out[1] = clamp8((o1 + r2) >> s2)
		out[2] = clamp8((o2 + r2) >> s2)
		out[3] = clamp8((o3 + r2) >> s2)
		out[4] = clamp8((o4 + r2) >> s2)
		out[5] = clamp8((o5 + r2) >> s2)
		out[6] = clamp8((o6 + r2) >> s2)
		out[7] = clamp8((o7 + r2) >> s2)
	}
}

// idctDC writes the 8x8 pixels of a block whose only nonzero coefficient
// is dc: all of them the value idctIslow computes for it.
func idctDC(dc int32, dst []uint8, stride int) {
	v := flatPixel(dc << idctPass1Bits)
	for y := range 8 {
		out := dst[y*stride : y*stride+8]
		out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7] = v, v, v, v, v, v, v, v
	}
}

// flatPixel is the pixel of each of the 8 of a row whose only nonzero
// value after the columns' pass is w, its first: the row's DC term
// descaled as idctIslow's rows are.
func flatPixel(w int32) uint8 {
	return clamp8((w + (1<<(idctPass1Bits+2) + 128<<(idctPass1Bits+3))) >> (idctPass1Bits + 3))
}

func clamp8(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
}
