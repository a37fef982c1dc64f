package vec

import "math"

// whole reports whether the AVX-512 assembly takes all of an n-value
// slice (it does its last, partial vector through a mask).
func whole(n int) bool { return impl == avx512 && n > 0 }

// split returns how many leading values of an n-value slice the AVX2
// assembly handles: the multiple of 8, or 0 when it is not in use. Under
// avx512 it is the AVX2 count too, for the kernels that have no AVX-512
// version.
func split(n int) int {
	if impl < avx2 {
		return 0
	}
	return n &^ 7
}

// unary runs asm512 on all the values, or asm on the leading multiple of
// 8 and gen on the rest, or gen on all, as impl says.
func unary(dst, x []float32, asm512, asm func(dst, x *float32, n int), gen func(dst, x []float32)) {
	dst = dst[:len(x)]
	if whole(len(x)) {
		asm512(&dst[0], &x[0], len(x))
		return
	}
	n := split(len(x))
	if n > 0 {
		asm(&dst[0], &x[0], n)
	}
	gen(dst[n:], x[n:])
}

// binary is unary for kernels of two slices; b must be at least as long
// as a.
func binary(dst, a, b []float32, asm512, asm func(dst, a, b *float32, n int), gen func(dst, a, b []float32)) {
	dst, b = dst[:len(a)], b[:len(a)]
	if whole(len(a)) {
		asm512(&dst[0], &a[0], &b[0], len(a))
		return
	}
	n := split(len(a))
	if n > 0 {
		asm(&dst[0], &a[0], &b[0], n)
	}
	gen(dst[n:], a[n:], b[n:])
}

// Exp sets dst[i] = e^x[i].
func Exp(dst, x []float32) { unary(dst, x, expAVX512, expAVX2, expGeneric) }

// Sigmoid sets dst[i] = 1/(1+e^-x[i]).
func Sigmoid(dst, x []float32) { unary(dst, x, sigmoidAVX512, sigmoidAVX2, sigmoidGeneric) }

// SiLU sets dst[i] = x[i]·Sigmoid(x[i]) (also called Swish).
func SiLU(dst, x []float32) { unary(dst, x, siluAVX512, siluAVX2, siluGeneric) }

// Tanh sets dst[i] = tanh(x[i]).
func Tanh(dst, x []float32) { unary(dst, x, tanhAVX512, tanhAVX2, tanhGeneric) }

// Erf sets dst[i] = erf(x[i]).
func Erf(dst, x []float32) { unary(dst, x, erfAVX512, erfAVX2, erfGeneric) }

// AffineClamp sets dst[i] = min(max(x[i]·a+b, lo), hi) (hi wins when
// lo > hi). NaN propagates.
func AffineClamp(dst, x []float32, a, b, lo, hi float32) {
	dst = dst[:len(x)]
	if whole(len(x)) {
		affineClampAVX512(&dst[0], &x[0], len(x), a, b, lo, hi)
		return
	}
	n := split(len(x))
	if n > 0 {
		affineClampAVX2(&dst[0], &x[0], n, a, b, lo, hi)
	}
	affineClampGeneric(dst[n:], x[n:], a, b, lo, hi)
}

// Relu sets dst[i] = max(x[i], 0).
func Relu(dst, x []float32) { AffineClamp(dst, x, 1, 0, 0, float32(math.Inf(1))) }

// Clip sets dst[i] = min(max(x[i], lo), hi) (hi wins when lo > hi, as in
// numpy and ONNX Runtime); Relu6 is Clip(dst, x, 0, 6).
func Clip(dst, x []float32, lo, hi float32) { AffineClamp(dst, x, 1, 0, lo, hi) }

// HardSigmoid sets dst[i] = max(0, min(1, alpha·x[i]+beta)).
func HardSigmoid(dst, x []float32, alpha, beta float32) { AffineClamp(dst, x, alpha, beta, 0, 1) }

// ScaleShift sets dst[i] = x[i]·a + b, rounded once where the CPU has
// fused multiply-add.
func ScaleShift(dst, x []float32, a, b float32) {
	inf := float32(math.Inf(1))
	AffineClamp(dst, x, a, b, -inf, inf)
}

// AddScalar sets dst[i] = x[i] + s.
func AddScalar(dst, x []float32, s float32) { ScaleShift(dst, x, 1, s) }

