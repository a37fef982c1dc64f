package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// impls lists the implementations this machine can run; each test runs
// on every one.
func impls() []bool {
	if hasAVX2FMA {
		return []bool{false, true}
	}
	return []bool{false}
}

func withImpl(avx2 bool, f func()) {
	old := useAVX2
	useAVX2 = avx2
	defer func() { useAVX2 = old }()
	f()
}

func implName(avx2 bool) string {
	if avx2 {
		return "avx2"
	}
	return "generic"
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
		for _, avx2 := range impls() {
			t.Run(m.name+"/"+implName(avx2), func(t *testing.T) {
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
				withImpl(avx2, func() { m.f(y, x) })
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
				t.Logf("%s %s: max error %.2f ulp (at x = %g), max relative error %.3g", m.name, implName(avx2), worst, at, worstRel)
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
		for _, avx2 := range impls() {
			// repeat the values so that the assembly sees them too
			var x, want []float32
			for range 8 {
				x = append(x, c.x...)
				want = append(want, c.want...)
			}
			y := make([]float32, len(x))
			withImpl(avx2, func() { c.f(y, x) })
			for i := range x {
				same := y[i] == want[i] && math.Signbit(float64(y[i])) == math.Signbit(float64(want[i]))
				if want[i] != want[i] {
					same = y[i] != y[i]
				}
				if c.name == "Exp" && want[i] == math.E {
					same = ulps(y[i], math.E) <= 1
				}
				if !same {
					t.Errorf("%s %s(%g) = %g, want %g", implName(avx2), c.name, x[i], y[i], want[i])
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
		ks = append(ks, u(m.name, m.f, m.ref, m.maxULP))
	}
	return ks
}

// TestKernels compares every kernel, in every implementation, with its
// float64 reference on random lengths 0..1000 and start offsets 0..7,
// writing into a separate slice and in place.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kernels() {
		for _, avx2 := range impls() {
			t.Run(k.name+"/"+implName(avx2), func(t *testing.T) {
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
					withImpl(avx2, func() { k.run(dst, in) })
					// in place, into the first input
					inPlace := append([]float32(nil), in[0]...)
					in2 := append([][]float32{inPlace}, in[1:]...)
					withImpl(avx2, func() { k.run(inPlace, in2) })
					var gen []float32
					if k.maxULP == 0 {
						gen = make([]float32, n)
						withImpl(false, func() { k.run(gen, in) })
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
			for _, avx2 := range impls() {
				dst := make([]float32, n+1)
				dst[n] = 12345
				withImpl(avx2, func() { Max(dst, a, b) })
				for i := range want {
					if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d off=%d: Max(%#x, %#x) = %#x, built-in max %#x", implName(avx2), n, off,
							math.Float32bits(a[i]), math.Float32bits(b[i]), math.Float32bits(dst[i]), math.Float32bits(want[i]))
					}
				}
				if dst[n] != 12345 {
					t.Fatalf("%s n=%d: wrote past the input", implName(avx2), n)
				}
				// in place, into either operand
				c := append([]float32(nil), a...)
				withImpl(avx2, func() { Max(c, c, b) })
				d := append([]float32(nil), b...)
				withImpl(avx2, func() { Max(d, a, d) })
				for i := range want {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) || math.Float32bits(d[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d: in place Max = %#x, %#x, want %#x", implName(avx2), n, math.Float32bits(c[i]), math.Float32bits(d[i]), math.Float32bits(want[i]))
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
					for _, avx2 := range impls() {
						dst := make([]float32, n+1)
						dst[n] = 12345
						withImpl(avx2, func() { StridedMax(dst[:n], src, stride, floor) })
						for i := range want {
							if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s n=%d stride %d floor %g: dst[%d] = %#x, built-in max %#x", implName(avx2), n, stride, floor, i,
									math.Float32bits(dst[i]), math.Float32bits(want[i]))
							}
						}
						if dst[n] != 12345 {
							t.Fatalf("%s n=%d: wrote past dst", implName(avx2), n)
						}
					}
				}
			}
		}
	}
}

func TestChannelScaleShift(t *testing.T) {
	for _, avx2 := range impls() {
		const n, c, inner = 2, 3, 13
		x := make([]float32, n*c*inner)
		for i := range x {
			x[i] = float32(i) - 20
		}
		a := []float32{1, -2, 0.5}
		b := []float32{0, 1, -3}
		y := make([]float32, len(x))
		withImpl(avx2, func() { ChannelScaleShift(y, x, a, b, inner) })
		for i := range x {
			ch := i / inner % c
			if want := x[i]*a[ch] + b[ch]; y[i] != want {
				t.Fatalf("%s: y[%d] = %g, want %g", implName(avx2), i, y[i], want)
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

func TestDetect(t *testing.T) {
	if detect("generic") {
		t.Error(`GRAFT_CPU=generic still selects the assembly`)
	}
	for _, env := range []string{"", "avx2", "avx512"} {
		if detect(env) != hasAVX2FMA {
			t.Errorf("GRAFT_CPU=%q: detect = %v, CPU has AVX2+FMA = %v", env, detect(env), hasAVX2FMA)
		}
	}
	t.Logf("implementation in use: %s", Impl())
}
