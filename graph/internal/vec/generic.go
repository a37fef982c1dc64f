package vec

import "math"

// The pure-Go kernels: the fallback, and the tail after the assembly's
// multiple of 8. They use no data-dependent branches: the built-in min and
// max compile to branch-free code, and selections are done on bits.

const (
	expHi  = 89   // exp(89) overflows to +Inf
	expLo  = -104 // exp(-104) rounds to 0
	log2e  = 1.44269504088896341
	magic  = 12582912 // 1.5·2^23: adding it rounds a float32 to an integer
	ln2Hi  = 0.693359375
	ln2Lo  = -2.12194440e-4
	negMax = -math.MaxFloat32

	// e^r = 1 + r + r²·(e2 + e3·r + e4·r² + e5·r³ + e6·r⁴) on |r| <= ln2/2;
	// coefficients fitted (Lawson's weighted least squares, relative error
	// 3e-9 before rounding them to float32).
	e2 = 0.49999994
	e3 = 0.166665211
	e4 = 0.041668389
	e5 = 0.00836871006
	e6 = 0.00138146104

	// tanh(x) = x + x³·(t0 + t1·z + ... + t4·z⁴), z = x², on |x| < 0.625.
	tanhThr = 0.625
	t0      = -0.333332807
	t1      = 0.133314416
	t2      = -0.0537397154
	t3      = 0.0206390899
	t4      = -0.00570499059

	// erf(x) = x·(p0 + p1·z + ... + p6·z⁶), z = x², on |x| < 1; on
	// 1 <= |x| <= 4 erf(x) = 1 - exp(-x²)·R(|x|-2.5), R of degree 7; erf
	// rounds to ±1 beyond 4.
	erfThr = 1
	erfMax = 4
	erfMid = 2.5
	p0     = 1.12837911
	p1     = -0.37612626
	p2     = 0.112835854
	p3     = -0.0268538166
	p4     = 0.00518833473
	p5     = -0.000801024784
	p6     = 7.85402663e-05
	r0     = 0.210806817
	r1     = -0.0742964968
	r2     = 0.0251646228
	r3     = -0.00781163853
	r4     = 0.00192717696
	r5     = -0.00201032055
	r6     = -0.000825515774
	r7     = -0.000393788039
)

const signBit = 1 << 31

// sel returns a where m is all ones, b where it is zero.
func sel(m uint32, a, b float32) float32 {
	return math.Float32frombits(math.Float32bits(a)&m | math.Float32bits(b)&^m)
}

// mask is all ones when c, else zero, without a branch.
func mask(c bool) uint32 {
	var b uint32
	if c { // compiled to SETcc
		b = 1
	}
	return -b
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ signBit) }

// signOf ORs the sign of s into the non-negative y.
func withSign(y, s float32) float32 {
	return math.Float32frombits(math.Float32bits(y) | math.Float32bits(s)&signBit)
}

// exp32 is e^x: x = n·ln2 + r with |r| <= ln2/2, e^r by a polynomial, and
// 2^n applied in two halves so that results down to the smallest
// subnormal are right and n = 128 gives +Inf.
func exp32(x float32) float32 {
	x = min(max(x, expLo), expHi) // NaN stays NaN
	t := x*log2e + magic
	n := t - magic
	r := x - n*ln2Hi
	r -= n * ln2Lo
	q := (((e6*r+e5)*r+e4)*r+e3)*r + e2
	p := (r*r*q + r) + 1
	k := int32(math.Float32bits(t) - math.Float32bits(magic))
	k1 := k >> 1
	k2 := k - k1
	return p * math.Float32frombits(uint32(k1+127)<<23) * math.Float32frombits(uint32(k2+127)<<23)
}

// sigmoid32 is 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) otherwise, so that
// e never overflows and small results keep their relative accuracy.
func sigmoid32(x float32) float32 {
	e := exp32(-abs32(x))
	num := sel(uint32(int32(math.Float32bits(x))>>31), e, 1)
	return num / (1 + e)
}

// tanh32 and erf32 work on a = |x| and give the result x's sign, which
// keeps them odd and Tanh(-0) = -0.
func tanh32(x float32) float32 {
	a := abs32(x)
	z := a * a
	small := a*(z*((((t4*z+t3)*z+t2)*z+t1)*z+t0)) + a
	e := exp32(2 * a)
	large := 1 - 2/(e+1)
	return withSign(sel(mask(a < tanhThr), small, large), x)
}

func erf32(x float32) float32 {
	a := abs32(x)
	z := a * a
	small := a * ((((((p6*z+p5)*z+p4)*z+p3)*z+p2)*z+p1)*z + p0)
	c := min(a, erfMax)
	t := c - erfMid
	r := ((((((r7*t+r6)*t+r5)*t+r4)*t+r3)*t+r2)*t+r1)*t + r0
	large := 1 - exp32(-c*c)*r
	return withSign(sel(mask(a < erfThr), small, large), x)
}

func expGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = exp32(v)
	}
}

func sigmoidGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = sigmoid32(v)
	}
}

// siluGeneric is x·sigmoid(x); x is first raised to -MaxFloat32 so that
// SiLU(-Inf) is -0 rather than -Inf·0.
func siluGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = max(v, negMax) * sigmoid32(v)
	}
}

func tanhGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = tanh32(v)
	}
}

func erfGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = erf32(v)
	}
}

func reluGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = max(v, 0)
	}
}

func leakyReluGeneric(dst, x []float32, alpha float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = max(v, 0) + alpha*min(v, 0)
	}
}

// affineClampGeneric is min(max(x·a+b, lo), hi).
func affineClampGeneric(dst, x []float32, a, b, lo, hi float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = min(max(v*a+b, lo), hi)
	}
}

// affineClampMulGeneric is x·min(max(x·a+b, lo), hi).
func affineClampMulGeneric(dst, x []float32, a, b, lo, hi float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = v * min(max(v*a+b, lo), hi)
	}
}

func affineGeneric(dst, x []float32, a, b float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = v*a + b
	}
}

func addGeneric(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

func subGeneric(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v - b[i]
	}
}

func maxGeneric(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = max(v, b[i])
	}
}

func mulGeneric(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v * b[i]
	}
}

func divGeneric(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	for i, v := range a {
		dst[i] = v / b[i]
	}
}

// rangeMaskGeneric is dy where lo <= x <= hi, else 0.
func rangeMaskGeneric(dst, x, dy []float32, lo, hi float32) {
	dst, dy = dst[:len(x)], dy[:len(x)]
	for i, v := range x {
		m := mask(v >= lo) & mask(v <= hi)
		dst[i] = math.Float32frombits(math.Float32bits(dy[i]) & m)
	}
}

func sigmoidGradGeneric(dst, y, dy []float32) {
	dst, dy = dst[:len(y)], dy[:len(y)]
	for i, v := range y {
		dst[i] = dy[i] * (v * (1 - v))
	}
}

func tanhGradGeneric(dst, y, dy []float32) {
	dst, dy = dst[:len(y)], dy[:len(y)]
	for i, v := range y {
		dst[i] = dy[i] * (1 - v*v)
	}
}
