package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// impls lists the implementations this machine can run; each test runs
// on every one.
func impls() []isa {
	var p []isa
	for _, i := range []isa{generic, avx2, avx512} {
		if has(i) {
			p = append(p, i)
		}
	}
	return p
}

func withImpl(p isa, f func()) {
	old := impl
	impl = p
	defer func() { impl = old }()
	f()
}

// ulps is |got - want| in units in the last place of float32(want)
// (subnormal ulps below the normal range); 0 when both are the same NaN
// or infinity, +Inf when one is and the other is not.
func ulps(got float32, want float64) float64 {
	g := float64(got)
	switch {
	case math.IsNaN(want) || math.IsNaN(g):
		if math.IsNaN(want) && math.IsNaN(g) {
			return 0
		}
		return math.Inf(1)
	case math.IsInf(g, 0) || math.IsInf(float64(float32(want)), 0):
		if g == float64(float32(want)) {
			return 0
		}
		return math.Inf(1)
	}
	return math.Abs(g-want) / ulpOf(want)
}

// ulpOf is the float32 ulp at w's magnitude.
func ulpOf(w float64) float64 {
	_, e := math.Frexp(math.Abs(w)) // |w| = m·2^e, m in [0.5, 1)
	return math.Ldexp(1, max(e-24, -149))
}

type mathFunc struct {
	name   string
	f      func(dst, x []float32)
	ref    func(float64) float64
	lo, hi float64 // dense sweep range
	maxULP float64 // asserted bound
	// below tiny, results are checked to a relative error of 1e-5 or an
	// absolute one of 1e-42 only (SiLU: its sigmoid factor is subnormal).
	tiny float64
}

func sigmoidRef(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func siluRef(x float64) float64 {
	if math.IsInf(x, -1) {
		return math.Copysign(0, -1)
	}
	return x * sigmoidRef(x)
}

var mathFuncs = []mathFunc{
	{"Exp", Exp, math.Exp, -104, 89, 2, 0},
	{"Sigmoid", Sigmoid, sigmoidRef, -105, 20, 3, 0},
	{"SiLU", SiLU, siluRef, -105, 20, 4, -87},
	{"Tanh", Tanh, math.Tanh, -10, 10, 3, 0},
	{"Erf", Erf, math.Erf, -5, 5, 3, 0},
}

var edges = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5,
	float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
	1e-30, -1e-30, 1e-7, -1e-7, 1.1754944e-38,
	0.625, -0.625, 0.62499994, 4, -4, 3.9999998, 2.5,
	88.72283, 88.72284, 89, -87.33655, -103.27893, -103.972, -104, -110, 110, 1000, -1000,
}

// TestMathAccuracy sweeps each transcendental kernel densely over its
// interesting range, over small magnitudes and over the edge values, and
// compares it with float64 math.
func TestMathAccuracy(t *testing.T) {
	for _, m := range mathFuncs {
		for _, p := range impls() {
			t.Run(m.name+"/"+p.String(), func(t *testing.T) {
				const n = 1 << 20
				x := make([]float32, 0, n+2000+len(edges))
				for i := 0; i < n; i++ {
					x = append(x, float32(m.lo+(m.hi-m.lo)*float64(i)/n))
				}
				for i := 0; i < 1000; i++ { // 1e-38 .. 1, both signs
					v := float32(math.Pow(10, -38+38*float64(i)/1000))
					x = append(x, v, -v)
				}
				x = append(x, edges...)
				y := make([]float32, len(x))
				withImpl(p, func() { m.f(y, x) })
				worst, at := 0.0, float32(0)
				worstRel := 0.0
				for i, v := range x {
					want := m.ref(float64(v))
					u := ulps(y[i], want)
					if m.tiny != 0 && float64(v) < m.tiny {
						if d := math.Abs(float64(y[i]) - want); d <= 1e-42 || d <= 1e-5*math.Abs(want) {
							continue
						}
					}
					if u > worst {
						worst, at = u, v
					}
					if math.Abs(want) >= 0x1p-126 && !math.IsInf(float64(float32(want)), 0) && !math.IsNaN(want) {
						worstRel = max(worstRel, math.Abs(float64(y[i])-want)/math.Abs(want))
					}
				}
				t.Logf("%s %s: max error %.2f ulp (at x = %g), max relative error %.3g", m.name, p.String(), worst, at, worstRel)
				if worst > m.maxULP {
					t.Errorf("max error %.2f ulp at x = %g (%s(x) = %g, want %g); bound %g", worst, at, m.name, y[indexOf(x, at)], m.ref(float64(at)), m.maxULP)
				}
			})
		}
	}
}

