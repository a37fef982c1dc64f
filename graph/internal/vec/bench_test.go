package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The benchmarks run each kernel on 6.4M values (resnet18-size
// activations at batch 8; random normal data, so signs are unpredictable)
// and report ns/value for:
//   - old: graph's kernels as of this package's introduction, a closure
//     call per element (unaryKernel.forward/backward), float64 math for
//     Exp/Sigmoid/Tanh/Erf, index arrays for same-shape Add/Mul
//     (naryKernel.forward), float64 per-channel affine (bnLayout.affine);
//   - generic: this package's pure Go on one goroutine;
//   - avx2, avx512: the assembly on one goroutine, each implementation
//     this CPU runs;
//   - par: the default implementation split by Par over GOMAXPROCS.
//
// BenchmarkKernelsBlock runs them on 4096 values, a block of a
// convolution's output as its epilogue sees it (in L1, so that the
// kernels' own speed shows rather than memory's).

const benchN = 6400000

func benchData(seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, benchN)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 2)
	}
	return x
}

var (
	benchX, benchY, benchDst []float32
)

func benchInit() {
	if benchX == nil {
		benchX, benchY, benchDst = benchData(1), benchData(2), make([]float32, benchN)
	}
}

func report(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/value")
}

// oldUnary is graph's unaryKernel.forward loop.
func oldUnary(f func(float32) float32) func(dst, x []float32) {
	return func(dst, x []float32) {
		for i, v := range x {
			dst[i] = f(v)
		}
	}
}

// oldGrad is graph's unaryKernel.backward loop (x and y the same here).
func oldGrad(df func(x, y float32) float32) func(dst, x, dy []float32) {
	return func(dst, x, dy []float32) {
		for i, d := range dy {
			dst[i] = d * df(x[i], x[i])
		}
	}
}

func f64(f func(float64) float64) func(float32) float32 {
	return func(x float32) float32 { return float32(f(float64(x))) }
}

// oldNary is graph's naryKernel.forward for two same-shape inputs.
func oldNary(op string) func(dst, a, b []float32) {
	ia := make([]int32, benchN)
	for i := range ia {
		ia[i] = int32(i)
	}
	return func(o, a, b []float32) {
		for i := range o {
			o[i] = a[ia[i]]
		}
		switch op {
		case "Add":
			for i := range o {
				o[i] += b[ia[i]]
			}
		case "Sub":
			for i := range o {
				o[i] -= b[ia[i]]
			}
		case "Mul":
			for i := range o {
				o[i] *= b[ia[i]]
			}
		case "Max":
			for i := range o {
				o[i] = max(o[i], b[ia[i]])
			}
		case "Div":
			for i := range o {
				o[i] = oldApply(op, o[i], b[ia[i]])
			}
		}
	}
}

//go:noinline
func oldApply(op string, a, b float32) float32 {
	switch op {
	case "Add":
		return a + b
	case "Div":
		return a / b
	}
	return 0
}

type benchCase struct {
	name string
	old  func(dst, x, y []float32)
	cur  func(dst, x, y []float32) // this package's entry point
	gen  func(dst, x, y []float32) // its pure Go, nil if cur is pure Go anyway
}

func un(f func(dst, x []float32)) func(dst, x, y []float32) {
	return func(dst, x, _ []float32) { f(dst, x) }
}

