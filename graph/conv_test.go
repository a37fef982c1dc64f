package graph

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"github.com/graftml/graft/onnx"
)

// TestSgemm compares sgemm with a float64 triple loop for every
// transposition, leading dimensions wider than the matrices, several
// alpha/beta, and sizes on both sides of the parallel threshold.
func TestSgemm(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	sizes := [][3]int{{1, 1, 1}, {2, 3, 4}, {5, 17, 3}, {7, 1, 9}, {1, 40, 33}, {33, 70, 65}, {64, 3136 / 4, 80}, {130, 260, 20}, {3, 2100, 40}, {300, 5, 200}}
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}} {
					alpha, beta := ab[0], ab[1]
					lda, ldb, ldc := k+2, n+1, n+3
					ar, br := m, k // rows of A and B as stored
					if ta {
						lda, ar = m+1, k
					}
					if tb {
						ldb, br = k+3, n
					}
					a := randTensor(r, ar*lda).F
					b := randTensor(r, br*ldb).F
					c := randTensor(r, m*ldc).F
					if beta == 0 {
						c[0] = float32(math.NaN()) // beta 0 must clear, not scale
					}
					want := refGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					for i, w := range want {
						if d := math.Abs(float64(c[i]) - w); !(d <= 1e-4*(1+math.Abs(w))) {
							t.Fatalf("sgemm %v transA=%v transB=%v alpha=%v beta=%v: element %d = %v, want %v", sz, ta, tb, alpha, beta, i, c[i], w)
						}
					}
				}
			}
		}
	}
}

// TestSgemmDeterministic: the same product gives the same bits whatever
// the number of goroutines (and so whatever order they run in).
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, sz := range [][3]int{{64, 3136 / 4, 147}, {130, 261, 300}, {512, 49, 600}, {9, 2000, 33}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				a, b := randTensor(r, m*k).F, randTensor(r, k*n).F
				c0 := randTensor(r, m*n).F
				var ref []float32
				for _, w := range []int{1, 2, 3, 4, 2} {
					c := append([]float32(nil), c0...)
					sgemmWorkers(w, ta, tb, m, n, k, 0.5, a, lda, b, ldb, 0.25, c, n)
					if ref == nil {
						ref = c
						continue
					}
					for i := range c {
						if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("%v transA=%v transB=%v: element %d is %v on %d goroutines, %v on 1", sz, ta, tb, i, c[i], w, ref[i])
						}
					}
				}
			}
		}
	}
}