func indexOf(x []float32, v float32) int {
	for i, w := range x {
		if w == v || (w != w && v != v) {
			return i
		}
	}
	return -1
}

// TestMathEdges checks the saturation, NaN and signed zero rules exactly.
func TestMathEdges(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	negz := float32(math.Copysign(0, -1))
	cases := []struct {
		name string
		f    func(dst, x []float32)
		x    []float32
		want []float32
	}{
		{"Exp", Exp, []float32{0, negz, inf, -inf, nan, 89, 88.8, -104, -110, 1}, []float32{1, 1, inf, 0, nan, inf, inf, 0, 0, math.E}},
		{"Sigmoid", Sigmoid, []float32{0, negz, inf, -inf, nan, 100, 17}, []float32{0.5, 0.5, 1, 0, nan, 1, 1}},
		{"SiLU", SiLU, []float32{0, inf, -inf, nan, 100, -200}, []float32{0, inf, negz, nan, 100, negz}},
		{"Tanh", Tanh, []float32{0, negz, inf, -inf, nan, 10, -10, 1e30, -1e30}, []float32{0, negz, 1, -1, nan, 1, -1, 1, -1}},
		{"Erf", Erf, []float32{0, negz, inf, -inf, nan, 5, -5, 1e30}, []float32{0, negz, 1, -1, nan, 1, -1, 1}},
	}
	for _, c := range cases {
		for _, p := range impls() {
			// repeat the values so that the assembly sees them too
			var x, want []float32
			for range 8 {
				x = append(x, c.x...)
				want = append(want, c.want...)
			}
			y := make([]float32, len(x))
			withImpl(p, func() { c.f(y, x) })
			for i := range x {
				same := y[i] == want[i] && math.Signbit(float64(y[i])) == math.Signbit(float64(want[i]))
				if want[i] != want[i] {
					same = y[i] != y[i]
				}
				if c.name == "Exp" && want[i] == math.E {
					same = ulps(y[i], math.E) <= 1
				}
				if !same {
					t.Errorf("%s %s(%g) = %g, want %g", p.String(), c.name, x[i], y[i], want[i])
				}
			}
		}
	}
}

// kernel is one kernel under test with a float64 reference per element.
type kernel struct {
	name   string
	nin    int                                 // slices in (1 or 2)
	run    func(dst []float32, in [][]float32) // the kernel
	ref    func(in []float64) float64
	maxULP float64 // 0: exact (asm and generic must agree bit for bit up to the sign of 0)
	// scaled measures the error in ulps of the largest term rather than of
	// the result, for kernels whose float32 formula cancels terms.
	scaled bool
	tiny   float64 // as in mathFunc
}