func benchCases() []benchCase {
	const alpha = 0.1
	relu := func(x float32) float32 {
		if x > 0 {
			return x
		}
		return 0
	}
	sigmoid := func(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
	bnA, bnB := make([]float32, 64), make([]float32, 64)
	bnA64, bnB64 := make([]float64, 64), make([]float64, 64)
	for i := range bnA {
		bnA[i], bnB[i] = 1+float32(i)/64, float32(i)/128
		bnA64[i], bnB64[i] = float64(bnA[i]), float64(bnB[i])
	}
	const inner = 3125 // planes of about 56×56; 64 channels·3125·32 = benchN
	return []benchCase{
		{"Relu", un(oldUnary(relu)), un(Relu), un(reluGeneric)},
		{"LeakyRelu", un(oldUnary(func(x float32) float32 {
			if x > 0 {
				return x
			}
			return alpha * x
		})), un(func(d, x []float32) { LeakyRelu(d, x, alpha) }), un(func(d, x []float32) { leakyReluGeneric(d, x, alpha) })},
		{"Clip", un(oldUnary(func(x float32) float32 {
			if x < 0 {
				x = 0
			}
			if x > 6 {
				x = 6
			}
			return x
		})), un(func(d, x []float32) { Clip(d, x, 0, 6) }), un(func(d, x []float32) { affineClampGeneric(d, x, 1, 0, 0, 6) })},
		{"HardSigmoid", un(oldUnary(func(x float32) float32 { return max(0, min(1, 0.2*x+0.5)) })),
			un(func(d, x []float32) { HardSigmoid(d, x, 0.2, 0.5) }), un(func(d, x []float32) { affineClampGeneric(d, x, 0.2, 0.5, 0, 1) })},
		{"HardSwish", un(oldUnary(func(x float32) float32 { return x * max(0, min(1, x/6+0.5)) })),
			un(HardSwish), un(func(d, x []float32) { affineClampMulGeneric(d, x, 1.0/6, 0.5, 0, 1) })},
		{"Exp", un(oldUnary(f64(math.Exp))), un(Exp), un(expGeneric)},
		{"Sigmoid", un(oldUnary(sigmoid)), un(Sigmoid), un(sigmoidGeneric)},
		{"SiLU", un(oldUnary(func(x float32) float32 { return x * sigmoid(x) })), un(SiLU), un(siluGeneric)},
		{"Tanh", un(oldUnary(f64(math.Tanh))), un(Tanh), un(tanhGeneric)},
		{"Erf", un(oldUnary(f64(math.Erf))), un(Erf), un(erfGeneric)},
		{"ScaleShift", un(oldUnary(func(x float32) float32 { return 1.5*x + 0.25 })),
			un(func(d, x []float32) { ScaleShift(d, x, 1.5, 0.25) }), un(func(d, x []float32) { affineGeneric(d, x, 1.5, 0.25) })},
		{"Add", oldNary("Add"), Add, addGeneric},
		{"Sub", oldNary("Sub"), Sub, subGeneric},
		{"Mul", oldNary("Mul"), Mul, mulGeneric},
		{"Max", oldNary("Max"), Max, maxGeneric},
		{"Div", oldNary("Div"), Div, divGeneric},
		{"ChannelScaleShift", func(dst, x, _ []float32) {
			for p := 0; p*inner < len(x); p++ {
				ac, bc := bnA64[p%64], bnB64[p%64]
				yr := dst[p*inner : (p+1)*inner]
				for i, v := range x[p*inner : (p+1)*inner] {
					yr[i] = float32(float64(v)*ac + bc)
				}
			}
		}, func(dst, x, _ []float32) { ChannelScaleShift(dst, x, bnA, bnB, inner) }, nil},
		{"ReluGrad", oldGrad(func(x, _ float32) float32 {
			if x > 0 {
				return 1
			}
			return 0
		}), ReluGrad, func(dst, x, dy []float32) {
			rangeMaskGeneric(dst, x, dy, math.SmallestNonzeroFloat32, float32(math.Inf(1)))
		}},
		{"SigmoidGrad", oldGrad(func(_, y float32) float32 { return y * (1 - y) }), SigmoidGrad, sigmoidGradGeneric},
		{"TanhGrad", oldGrad(func(_, y float32) float32 { return 1 - y*y }), TanhGrad, tanhGradGeneric},
	}
}

func BenchmarkKernels(b *testing.B) {
	benchInit()
	for _, c := range benchCases() {
		b.Run(c.name+"/old", func(b *testing.B) {
			for b.Loop() {
				c.old(benchDst, benchX, benchY)
			}
			report(b, benchN)
		})
		b.Run(c.name+"/generic", func(b *testing.B) {
			f := c.gen
			withImpl(generic, func() {
				for b.Loop() {
					if f != nil {
						f(benchDst, benchX, benchY)
					} else {
						c.cur(benchDst, benchX, benchY)
					}
				}
			})
			report(b, benchN)
		})
		for _, p := range impls()[1:] {
			b.Run(c.name+"/"+p.String(), func(b *testing.B) {
				withImpl(p, func() {
					for b.Loop() {
						c.cur(benchDst, benchX, benchY)
					}
				})
				report(b, benchN)
			})
		}
		if c.name == "ChannelScaleShift" {
			continue // its planes are the unit of work, not Par's chunks
		}
		b.Run(c.name+"/par", func(b *testing.B) {
			for b.Loop() {
				Par(benchN, func(lo, hi int) { c.cur(benchDst[lo:hi], benchX[lo:hi], benchY[lo:hi]) })
			}
			report(b, benchN)
		})
	}
}

func BenchmarkKernelsBlock(b *testing.B) {
	const n = 4096
	benchInit()
	dst, x, y := benchDst[:n], benchX[:n], benchY[:n]
	for _, c := range benchCases() {
		if c.name == "ChannelScaleShift" {
			continue // needs whole planes
		}
		for _, p := range impls() {
			b.Run(c.name+"/"+p.String(), func(b *testing.B) {
				withImpl(p, func() {
					for b.Loop() {
						c.cur(dst, x, y)
					}
				})
				report(b, n)
			})
		}
	}
}