// testWindow builds the window of a 2-D op over an h×w input as the
// builder would (pads are [top, left, bottom, right]).
func testWindow(t testing.TB, h, w, kh, kw int, strides, dil, pads []int, autoPad string, ceil bool) window {
	t.Helper()
	if strides == nil {
		strides = []int{1, 1}
	}
	if dil == nil {
		dil = []int{1, 1}
	}
	if pads == nil {
		pads = []int{0, 0, 0, 0}
	}
	g := window{h: h, w: w, kh: kh, kw: kw, sh: strides[0], sw: strides[1], dh: dil[0], dw: dil[1]}
	var err error
	if g.oh, g.pt, g.pb, err = windowAxis(h, kh, g.sh, g.dh, pads[0], pads[2], autoPad, ceil); err != nil {
		t.Fatal(err)
	}
	if g.ow, g.pl, g.pr, err = windowAxis(w, kw, g.sw, g.dw, pads[1], pads[3], autoPad, ceil); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestWindowAxis(t *testing.T) {
	cases := []struct {
		in, k, s, d, head, tail int
		autoPad                 string
		ceil                    bool
		out, ph, pt             int
	}{
		{5, 3, 1, 1, 0, 0, "NOTSET", false, 3, 0, 0},
		{5, 3, 1, 1, 1, 1, "NOTSET", false, 5, 1, 1},
		{7, 3, 2, 1, 1, 1, "NOTSET", false, 4, 1, 1},
		{7, 3, 2, 1, 1, 0, "", false, 3, 1, 0},
		{32, 5, 3, 1, 0, 0, "NOTSET", false, 10, 0, 0},
		{4, 2, 1, 2, 0, 0, "NOTSET", false, 2, 0, 0}, // dilated extent 3
		{4, 3, 2, 1, 0, 0, "NOTSET", true, 2, 0, 0},  // test_maxpool_2d_ceil
		{4, 3, 2, 1, 0, 0, "NOTSET", false, 1, 0, 0},
		// ceil mode: a last window that would start in the right padding
		// is dropped: ceil((5+1+1-2)/2)+1 = 4, but window 3 starts at 6-1 = 5 = in
		{5, 2, 2, 1, 1, 1, "NOTSET", true, 3, 1, 1},
		{5, 2, 2, 1, 1, 1, "NOTSET", false, 3, 1, 1},
		{6, 3, 2, 1, 1, 1, "NOTSET", true, 4, 1, 1}, // window 3 starts at 5 < 6+1
		{9, 4, 4, 1, 2, 2, "NOTSET", true, 3, 2, 2}, // PyTorch issue 116420: 3, not 4
		{32, 1, 2, 1, 0, 0, "NOTSET", true, 16, 0, 0},
		{5, 3, 2, 1, 0, 0, "SAME_UPPER", false, 3, 1, 1},
		{6, 3, 2, 1, 0, 0, "SAME_UPPER", false, 3, 0, 1},
		{6, 3, 2, 1, 0, 0, "SAME_LOWER", false, 3, 1, 0},
		{32, 2, 1, 1, 0, 0, "SAME_UPPER", false, 32, 0, 1},
		{32, 2, 1, 1, 0, 0, "SAME_LOWER", false, 32, 1, 0},
		{6, 1, 2, 1, 0, 0, "SAME_UPPER", false, 3, 0, 0}, // no negative pads
		{7, 3, 2, 1, 5, 5, "VALID", false, 3, 0, 0},
		{7, 3, 1, 2, 0, 0, "VALID", false, 3, 0, 0},
	}
	for _, c := range cases {
		out, ph, pt, err := windowAxis(c.in, c.k, c.s, c.d, c.head, c.tail, c.autoPad, c.ceil)
		if err != nil || out != c.out || ph != c.ph || pt != c.pt {
			t.Errorf("windowAxis(in %d, k %d, s %d, d %d, pads %d,%d, %q, ceil %v) = %d, %d, %d, %v; want %d, %d, %d",
				c.in, c.k, c.s, c.d, c.head, c.tail, c.autoPad, c.ceil, out, ph, pt, err, c.out, c.ph, c.pt)
		}
	}
	for _, bad := range [][6]int{{2, 5, 1, 1, 0, 0}, {3, 2, 0, 1, 0, 0}, {3, 2, 1, 1, -1, 0}} {
		if _, _, _, err := windowAxis(bad[0], bad[1], bad[2], bad[3], bad[4], bad[5], "NOTSET", false); err == nil {
			t.Errorf("windowAxis%v: no error", bad)
		}
	}
	if _, _, _, err := windowAxis(5, 3, 1, 1, 0, 0, "SAME", false); err == nil {
		t.Error("auto_pad SAME: no error")
	}
}

func TestTapRange(t *testing.T) {
	// brute force against the definition 0 <= o*s - p + t*d < in
	for in := 1; in < 9; in++ {
		for s := 1; s < 4; s++ {
			for p := 0; p < 4; p++ {
				for d := 1; d < 3; d++ {
					for tap := 0; tap < 4; tap++ {
						out := 9
						lo, hi := tapRange(in, out, s, p, d, tap)
						for o := 0; o < out; o++ {
							i := o*s - p + tap*d
							inside := i >= 0 && i < in
							if inside != (o >= lo && o < hi) {
								t.Fatalf("tapRange(in %d, s %d, p %d, d %d, tap %d) = [%d, %d): wrong at o=%d", in, s, p, d, tap, lo, hi, o)
							}
						}
					}
				}
			}
		}
	}
}

// convCase is one Conv configuration of the tests.
type convCase struct {
	name                       string
	n, c, h, w, m, kh, kw, grp int
	strides, dil, pads         []int
	autoPad                    string
	bias, oneD                 bool
}

var convCases = []convCase{
	{name: "plain", n: 1, c: 3, h: 6, w: 7, m: 4, kh: 3, kw: 3, grp: 1, bias: true},
	{name: "pads", n: 2, c: 2, h: 5, w: 5, m: 3, kh: 3, kw: 3, grp: 1, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "strides+asymmetric pads", n: 1, c: 2, h: 7, w: 8, m: 3, kh: 3, kw: 2, grp: 1, strides: []int{2, 3}, pads: []int{1, 0, 2, 1}, bias: true},
	{name: "dilation", n: 1, c: 2, h: 8, w: 9, m: 2, kh: 3, kw: 3, grp: 1, dil: []int{2, 3}, pads: []int{2, 1, 1, 2}},
	{name: "grouped", n: 2, c: 4, h: 5, w: 6, m: 6, kh: 3, kw: 3, grp: 2, strides: []int{1, 2}, pads: []int{1, 1, 0, 1}, bias: true},
	{name: "depthwise", n: 2, c: 3, h: 7, w: 6, m: 3, kh: 3, kw: 3, grp: 3, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "depthwise multiplier 2 strided", n: 1, c: 2, h: 9, w: 8, m: 4, kh: 3, kw: 3, grp: 2, strides: []int{2, 2}, pads: []int{1, 0, 1, 1}},
	{name: "depthwise 5x5 dilated", n: 1, c: 2, h: 9, w: 10, m: 2, kh: 5, kw: 5, grp: 2, dil: []int{2, 1}, pads: []int{3, 2, 3, 2}, bias: true},
	{name: "depthwise 3x3 dilated", n: 1, c: 2, h: 9, w: 10, m: 2, kh: 3, kw: 3, grp: 2, dil: []int{2, 2}, pads: []int{2, 2, 2, 2}, bias: true},
	{name: "depthwise 5x5 strided wide", n: 2, c: 3, h: 11, w: 37, m: 3, kh: 5, kw: 5, grp: 3, strides: []int{2, 2}, pads: []int{2, 1, 1, 2}, bias: true},
	{name: "depthwise 5x5 wide", n: 1, c: 2, h: 6, w: 35, m: 2, kh: 5, kw: 5, grp: 2, pads: []int{2, 2, 2, 2}},
	{name: "depthwise 3x3 strided wide", n: 1, c: 2, h: 9, w: 41, m: 2, kh: 3, kw: 3, grp: 2, strides: []int{2, 2}, pads: []int{0, 1, 1, 1}, bias: true},
	{name: "depthwise narrow (no interior)", n: 1, c: 2, h: 3, w: 2, m: 2, kh: 3, kw: 3, grp: 2, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "depthwise wide kernel", n: 1, c: 2, h: 4, w: 3, m: 4, kh: 2, kw: 5, grp: 2, pads: []int{0, 2, 1, 2}},
	{name: "depthwise 3x1", n: 1, c: 2, h: 6, w: 5, m: 2, kh: 3, kw: 1, grp: 2, pads: []int{1, 0, 1, 0}},
	{name: "1x1", n: 2, c: 5, h: 4, w: 3, m: 3, kh: 1, kw: 1, grp: 1, bias: true},
	{name: "1x1 strided", n: 1, c: 3, h: 5, w: 5, m: 2, kh: 1, kw: 1, grp: 1, strides: []int{2, 2}},
	{name: "same_upper", n: 1, c: 2, h: 5, w: 6, m: 2, kh: 3, kw: 3, grp: 1, strides: []int{2, 2}, autoPad: "SAME_UPPER", bias: true},
	{name: "same_lower", n: 1, c: 2, h: 6, w: 5, m: 2, kh: 2, kw: 4, grp: 1, autoPad: "SAME_LOWER"},
	{name: "valid", n: 1, c: 2, h: 6, w: 5, m: 2, kh: 3, kw: 2, grp: 1, strides: []int{2, 1}, autoPad: "VALID"},
	{name: "batch 4 strided", n: 4, c: 3, h: 9, w: 8, m: 5, kh: 3, kw: 3, grp: 1, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "batch 3 dilated", n: 3, c: 2, h: 6, w: 7, m: 3, kh: 3, kw: 3, grp: 1, dil: []int{2, 2}, pads: []int{2, 2, 2, 2}},
	{name: "batch 5", n: 5, c: 3, h: 4, w: 5, m: 4, kh: 3, kw: 3, grp: 1, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "1-D", n: 2, c: 3, h: 1, w: 9, m: 2, kh: 1, kw: 3, grp: 1, strides: []int{1, 2}, pads: []int{0, 1, 0, 2}, bias: true, oneD: true},
	{name: "1-D depthwise", n: 1, c: 4, h: 1, w: 9, m: 4, kh: 1, kw: 3, grp: 4, pads: []int{0, 1, 0, 1}, oneD: true},
}

func (cc convCase) setup(t testing.TB, r *rand.Rand) (*convKernel, []*onnx.Tensor) {
	g := testWindow(t, cc.h, cc.w, cc.kh, cc.kw, cc.strides, cc.dil, cc.pads, cc.autoPad, false)
	x := randTensor(r, cc.n, cc.c, cc.h, cc.w)
	w := randTensor(r, cc.m, cc.c/cc.grp, cc.kh, cc.kw)
	rank := 4
	if cc.oneD {
		rank = 3
		x.Shape = []int{cc.n, cc.c, cc.w}
		w.Shape = []int{cc.m, cc.c / cc.grp, cc.kw}
	}
	ins := []*onnx.Tensor{x, w}
	if cc.bias {
		ins = append(ins, randTensor(r, cc.m))
	}
	return newConvKernel(g, rank, cc.n, cc.c, cc.m, cc.grp, cc.bias), ins
}

// naiveConv is the definition of Conv, in float64.
func naiveConv(k *convKernel, in []*onnx.Tensor) []float64 {
	g := &k.g
	x, w := in[0].F, in[1].F
	out := make([]float64, k.n*k.m*g.oh*g.ow)
	for ni := 0; ni < k.n; ni++ {
		for oc := 0; oc < k.m; oc++ {
			gi := oc / k.mg
			for oh := 0; oh < g.oh; oh++ {
				for ow := 0; ow < g.ow; ow++ {
					var s float64
					if k.bias {
						s = float64(in[2].F[oc])
					}
					for ci := 0; ci < k.cg; ci++ {
						ic := gi*k.cg + ci
						for i := 0; i < g.kh; i++ {
							for j := 0; j < g.kw; j++ {
								ih, iw := oh*g.sh-g.pt+i*g.dh, ow*g.sw-g.pl+j*g.dw
								if ih < 0 || ih >= g.h || iw < 0 || iw >= g.w {
									continue
								}
								s += float64(x[((ni*k.c+ic)*g.h+ih)*g.w+iw]) * float64(w[((oc*k.cg+ci)*g.kh+i)*g.kw+j])
							}
						}
					}
					out[((ni*k.m+oc)*g.oh+oh)*g.ow+ow] = s
				}
			}
		}
	}
	return out
}

func TestConvForward(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, cc := range convCases {
		k, ins := cc.setup(t, r)
		got, err := k.forward(ins)
		if err != nil {
			t.Fatalf("%s: %v", cc.name, err)
		}
		if fmt.Sprint(got.Shape) != fmt.Sprint(k.outShape) {
			t.Fatalf("%s: shape %v, want %v", cc.name, got.Shape, k.outShape)
		}
		want := naiveConv(k, ins)
		for i, w := range want {
			if math.Abs(float64(got.F[i])-w) > 1e-5*(1+math.Abs(w)) {
				t.Fatalf("%s: element %d = %v, want %v", cc.name, i, got.F[i], w)
			}
		}
	}
}

func TestConvGradients(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, cc := range convCases {
		k, ins := cc.setup(t, r)
		wrt := []int{0, 1}
		if cc.bias {
			wrt = append(wrt, 2)
		}
		checkGrad(t, "Conv "+cc.name, k, ins, wrt, 2e-3)
	}
}

// TestConvGradientsSerial runs the gradient check on one goroutine too, so
// both the per-image and the within-image parallel paths are checked.
func TestConvGradientsSerial(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r := rand.New(rand.NewSource(13))
	for _, cc := range convCases[:8] {
		k, ins := cc.setup(t, r)
		checkGrad(t, "Conv (1 thread) "+cc.name, k, ins, []int{0, 1}, 2e-3)
	}
}

// TestConvLarge compares a convolution large enough for the parallel
// sgemm paths with the definition.
func TestConvLarge(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	for _, cc := range []convCase{
		{name: "large", n: 1, c: 16, h: 30, w: 31, m: 24, kh: 3, kw: 3, grp: 1, pads: []int{1, 1, 1, 1}, bias: true},
		{name: "large batch", n: 3, c: 8, h: 20, w: 20, m: 16, kh: 3, kw: 3, grp: 1, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}},
		{name: "large depthwise", n: 2, c: 16, h: 28, w: 28, m: 16, kh: 3, kw: 3, grp: 16, pads: []int{1, 1, 1, 1}, bias: true},
	} {
		k, ins := cc.setup(t, r)
		got, err := k.forward(ins)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range naiveConv(k, ins) {
			if math.Abs(float64(got.F[i])-w) > 1e-4*(1+math.Abs(w)) {
				t.Fatalf("%s: element %d = %v, want %v", cc.name, i, got.F[i], w)
			}
		}
		// the gradients against those of a serial run of the same kernel
		dy := randTensor(r, k.outShape...)
		var par [3]*onnx.Tensor
		for i := range ins {
			if par[i], err = k.backward(i, ins, got, dy); err != nil {
				t.Fatal(err)
			}
		}
		prev := runtime.GOMAXPROCS(1)
		for i := range ins {
			ser, err := k.backward(i, ins, got, dy)
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range ser.F {
				if math.Abs(float64(par[i].F[j]-v)) > 1e-4*(1+math.Abs(float64(v))) {
					t.Errorf("%s: gradient %d element %d: parallel %v, serial %v", cc.name, i, j, par[i].F[j], v)
					break
				}
			}
		}
		runtime.GOMAXPROCS(prev)
	}
}