func kernels() []kernel {
	clamp := func(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
	u := func(name string, f func(dst, x []float32), ref func(float64) float64, ulp float64) kernel {
		return kernel{name: name, nin: 1, run: func(d []float32, in [][]float32) { f(d, in[0]) }, ref: func(in []float64) float64 { return ref(in[0]) }, maxULP: ulp}
	}
	b := func(name string, f func(dst, a, b []float32), ref func(a, b float64) float64, ulp float64) kernel {
		return kernel{name: name, nin: 2, run: func(d []float32, in [][]float32) { f(d, in[0], in[1]) }, ref: func(in []float64) float64 { return ref(in[0], in[1]) }, maxULP: ulp}
	}
	f32 := func(v float64) float64 { return float64(float32(v)) }
	ks := []kernel{
		u("Relu", Relu, func(x float64) float64 { return math.Max(x, 0) }, 0),
		u("LeakyRelu", func(d, x []float32) { LeakyRelu(d, x, 0.1) }, func(x float64) float64 {
			if x > 0 {
				return x
			}
			return f32(float64(float32(0.1)) * x)
		}, 0),
		u("Clip", func(d, x []float32) { Clip(d, x, -0.5, 0.75) }, func(x float64) float64 { return clamp(x, -0.5, 0.75) }, 0),
		u("Relu6", func(d, x []float32) { Clip(d, x, 0, 6) }, func(x float64) float64 { return clamp(x, 0, 6) }, 0),
		u("HardSigmoid", func(d, x []float32) { HardSigmoid(d, x, 0.2, 0.5) }, func(x float64) float64 {
			return clamp(float64(float32(0.2))*x+0.5, 0, 1)
		}, 1),
		u("HardSwish", HardSwish, func(x float64) float64 { return x * clamp(x/6+0.5, 0, 1) }, 2),
		u("ScaleShift", func(d, x []float32) { ScaleShift(d, x, 1.5, -0.25) }, func(x float64) float64 { return 1.5*x - 0.25 }, 1),
		u("AddScalar", func(d, x []float32) { AddScalar(d, x, 0.3) }, func(x float64) float64 { return x + float64(float32(0.3)) }, 0.5),
		u("MulScalar", func(d, x []float32) { MulScalar(d, x, 0.3) }, func(x float64) float64 { return x * float64(float32(0.3)) }, 0.5),
		b("Add", Add, func(a, b float64) float64 { return a + b }, 0.5),
		b("Sub", Sub, func(a, b float64) float64 { return a - b }, 0.5),
		b("Mul", Mul, func(a, b float64) float64 { return a * b }, 0.5),
		b("Div", Div, func(a, b float64) float64 { return a / b }, 0.5),
		b("Max", Max, math.Max, 0),
		b("ReluGrad", ReluGrad, func(x, d float64) float64 {
			if x > 0 {
				return d
			}
			return 0
		}, 0),
		b("ClipGrad", func(dst, x, dy []float32) { ClipGrad(dst, x, dy, -0.5, 0.75) }, func(x, d float64) float64 {
			if x >= -0.5 && x <= 0.75 {
				return d
			}
			return 0
		}, 0),
		b("SigmoidGrad", SigmoidGrad, func(y, d float64) float64 { return d * y * (1 - y) }, 3),
		b("TanhGrad", TanhGrad, func(y, d float64) float64 { return d * (1 - y*y) }, 3),
		b("LeakyReluGrad", func(dst, x, dy []float32) { LeakyReluGrad(dst, x, dy, 0.1) }, func(x, d float64) float64 {
			if x > 0 {
				return d
			}
			return f32(d * float64(float32(0.1)))
		}, 0),
		b("HardSigmoidGrad", func(dst, x, dy []float32) { HardSigmoidGrad(dst, x, dy, 0.2, 0.5) }, func(x, d float64) float64 {
			if v := float32(0.2)*float32(x) + 0.5; v > 0 && v < 1 {
				return f32(float64(float32(0.2)) * d)
			}
			return 0
		}, 0),
		b("HardSwishGrad", HardSwishGrad, func(x, d float64) float64 {
			switch {
			case x < -3:
				return d * 0
			case x <= 3:
				return d * (x/3 + 0.5)
			}
			return d
		}, 2),
		b("SiLUGrad", SiLUGrad, func(x, d float64) float64 {
			s := sigmoidRef(x)
			return d * (s + x*s*(1-s))
		}, 8),
	}
	for i := range ks {
		switch ks[i].name {
		case "HardSigmoid", "HardSwish", "ScaleShift", "SigmoidGrad", "TanhGrad", "HardSwishGrad", "SiLUGrad":
			ks[i].scaled = true
		}
	}
	for _, m := range mathFuncs {
		k := u(m.name, m.f, m.ref, m.maxULP)
		k.tiny = m.tiny
		ks = append(ks, k)
	}
	return ks
}

// TestKernels compares every kernel, in every implementation, with its
// float64 reference on random lengths 0..1000 and start offsets 0..7,
// writing into a separate slice and in place.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kernels() {
		for _, p := range impls() {
			t.Run(k.name+"/"+p.String(), func(t *testing.T) {
				for trial := 0; trial < 60; trial++ {
					n := rng.IntN(1001)
					if trial < 20 {
						n = trial
					}
					in := make([][]float32, k.nin)
					for j := range in {
						off := rng.IntN(8)
						buf := make([]float32, off+n)
						for i := range buf {
							buf[i] = float32(rng.NormFloat64() * 4)
							if rng.IntN(50) == 0 {
								buf[i] = edges[rng.IntN(len(edges))]
							}
						}
						in[j] = buf[off:]
					}
					off := rng.IntN(8)
					dst := make([]float32, off+n+3)[off:]
					for i := range dst {
						dst[i] = 12345 // must survive past n
					}
					withImpl(p, func() { k.run(dst, in) })
					// in place, into the first input
					inPlace := append([]float32(nil), in[0]...)
					in2 := append([][]float32{inPlace}, in[1:]...)
					withImpl(p, func() { k.run(inPlace, in2) })
					var gen []float32
					if k.maxULP == 0 {
						gen = make([]float32, n)
						withImpl(generic, func() { k.run(gen, in) })
					}
					args := make([]float64, k.nin)
					for i := 0; i < n; i++ {
						for j := range args {
							args[j] = float64(in[j][i])
						}
						want := k.ref(args)
						u := ulps(dst[i], want)
						if k.scaled && u > 0 && !math.IsInf(float64(dst[i]), 0) && !math.IsNaN(float64(dst[i])) {
							scale := math.Abs(want)
							for _, a := range args {
								scale = max(scale, math.Abs(a))
							}
							u = math.Abs(float64(dst[i])-want) / ulpOf(scale)
						}
						if math.Abs(want) < 0x1p-126 && math.Abs(float64(dst[i])-want) <= 1e-42 {
							u = 0 // subnormal results: absolute error only
						}
						if u > max(k.maxULP, 0.5) {
							t.Fatalf("n=%d: %s(%v)[%d] = %g, want %g (%.1f ulp)", n, k.name, args, i, dst[i], want, u)
						}
						if dst[i] != inPlace[i] && !(dst[i] != dst[i] && inPlace[i] != inPlace[i]) {
							t.Fatalf("n=%d: in place %s(%v) = %g, into another slice %g", n, k.name, args, inPlace[i], dst[i])
						}
						if gen != nil && dst[i] != gen[i] && !(dst[i] != dst[i] && gen[i] != gen[i]) {
							t.Fatalf("n=%d: %s(%v) = %g, generic %g", n, k.name, args, dst[i], gen[i])
						}
					}
					for i := n; i < len(dst); i++ {
						if dst[i] != 12345 {
							t.Fatalf("n=%d: wrote dst[%d] past the input", n, i)
						}
					}
				}
			})
		}
	}
}