// MulScalar sets dst[i] = x[i]·s.
func MulScalar(dst, x []float32, s float32) { ScaleShift(dst, x, s, 0) }

// HardSwish sets dst[i] = x[i]·max(0, min(1, x[i]/6+1/2)).
func HardSwish(dst, x []float32) {
	dst = dst[:len(x)]
	if whole(len(x)) {
		affineClampMulAVX512(&dst[0], &x[0], len(x), 1.0/6, 0.5, 0, 1)
		return
	}
	n := split(len(x))
	if n > 0 {
		affineClampMulAVX2(&dst[0], &x[0], n, 1.0/6, 0.5, 0, 1)
	}
	affineClampMulGeneric(dst[n:], x[n:], 1.0/6, 0.5, 0, 1)
}

// LeakyRelu sets dst[i] = x[i] for x[i] > 0, alpha·x[i] otherwise.
func LeakyRelu(dst, x []float32, alpha float32) {
	dst = dst[:len(x)]
	if whole(len(x)) {
		leakyReluAVX512(&dst[0], &x[0], len(x), alpha)
		return
	}
	n := split(len(x))
	if n > 0 {
		leakyReluAVX2(&dst[0], &x[0], n, alpha)
	}
	leakyReluGeneric(dst[n:], x[n:], alpha)
}

// ChannelScaleShift sets dst = x·a[c] + b[c] over x viewed as [n, c,
// inner] with c = len(a): each run of inner values (a plane of an NCHW
// tensor) gets its channel's scale and shift. It is BatchNormalization in
// inference mode (a = scale/sqrt(var+eps), b = B - mean·a) and, with a
// all ones, a per-channel bias add. len(x) must be a multiple of
// len(a)·inner and len(b) at least len(a).
func ChannelScaleShift(dst, x, a, b []float32, inner int) {
	c := len(a)
	dst, b = dst[:len(x)], b[:c]
	if c == 0 || inner <= 0 || len(x)%(c*inner) != 0 {
		panic("vec: ChannelScaleShift: length is not a multiple of channels × inner")
	}
	for p := 0; p*inner < len(x); p++ {
		lo, hi := p*inner, (p+1)*inner
		ch := p % c
		ScaleShift(dst[lo:hi], x[lo:hi], a[ch], b[ch])
	}
}

// Add sets dst[i] = a[i] + b[i].
func Add(dst, a, b []float32) { binary(dst, a, b, addAVX512, addAVX2, addGeneric) }

// Sub sets dst[i] = a[i] - b[i].
func Sub(dst, a, b []float32) { binary(dst, a, b, subAVX512, subAVX2, subGeneric) }

// Max sets dst[i] = max(a[i], b[i]) with the built-in max's rules: NaN
// wins (either operand's), and +0 beats -0. The assembly and the pure Go
// agree bit for bit, NaN payloads included.
func Max(dst, a, b []float32) { binary(dst, a, b, maxAVX512, maxAVX2, maxGeneric) }

// StridedMax sets dst[i] = max(src[i·stride], floor) for i < len(dst),
// with Max's rules: every stride-th value, raised to at least floor (with
// floor -Inf, an exact copy, NaN payloads included). src
// must hold (len(dst)-1)·stride+1 values or more. Strides 1 and 2 run in
// assembly (stride 2 over the leading multiple of 8 outputs whose pairs
// lie wholly in src: give it 2·len(dst) values to have it all).
func StridedMax(dst, src []float32, stride int, floor float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	if stride < 1 {
		panic("vec: StridedMax: stride must be positive")
	}
	src = src[:min(len(src), n*stride)]
	_ = src[(n-1)*stride]
	a := 0
	switch {
	case impl < avx2:
	case stride == 1 && impl == avx512:
		maxFloorAVX512(&dst[0], &src[0], n, floor)
		return
	case stride == 1:
		if a = n &^ 7; a > 0 {
			maxFloorAVX2(&dst[0], &src[0], a, floor)
		}
	case stride == 2:
		if a = min(n, len(src)/2) &^ 7; a > 0 {
			maxFloorEvenAVX2(&dst[0], &src[0], a, floor)
		}
	}
	for i := a; i < n; i++ {
		dst[i] = max(src[i*stride], floor)
	}
}

// Mul sets dst[i] = a[i]·b[i].
func Mul(dst, a, b []float32) { binary(dst, a, b, mulAVX512, mulAVX2, mulGeneric) }