func benchConv(b *testing.B, cc convCase, backward bool) {
	r := rand.New(rand.NewSource(1))
	k, ins := cc.setup(b, r)
	out, err := k.forward(ins)
	if err != nil {
		b.Fatal(err)
	}
	dy := randTensor(r, k.outShape...)
	flops := 2 * float64(len(out.F)) * float64(k.cg*k.g.kh*k.g.kw)
	cpu0 := cpuTime()
	for b.Loop() {
		if !backward {
			if _, err := k.forward(ins); err != nil {
				b.Fatal(err)
			}
			continue
		}
		for i := 0; i < 2; i++ {
			if _, err := k.backward(i, ins, out, dy); err != nil {
				b.Fatal(err)
			}
		}
	}
	if backward {
		flops *= 2
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	// CPU time per op (all threads): steadier than wall time on a shared machine
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

var (
	benchConvCase      = convCase{name: "3x3 64->64", n: 8, c: 64, h: 56, w: 56, m: 64, kh: 3, kw: 3, grp: 1, pads: []int{1, 1, 1, 1}, bias: true}
	benchDepthwiseCase = convCase{name: "dw 3x3 144", n: 8, c: 144, h: 56, w: 56, m: 144, kh: 3, kw: 3, grp: 144, pads: []int{1, 1, 1, 1}, bias: true}
)

// BenchmarkConv: 3x3 convolution, 64 -> 64 channels at 56x56, batch 8
// (a ResNet-18 layer-1 conv), forward.
func BenchmarkConv(b *testing.B) { benchConv(b, benchConvCase, false) }

// BenchmarkDepthwise: 3x3 depthwise convolution, 144 channels at 56x56,
// batch 8 (a MobileNetV2 block), forward.
func BenchmarkDepthwise(b *testing.B) { benchConv(b, benchDepthwiseCase, false) }

// BenchmarkConvBackward and BenchmarkDepthwiseBackward time dX and dW
// together.
func BenchmarkConvBackward(b *testing.B)      { benchConv(b, benchConvCase, true) }
func BenchmarkDepthwiseBackward(b *testing.B) { benchConv(b, benchDepthwiseCase, true) }

// BenchmarkConvBatch1: the same convolution at batch 1 (parallel within
// the image).
func BenchmarkConvBatch1(b *testing.B) {
	cc := benchConvCase
	cc.n = 1
	benchConv(b, cc, false)
}

// BenchmarkSgemm times sgemm on the products of ResNet-18's convolutions
// at batch 1 (m = output channels, n = output pixels, k = C·kh·kw), a
// MobileNetV2 1x1 convolution and ResNet-18's fully connected layer at
// batch 1 (96x3136x24, 1000x1x512), then on batch-8 products
// (64x25088x576, 128x6272x1152 and 512x392x4608 are ResNet-18 3x3
// convolutions with the batch folded into n, 96x25088x24 the 1x1
// convolution). The same batch-1 shapes are in graph/internal/gemm's
// BenchmarkSgemm.
func BenchmarkSgemm(b *testing.B) {
	benchSgemm(b, 0, [][3]int{{64, 12544, 147}, {64, 3136, 576}, {128, 784, 1152}, {256, 196, 2304}, {512, 49, 4608},
		{96, 3136, 24}, {1000, 1, 512},
		{64, 25088, 576}, {128, 6272, 1152}, {512, 392, 4608}, {96, 25088, 24}})
}

// BenchmarkSgemmSerial: the batch-1 products on one goroutine, as Conv
// runs them when it gives each goroutine its own images.
func BenchmarkSgemmSerial(b *testing.B) {
	benchSgemm(b, 1, [][3]int{{64, 12544, 147}, {64, 3136, 576}, {128, 784, 1152}, {256, 196, 2304}, {512, 49, 4608},
		{96, 3136, 24}, {1000, 1, 512}})
}

func benchSgemm(b *testing.B, workers int, shapes [][3]int) {
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			a, bb, c := randTensor(r, m*k).F, randTensor(r, k*n).F, make([]float32, m*n)
			cpu0 := cpuTime()
			for b.Loop() {
				sgemmWorkers(workers, false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/(float64(cpuTime()-cpu0)/1e9)/1e9, "GFLOP/cpu-s")
		})
	}
}