// specials are values on which max's rules show: signed zeros,
// infinities, the float32 extremes and NaNs of several payloads and signs.
var specials = []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
	math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
	math.Float32frombits(0x7fc00000), math.Float32frombits(0xffc00000), math.Float32frombits(0x7f800001), math.Float32frombits(0x7fc12345)}

// maxData returns n values, a third of them specials.
func maxData(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		if rng.IntN(3) == 0 {
			x[i] = specials[rng.IntN(len(specials))]
		} else {
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

// TestMaxBits compares Max's assembly with its pure Go bit for bit on
// every length 0..70 at every start offset 0..7, over values rich in
// signed zeros, infinities and NaNs of several payloads and signs; the
// pure Go must also be the built-in max, element by element.
func TestMaxBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n <= 70; n++ {
		for off := 0; off < 8; off++ {
			a, b := maxData(rng, off+n)[off:], maxData(rng, n+off)[:n]
			want := make([]float32, n)
			for i := range want {
				want[i] = max(a[i], b[i])
			}
			for _, p := range impls() {
				dst := make([]float32, n+1)
				dst[n] = 12345
				withImpl(p, func() { Max(dst, a, b) })
				for i := range want {
					if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d off=%d: Max(%#x, %#x) = %#x, built-in max %#x", p.String(), n, off,
							math.Float32bits(a[i]), math.Float32bits(b[i]), math.Float32bits(dst[i]), math.Float32bits(want[i]))
					}
				}
				if dst[n] != 12345 {
					t.Fatalf("%s n=%d: wrote past the input", p.String(), n)
				}
				// in place, into either operand
				c := append([]float32(nil), a...)
				withImpl(p, func() { Max(c, c, b) })
				d := append([]float32(nil), b...)
				withImpl(p, func() { Max(d, a, d) })
				for i := range want {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) || math.Float32bits(d[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d: in place Max = %#x, %#x, want %#x", p.String(), n, math.Float32bits(c[i]), math.Float32bits(d[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	}
}

// TestStridedMax compares StridedMax, in every implementation, with the
// built-in max bit for bit on output lengths 0..70, strides 1..3, floors
// that are and are not special (with -Inf it must copy, NaN payloads
// included), and sources of the least length it takes
// as well as longer ones (with which stride 2 runs wholly in assembly).
func TestStridedMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 70; n++ {
		for stride := 1; stride <= 3; stride++ {
			for _, floor := range []float32{-math.MaxFloat32, float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 0.5, float32(math.NaN())} {
				for _, extra := range []int{0, stride} {
					src := maxData(rng, max(0, (n-1)*stride+1)+extra)
					want := make([]float32, n)
					for i := range want {
						want[i] = max(src[i*stride], floor)
						if math.IsInf(float64(floor), -1) && math.Float32bits(want[i]) != math.Float32bits(src[i*stride]) {
							// graph's AveragePool copies with floor -Inf
							t.Fatalf("max(%#x, -Inf) = %#x, not a copy", math.Float32bits(src[i*stride]), math.Float32bits(want[i]))
						}
					}
					for _, p := range impls() {
						dst := make([]float32, n+1)
						dst[n] = 12345
						withImpl(p, func() { StridedMax(dst[:n], src, stride, floor) })
						for i := range want {
							if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s n=%d stride %d floor %g: dst[%d] = %#x, built-in max %#x", p.String(), n, stride, floor, i,
									math.Float32bits(dst[i]), math.Float32bits(want[i]))
							}
						}
						if dst[n] != 12345 {
							t.Fatalf("%s n=%d: wrote past dst", p.String(), n)
						}
					}
				}
			}
		}
	}
}

// richData returns n values: a third of them edges and specials (NaNs of
// several payloads and signs, infinities, signed zeros, the float32
// extremes, subnormals), a third random bit patterns (any magnitude), a
// third normally distributed.
func richData(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch rng.IntN(6) {
		case 0:
			x[i] = edges[rng.IntN(len(edges))]
		case 1:
			x[i] = specials[rng.IntN(len(specials))]
		case 2, 3:
			x[i] = math.Float32frombits(rng.Uint32())
		default:
			x[i] = float32(rng.NormFloat64() * 4)
		}
	}
	return x
}

func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// TestPaths runs every kernel in every implementation on each length
// 0..100 and a few long ones, at random offsets, over richData, and
// compares the assembly with the pure Go: exact kernels must agree (up
// to the sign of zero and NaN payloads), approximations within twice
// their bound against float64 math. AVX-512 must give the AVX2
// assembly's bits exactly, NaN payloads included, on the values that
// the AVX2 assembly does (all but the last len%8, which it leaves to the
// pure Go); and neither may write past the input.
func TestPaths(t *testing.T) {
	ps := impls()
	if len(ps) == 1 {
		t.Skip("no assembly on this CPU or build")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var lengths []int
	for n := 0; n <= 100; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4096, 4096+13, 65536+7)
	const guard = 17
	for _, k := range kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range lengths {
				in := make([][]float32, k.nin)
				for j := range in {
					off := rng.IntN(16)
					in[j] = richData(rng, off+n)[off:]
				}
				out := make(map[isa][]float32)
				for _, p := range ps {
					dst := make([]float32, n+guard)
					for i := n; i < len(dst); i++ {
						dst[i] = 12345
					}
					withImpl(p, func() { k.run(dst, in) })
					for i := n; i < len(dst); i++ {
						if dst[i] != 12345 {
							t.Fatalf("%s n=%d: wrote dst[%d] past the input", p, n, i)
						}
					}
					out[p] = dst[:n]
				}
				gen := out[generic]
				args := make([]float64, k.nin)
				for _, p := range ps[1:] {
					got := out[p]
					for i := range got {
						for j := range args {
							args[j] = float64(in[j][i])
						}
						if p == avx512 && i < n&^7 && !sameBits(got[i], out[avx2][i]) {
							t.Fatalf("n=%d: %s(%v)[%d] = %#x in avx512, %#x in avx2", n, k.name, args, i,
								math.Float32bits(got[i]), math.Float32bits(out[avx2][i]))
						}
						g, y := gen[i], got[i]
						if g == y || (g != g && y != y) {
							continue
						}
						if k.maxULP == 0 {
							t.Fatalf("n=%d: %s %s(%v)[%d] = %g, generic %g", n, p, k.name, args, i, y, g)
						}
						d := math.Abs(float64(y) - float64(g))
						if k.tiny != 0 && args[0] < k.tiny && (d <= 1e-42 || d <= 1e-5*math.Abs(float64(g))) {
							continue
						}
						if math.Abs(float64(g)) < 0x1p-126 && d <= 1e-42 {
							continue // subnormal results: absolute error only
						}
						scale := math.Abs(float64(g))
						if k.scaled {
							for _, a := range args {
								scale = max(scale, math.Abs(a))
							}
						}
						if u := d / ulpOf(scale); !(u <= 2*max(k.maxULP, 0.5)) {
							t.Fatalf("n=%d: %s %s(%v)[%d] = %g, generic %g (%.1f ulp apart)", n, p, k.name, args, i, y, g, u)
						}
					}
				}
			}
		})
	}
}