// Div sets dst[i] = a[i]/b[i].
func Div(dst, a, b []float32) { binary(dst, a, b, divAVX512, divAVX2, divGeneric) }

// RangeMask sets dst[i] = dy[i] where lo <= x[i] <= hi and 0 elsewhere
// (NaN x gives 0): the gradient of Clip, which PyTorch passes at the
// bounds.
func RangeMask(dst, x, dy []float32, lo, hi float32) {
	dst, dy = dst[:len(x)], dy[:len(x)]
	if whole(len(x)) {
		rangeMaskAVX512(&dst[0], &x[0], &dy[0], len(x), lo, hi)
		return
	}
	n := split(len(x))
	if n > 0 {
		rangeMaskAVX2(&dst[0], &x[0], &dy[0], n, lo, hi)
	}
	rangeMaskGeneric(dst[n:], x[n:], dy[n:], lo, hi)
}

// ReluGrad sets dst[i] = dy[i] where x[i] > 0 and 0 elsewhere (PyTorch
// passes nothing at 0).
func ReluGrad(dst, x, dy []float32) {
	RangeMask(dst, x, dy, math.SmallestNonzeroFloat32, float32(math.Inf(1)))
}

// ClipGrad sets dst[i] = dy[i] where lo <= x[i] <= hi and 0 elsewhere.
func ClipGrad(dst, x, dy []float32, lo, hi float32) { RangeMask(dst, x, dy, lo, hi) }

// SigmoidGrad sets dst[i] = dy[i]·y[i]·(1-y[i]) from Sigmoid's output y.
func SigmoidGrad(dst, y, dy []float32) {
	binary(dst, y, dy, sigmoidGradAVX512, sigmoidGradAVX2, sigmoidGradGeneric)
}

// TanhGrad sets dst[i] = dy[i]·(1-y[i]²) from Tanh's output y.
func TanhGrad(dst, y, dy []float32) {
	binary(dst, y, dy, tanhGradAVX512, tanhGradAVX2, tanhGradGeneric)
}

// LeakyReluGrad sets dst[i] = dy[i] where x[i] > 0, alpha·dy[i]
// elsewhere.
func LeakyReluGrad(dst, x, dy []float32, alpha float32) {
	dst, dy = dst[:len(x)], dy[:len(x)]
	for i, v := range x {
		dst[i] = dy[i] * sel(mask(v > 0), 1, alpha)
	}
}

// HardSigmoidGrad sets dst[i] = alpha·dy[i] where 0 < alpha·x[i]+beta < 1
// (strictly inside the linear part) and 0 elsewhere.
func HardSigmoidGrad(dst, x, dy []float32, alpha, beta float32) {
	dst, dy = dst[:len(x)], dy[:len(x)]
	for i, v := range x {
		u := alpha*v + beta
		m := mask(u > 0) & mask(u < 1)
		dst[i] = math.Float32frombits(math.Float32bits(alpha*dy[i]) & m)
	}
}

// HardSwishGrad sets dst[i] = dy[i]·g(x[i]) with g = 0 below -3, x/3+1/2
// on [-3, 3] and 1 above 3.
func HardSwishGrad(dst, x, dy []float32) {
	dst, dy = dst[:len(x)], dy[:len(x)]
	for i, v := range x {
		g := sel(mask(v <= 3), v/3+0.5, 1) // NaN: 1, as PyTorch
		g = math.Float32frombits(math.Float32bits(g) &^ mask(v < -3))
		dst[i] = dy[i] * g
	}
}

// SiLUGrad sets dst[i] = dy[i]·(s + x·s·(1-s)) with s = Sigmoid(x[i]),
// where s·(1-s) is computed as e/(1+e)², e = exp(-|x|), which does not
// cancel for large |x|.
func SiLUGrad(dst, x, dy []float32) {
	dst, dy = dst[:len(x)], dy[:len(x)]
	var buf [256]float32
	for lo := 0; lo < len(x); lo += len(buf) {
		hi := min(len(x), lo+len(buf))
		e := buf[:hi-lo]
		for i, v := range x[lo:hi] {
			e[i] = -abs32(v)
		}
		Exp(e, e)
		for i, v := range x[lo:hi] {
			d := 1 + e[i]
			s := sel(uint32(int32(math.Float32bits(v))>>31), e[i], 1) / d
			dst[lo+i] = dy[lo+i] * (s + v*(e[i]/(d*d)))
		}
	}
}