// TestIm2colRows: any block of the im2col matrix made by im2colRows, with
// and without the deinterleaved rows of a stride-2 window, and by
// im2colMasked from the phase planes where the window allows them,
// equals the same block of a reference built tap by tap with bounds
// tests, on random windows (kernels 1-5, strides 1-3, dilations 1-2,
// asymmetric pads, odd and even sizes, outputs narrower than a run).
func TestIm2colRows(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for it := 0; it < 400; it++ {
		g := window{h: 1 + r.Intn(12), w: 1 + r.Intn(12), kh: 1 + r.Intn(5), kw: 1 + r.Intn(5), sh: 1 + r.Intn(3), sw: 1 + r.Intn(3),
			dh: 1 + r.Intn(2), dw: 1 + r.Intn(2), pt: r.Intn(3), pl: r.Intn(3), pb: r.Intn(3), pr: r.Intn(3)}
		switch it % 3 {
		case 0:
			g.sw = 2
		case 1: // stride 1, as wide as the input
			g.sh, g.sw = 1, 1
			g.pl = r.Intn((g.kw-1)*g.dw + 1)
			g.pr = (g.kw-1)*g.dw - g.pl
		}
		g.oh = (g.h+g.pt+g.pb-(g.kh-1)*g.dh-1)/g.sh + 1
		g.ow = (g.w+g.pl+g.pr-(g.kw-1)*g.dw-1)/g.sw + 1
		if g.oh <= 0 || g.ow <= 0 || g.h+g.pt+g.pb < (g.kh-1)*g.dh+1 || g.w+g.pl+g.pr < (g.kw-1)*g.dw+1 {
			continue
		}
		cg := 1 + r.Intn(3)
		x := randTensor(r, cg*g.h*g.w).F
		khw, ohw := g.kh*g.kw, g.oh*g.ow
		want := make([]float32, cg*khw*ohw)
		for l := range cg * khw {
			ci, i, j := l/khw, l%khw/g.kw, l%g.kw
			for q := range ohw {
				ih, iw := q/g.ow*g.sh-g.pt+i*g.dh, q%g.ow*g.sw-g.pl+j*g.dw
				if ih >= 0 && ih < g.h && iw >= 0 && iw < g.w {
					want[l*ohw+q] = x[(ci*g.h+ih)*g.w+iw]
				}
			}
		}
		var xe []float32
		if g.sw == 2 {
			xe = make([]float32, cg*g.h*2*((g.w+1)/2))
			deinterleave(&g, x, cg, xe)
		}
		full := make([]float32, len(want))
		im2col(&g, x, full, cg, 2)
		if !slices.Equal(full, want) {
			t.Fatalf("%+v: im2col differs from the reference", g)
		}
		for _, e := range [][]float32{nil, xe} {
			l0 := r.Intn(cg * khw)
			kc := 1 + r.Intn(cg*khw-l0)
			j0 := r.Intn(ohw)
			n := 1 + r.Intn(ohw-j0)
			got := make([]float32, kc*n)
			for i := range got {
				got[i] = float32(math.NaN()) // every value must be written
			}
			im2colRows(&g, x, e, got, l0, kc, j0, n)
			for l := range kc {
				for q := range n {
					if w := want[(l0+l)*ohw+j0+q]; got[l*n+q] != w {
						t.Fatalf("%+v (deinterleaved %v): block rows %d+%d columns %d+%d: (%d,%d) = %v, want %v", g, e != nil, l0, kc, j0, n, l, q, got[l*n+q], w)
					}
				}
			}
			// each panel width, by masked copies of the phase planes where
			// the window allows them
			if !g.phasePlanes() {
				continue
			}
			g.tapTables(1)
			src := make([]float32, cg*g.sh*g.sw*g.ph*g.pw)
			g.phaseSplit(src, x, cg, 1, 0, 2)
			for _, nr := range []int{16, 32} {
				panels := (n + nr - 1) / nr
				got := make([]float32, panels*kc*nr)
				for i := range got {
					got[i] = float32(math.NaN())
				}
				im2colMasked(&g, src, 1, got, l0, kc, j0, n, nr)
				for l := range kc {
					for q := range panels * nr {
						w, v := float32(0), got[(q/nr*kc+l)*nr+q%nr]
						if q < n {
							w = want[(l0+l)*ohw+j0+q]
						}
						if v != w {
							t.Fatalf("%+v: im2colMasked nr %d, rows %d+%d columns %d+%d: (%d,%d) = %v, want %v", g, nr, l0, kc, j0, n, l, q, v, w)
						}
					}
				}
			}
		}
	}
}