// TestAVX512Bits holds the AVX-512 kernels to the AVX2 ones bit for bit
// on dense sweeps: each math function over its range and over a walk
// through all float32 bit patterns, the others over the walk paired with
// a shuffled copy of it.
func TestAVX512Bits(t *testing.T) {
	if !has(avx512) {
		t.Skip("no AVX-512 on this CPU or build")
	}
	const stride = 4093 // prime: the walk meets every exponent and many mantissas
	var walk []float32
	for b := uint64(0); b < 1<<32; b += stride {
		walk = append(walk, math.Float32frombits(uint32(b)))
	}
	walk = append(walk, edges...)
	walk = append(walk, specials...)
	walk = walk[:len(walk)&^7] // all of it in the AVX2 assembly
	rng := rand.New(rand.NewPCG(9, 10))
	other := append([]float32(nil), walk...)
	rng.Shuffle(len(other), func(i, j int) { other[i], other[j] = other[j], other[i] })
	sweeps := map[string][]float32{}
	for _, m := range mathFuncs {
		const n = 1 << 20
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(m.lo + (m.hi-m.lo)*float64(i)/n)
		}
		sweeps[m.name] = x
	}
	for _, k := range kernels() {
		in := [][]float32{walk, other}[:k.nin]
		ins := [][][]float32{in}
		if x, ok := sweeps[k.name]; ok {
			ins = append(ins, [][]float32{x})
		}
		for _, in := range ins {
			var got [2][]float32
			for j, p := range []isa{avx2, avx512} {
				got[j] = make([]float32, len(in[0]))
				withImpl(p, func() { k.run(got[j], in) })
			}
			for i := range got[0] {
				if !sameBits(got[0][i], got[1][i]) {
					t.Errorf("%s(%#x): avx2 %#x, avx512 %#x", k.name, math.Float32bits(in[0][i]),
						math.Float32bits(got[0][i]), math.Float32bits(got[1][i]))
					break
				}
			}
		}
	}
}

