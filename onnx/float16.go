package onnx

import "math"

// IEEE 754 binary16 (ONNX FLOAT16) conversions. graft computes float16
// tensors in float32: HalfToFloat32 is exact (every half is a float32),
// Float32ToHalf rounds to the nearest half, ties to even, as ONNX's Cast
// and every float16 writer must: values past the largest half (65504)
// become infinity from 65520 on (the tie with 65536 goes to the even
// infinity), values below half the smallest subnormal (2^-25) become a
// signed zero, NaN stays NaN with its sign and the top of its payload.

// HalfToFloat32 converts binary16 bits to float32, exactly.
func HalfToFloat32(h uint16) float32 { return halfToFloat(h) }

// Float32ToHalf converts a float32 to binary16 bits, rounding to nearest
// even.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man == 0 {
			return sign | 0x7c00
		}
		h := uint16(0x7c00 | man>>13)
		if h == 0x7c00 { // payload only in the dropped bits: stay a NaN
			h++
		}
		return sign | h
	}
	e := exp - 127 + 15 // the half's biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// a half subnormal (or zero): units of 2^-24
		s := uint(126 - exp)
		if exp == 0 || s > 24 {
			return sign // below 2^-25: rounds to zero
		}
		m := man | 0x800000
		r := m >> s
		rem, halfway := m&(1<<s-1), uint32(1)<<(s-1)
		if rem > halfway || rem == halfway && r&1 == 1 {
			r++ // may carry into the smallest normal, whose bits follow
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++ // a carry into the exponent is right, up to infinity
	}
	return sign | uint16(r)
}

// RoundHalf returns f rounded to the nearest float16 value, as float32:
// what a Cast to float16 and back gives.
func RoundHalf(f float32) float32 { return halfToFloat(Float32ToHalf(f)) }

// RoundBFloat16 returns f rounded to the nearest bfloat16 value (ties to
// even; NaN stays NaN), as float32.
func RoundBFloat16(f float32) float32 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		return math.Float32frombits(b | 0x400000) // quiet NaN, kept
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// Float32sToHalfBytes encodes values as little-endian binary16, each
// rounded to nearest even.
func Float32sToHalfBytes(fs []float32) []byte {
	out := make([]byte, 2*len(fs))
	for i, f := range fs {
		h := Float32ToHalf(f)
		out[2*i], out[2*i+1] = byte(h), byte(h>>8)
	}
	return out
}

// ToProtoAs encodes a float32 tensor as a TensorProto of ONNX element
// type elem with little-endian raw_data: FLOAT (1) as ToProto does,
// FLOAT16 (10) and BFLOAT16 (16) rounded to nearest even. Int64 tensors
// and other types are ToProto's.
func (t *Tensor) ToProtoAs(elem int32) *TensorProto {
	tp := t.ToProto()
	if t.DType != Float32 {
		return tp
	}
	switch elem {
	case 10:
		tp.DataType = 10
		tp.RawData = Float32sToHalfBytes(t.F)
	case 16:
		tp.DataType = 16
		tp.RawData = make([]byte, 2*len(t.F))
		for i, f := range t.F {
			b := math.Float32bits(RoundBFloat16(f)) >> 16
			tp.RawData[2*i], tp.RawData[2*i+1] = byte(b), byte(b>>8)
		}
	}
	return tp
}