func TestChannelScaleShift(t *testing.T) {
	for _, p := range impls() {
		const n, c, inner = 2, 3, 13
		x := make([]float32, n*c*inner)
		for i := range x {
			x[i] = float32(i) - 20
		}
		a := []float32{1, -2, 0.5}
		b := []float32{0, 1, -3}
		y := make([]float32, len(x))
		withImpl(p, func() { ChannelScaleShift(y, x, a, b, inner) })
		for i := range x {
			ch := i / inner % c
			if want := x[i]*a[ch] + b[ch]; y[i] != want {
				t.Fatalf("%s: y[%d] = %g, want %g", p.String(), i, y[i], want)
			}
		}
	}
}

func TestPar(t *testing.T) {
	for _, n := range []int{0, 1, ParMin - 1, ParMin, ParMin + 1, 10*Chunk + 7} {
		seen := make([]int32, n)
		var calls [][2]int
		ch := make(chan [2]int, n/Chunk+2)
		Par(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				seen[i]++
			}
			ch <- [2]int{lo, hi}
		})
		close(ch)
		for c := range ch {
			calls = append(calls, c)
		}
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n=%d: index %d done %d times", n, i, s)
			}
		}
		for _, c := range calls {
			if n >= ParMin && (c[0]%Chunk != 0 || (c[1]-c[0] != Chunk && c[1] != n)) {
				t.Fatalf("n=%d: chunk %v", n, c)
			}
		}
	}
}

// TestChoose checks GRAFT_CPU's values: each path this CPU runs is chosen
// by its name, a wider one than the CPU has gets the best it has, and an
// empty or unknown value the best.
func TestChoose(t *testing.T) {
	ps := impls()
	best := ps[len(ps)-1]
	for _, p := range ps {
		if got := choose(p.String()); got != p {
			t.Errorf("GRAFT_CPU=%s chose %s", p, got)
		}
	}
	for env, want := range map[string]isa{
		"generic": generic, " Generic ": generic, "avx2": min(avx2, best), "AVX2": min(avx2, best),
		"avx512": best, "": best, "sse9": best,
	} {
		if got := choose(env); got != want {
			t.Errorf("GRAFT_CPU=%q chose %s, want %s", env, got, want)
		}
	}
	t.Logf("implementation in use: %s; this CPU runs %v", Impl(), ps)
}
