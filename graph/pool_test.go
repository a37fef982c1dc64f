package graph

import (
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// distinctTensor returns a tensor whose elements are a random permutation
// of evenly spaced values (spacing 0.05), so that no window of MaxPool has
// two maxima within a finite-difference step of each other.
func distinctTensor(r *rand.Rand, shape ...int) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	for i, p := range r.Perm(len(t.F)) {
		t.F[i] = 0.05*float32(p) - 0.025*float32(len(t.F))
	}
	return t
}

// poolCase is one MaxPool or AveragePool configuration of the tests.
type poolCase struct {
	name               string
	max                bool
	n, c, h, w, kh, kw int
	strides, dil, pads []int
	autoPad            string
	ceil, includePad   bool
	oneD               bool
}

var poolCases = []poolCase{
	{name: "max 2x2", max: true, n: 1, c: 2, h: 4, w: 5, kh: 2, kw: 2},
	{name: "max 3x3 s2 pads", max: true, n: 2, c: 1, h: 7, w: 6, kh: 3, kw: 3, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}},
	{name: "max ceil", max: true, n: 1, c: 2, h: 6, w: 6, kh: 3, kw: 3, strides: []int{2, 2}, ceil: true},
	{name: "max ceil pads, last window dropped", max: true, n: 1, c: 2, h: 5, w: 5, kh: 2, kw: 2, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, ceil: true},
	{name: "max ceil asymmetric pads", max: true, n: 1, c: 1, h: 7, w: 8, kh: 3, kw: 2, strides: []int{2, 3}, pads: []int{1, 0, 0, 1}, ceil: true},
	{name: "max dilated", max: true, n: 1, c: 2, h: 6, w: 7, kh: 2, kw: 3, dil: []int{2, 2}, pads: []int{1, 1, 1, 0}, ceil: true, strides: []int{2, 1}},
	{name: "max same_upper", max: true, n: 1, c: 1, h: 5, w: 6, kh: 3, kw: 3, strides: []int{2, 2}, autoPad: "SAME_UPPER"},
	{name: "max same_lower", max: true, n: 1, c: 1, h: 5, w: 6, kh: 2, kw: 2, autoPad: "SAME_LOWER"},
	{name: "max 1-D", max: true, n: 2, c: 2, h: 1, w: 9, kh: 1, kw: 3, strides: []int{1, 2}, pads: []int{0, 1, 0, 1}, ceil: true, oneD: true},
	{name: "avg 2x2", n: 1, c: 2, h: 4, w: 5, kh: 2, kw: 2},
	{name: "avg pads", n: 1, c: 2, h: 5, w: 5, kh: 3, kw: 3, pads: []int{1, 2, 2, 1}},
	{name: "avg pads count_include_pad", n: 1, c: 2, h: 5, w: 5, kh: 3, kw: 3, pads: []int{1, 2, 2, 1}, includePad: true},
	{name: "avg ceil", n: 1, c: 1, h: 6, w: 7, kh: 3, kw: 3, strides: []int{2, 2}, ceil: true},
	{name: "avg ceil pads", n: 1, c: 2, h: 6, w: 6, kh: 3, kw: 3, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, ceil: true},
	{name: "avg ceil pads count_include_pad", n: 1, c: 2, h: 6, w: 6, kh: 3, kw: 3, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, ceil: true, includePad: true},
	{name: "avg ceil pads dropped count_include_pad", n: 1, c: 1, h: 5, w: 5, kh: 2, kw: 2, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, ceil: true, includePad: true},
	{name: "avg same_lower count_include_pad", n: 1, c: 1, h: 5, w: 6, kh: 3, kw: 2, strides: []int{2, 1}, autoPad: "SAME_LOWER", includePad: true},
	{name: "avg same_upper", n: 1, c: 1, h: 5, w: 6, kh: 3, kw: 2, strides: []int{2, 1}, autoPad: "SAME_UPPER"},
	{name: "avg 1-D count_include_pad", n: 1, c: 3, h: 1, w: 8, kh: 1, kw: 3, strides: []int{1, 2}, pads: []int{0, 2, 0, 1}, includePad: true, oneD: true},
}

func (pc poolCase) setup(t testing.TB, r *rand.Rand) (*poolKernel, *onnx.Tensor) {
	g := testWindow(t, pc.h, pc.w, pc.kh, pc.kw, pc.strides, pc.dil, pc.pads, pc.autoPad, pc.ceil)
	x := distinctTensor(r, pc.n, pc.c, pc.h, pc.w)
	rank := 4
	if pc.oneD {
		x.Shape, rank = []int{pc.n, pc.c, pc.w}, 3
	}
	k := &poolKernel{g: g, planes: pc.n * pc.c, max: pc.max, includePad: pc.includePad,
		inShape: x.Shape, outShape: g.outShape(rank, pc.n, pc.c)}
	return k, x
}

func TestPoolGradients(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	for _, pc := range poolCases {
		k, x := pc.setup(t, r)
		checkGrad(t, pc.name, k, []*onnx.Tensor{x}, []int{0}, 2e-3)
	}
	for _, op := range []string{"GlobalAveragePool", "GlobalMaxPool"} {
		for _, shape := range [][]int{{2, 3, 4, 5}, {1, 2, 3, 2, 2}, {2, 2, 7}} {
			x := distinctTensor(r, shape...)
			out := append([]int(nil), shape...)
			for i := 2; i < len(out); i++ {
				out[i] = 1
			}
			k := &globalPoolKernel{max: op == "GlobalMaxPool", planes: shape[0] * shape[1], size: onnx.NumElems(shape[2:]), inShape: shape, outShape: out}
			checkGrad(t, fmt.Sprint(op, shape), k, []*onnx.Tensor{x}, []int{0}, 2e-3)
		}
	}
}

// TestMaxPoolTies checks that the gradient of a window with equal maxima
// goes to the first of them (in row-major order), once.
func TestMaxPoolTies(t *testing.T) {
	g := testWindow(t, 2, 4, 2, 2, []int{1, 2}, nil, nil, "NOTSET", false)
	k := &poolKernel{g: g, planes: 1, max: true, inShape: []int{1, 1, 2, 4}, outShape: []int{1, 1, 1, 2}}
	x := onnx.NewFloat([]int{1, 1, 2, 4}, []float32{
		1, 3, 3, 0,
		3, 2, 1, 3,
	})
	y, _ := k.forward([]*onnx.Tensor{x})
	if y.F[0] != 3 || y.F[1] != 3 {
		t.Fatalf("max pool of ties = %v", y.F)
	}
	dx, _ := k.backward(0, []*onnx.Tensor{x}, y, onnx.NewFloat([]int{1, 1, 1, 2}, []float32{10, 20}))
	want := []float32{0, 10, 20, 0, 0, 0, 0, 0}
	if fmt.Sprint(dx.F) != fmt.Sprint(want) {
		t.Errorf("gradient %v, want %v", dx.F, want)
	}
}

// naivePool is the definition of the pools (as ONNX Runtime computes them).
func naivePool(k *poolKernel, x []float32) []float64 {
	g := &k.g
	out := make([]float64, k.planes*g.oh*g.ow)
	for p := 0; p < k.planes; p++ {
		for oh := 0; oh < g.oh; oh++ {
			for ow := 0; ow < g.ow; ow++ {
				hs, ws := oh*g.sh-g.pt, ow*g.sw-g.pl
				m, s, cnt := -3.4e38, 0.0, 0
				for i := 0; i < g.kh; i++ {
					for j := 0; j < g.kw; j++ {
						ih, iw := hs+i*g.dh, ws+j*g.dw
						if ih < 0 || ih >= g.h || iw < 0 || iw >= g.w {
							continue
						}
						v := float64(x[(p*g.h+ih)*g.w+iw])
						m = max(m, v)
						s += v
						cnt++
					}
				}
				if k.includePad {
					cnt = (min(hs+g.kh, g.h+g.pb) - hs) * (min(ws+g.kw, g.w+g.pr) - ws)
				}
				o := &out[(p*g.oh+oh)*g.ow+ow]
				if *o = s / float64(cnt); k.max {
					*o = m
				}
			}
		}
	}
	return out
}

func TestPoolForward(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	for _, pc := range poolCases {
		k, x := pc.setup(t, r)
		got, err := k.forward([]*onnx.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		if err := allClose(got, onnx.NewFloat(k.outShape, poolF32(naivePool(k, x.F))), 1e-5, 1e-6); err != nil {
			t.Errorf("%s: %v", pc.name, err)
		}
	}
}

// refPool is MaxPool and AveragePool as graft computed them before the
// separable kernels: per output, the taps inside the input by poolTaps;
// MaxPool by the built-in max from -MaxFloat32 (so a window of -Inf gives
// -MaxFloat32, as in ONNX Runtime, and a NaN in the window gives NaN),
// AveragePool by a float32 sum from 0, row by row and left to right, over
// the divisor.
func refPool(k *poolKernel, x []float32) []float32 {
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	y := make([]float32, k.planes*ohw)
	for pl := 0; pl < k.planes; pl++ {
		xp, yp := x[pl*hw:][:hw], y[pl*ohw:][:ohw]
		for oh := 0; oh < g.oh; oh++ {
			hs := oh*g.sh - g.pt
			i0, i1 := poolTaps(hs, g.kh, g.dh, g.h)
			for ow := 0; ow < g.ow; ow++ {
				ws := ow*g.sw - g.pl
				j0, j1 := poolTaps(ws, g.kw, g.dw, g.w)
				m, s := float32(-math.MaxFloat32), float32(0)
				for i := i0; i < i1; i++ {
					row := xp[(hs+i*g.dh)*g.w:][:g.w]
					for j := j0; j < j1; j++ {
						m = max(m, row[ws+j*g.dw])
						s += row[ws+j*g.dw]
					}
				}
				if yp[oh*g.ow+ow] = m; !k.max {
					yp[oh*g.ow+ow] = s / k.divisor(oh, ow, i0, i1, j0, j1)
				}
			}
		}
	}
	return y
}

// sameBits reports whether a and b hold the same float32 bits, all NaNs
// counting as one value (which NaN payload comes out of a max depends on
// the order of comparisons).
func sameBits(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// TestPoolExact compares the separable MaxPool and the row-wise
// AveragePool (with and without count_include_pad) with the per-window
// reference on random geometries (kernels 1..4, strides 1..3, asymmetric
// pads up to 2, dilations 1 and 2, ceil mode, odd and even and tiny
// planes, 1-D and 2-D, one and many planes) and inputs of magnitudes
// 1e-3..1e3 (so that the order of additions shows) among -Inf, +Inf, NaN
// and zeros of both signs; every output must have the reference's bits
// (any NaN for NaN). It runs on the vec implementation in use (the
// assembly where the CPU has it; GRAFT_CPU=generic for the pure Go, which
// vec's tests hold to the same bits).
func TestPoolExact(t *testing.T) {
	r := rand.New(rand.NewSource(26))
	inf, nan, negz := float32(math.Inf(1)), float32(math.NaN()), float32(math.Copysign(0, -1))
	specials := []float32{-inf, -inf, -inf, nan, 0, negz, inf, -math.MaxFloat32}
	sizes := []int{1, 2, 3, 4, 5, 7, 8, 12, 17, 33}
	type geom struct {
		h, w, kh, kw, sh, sw, dh, dw int
		pads                         [4]int // top, left, bottom, right
		ceil, oneD                   bool
	}
	fixed := []geom{
		{h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1},
		{h: 2, w: 3, kh: 2, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, pads: [4]int{1, 1, 1, 1}},
		{h: 12, w: 12, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pads: [4]int{1, 1, 1, 1}}, // resnet's
		{h: 13, w: 13, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, ceil: true},               // squeezenet's
		// windows whose dilated taps all fall in the padding (rows, then columns)
		{h: 1, w: 5, kh: 2, kw: 2, sh: 1, sw: 1, dh: 2, dw: 1, pads: [4]int{1, 0, 1, 0}},
		{h: 4, w: 1, kh: 1, kw: 2, sh: 1, sw: 1, dh: 1, dw: 2, pads: [4]int{0, 1, 0, 1}},
	}
	ran := 0
	for trial := 0; ran < 1000; trial++ {
		var gm geom
		if trial < len(fixed) {
			gm = fixed[trial]
		} else {
			gm = geom{h: sizes[r.Intn(len(sizes))], w: sizes[r.Intn(len(sizes))], kh: 1 + r.Intn(4), kw: 1 + r.Intn(4),
				sh: 1 + r.Intn(3), sw: 1 + r.Intn(3), dh: 1, dw: 1,
				pads: [4]int{r.Intn(3), r.Intn(3), r.Intn(3), r.Intn(3)}, ceil: r.Intn(2) == 0, oneD: trial%7 == 0}
			if r.Intn(4) == 0 {
				gm.dh, gm.dw = 1+r.Intn(2), 1+r.Intn(2)
			}
			if gm.oneD {
				gm.h, gm.kh, gm.sh, gm.dh, gm.pads[0], gm.pads[2] = 1, 1, 1, 1, 0, 0
			}
		}
		h, w, pads := gm.h, gm.w, gm.pads
		if pads[0] >= gm.kh || pads[2] >= gm.kh || pads[1] >= gm.kw || pads[3] >= gm.kw {
			continue // the op rejects these
		}
		g := window{h: h, w: w, kh: gm.kh, kw: gm.kw, sh: gm.sh, sw: gm.sw, dh: gm.dh, dw: gm.dw}
		var err error
		if g.oh, g.pt, g.pb, err = windowAxis(h, g.kh, g.sh, g.dh, pads[0], pads[2], "NOTSET", gm.ceil); err != nil {
			if trial < len(fixed) {
				t.Fatalf("fixed geometry %+v: %v", gm, err)
			}
			continue
		}
		if g.ow, g.pl, g.pr, err = windowAxis(w, g.kw, g.sw, g.dw, pads[1], pads[3], "NOTSET", gm.ceil); err != nil {
			if trial < len(fixed) {
				t.Fatalf("fixed geometry %+v: %v", gm, err)
			}
			continue
		}
		oneD := gm.oneD
		n, c := 1+r.Intn(2), 1+r.Intn(3)
		if trial%25 == 0 {
			n, c = 4, 1+vec.ParMin/(h*w) // enough values to run on several goroutines
		}
		x := onnx.NewFloat([]int{n, c, h, w}, nil)
		density := r.Float64() * r.Float64() // share of special values
		for i := range x.F {
			if r.Float64() < density {
				x.F[i] = specials[r.Intn(len(specials))]
			} else {
				x.F[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.Intn(7)-3)))
			}
		}
		rank := 4
		if oneD {
			x.Shape, rank = []int{n, c, w}, 3
		}
		for _, kind := range []string{"MaxPool", "AveragePool", "AveragePool count_include_pad"} {
			k := &poolKernel{g: g, planes: n * c, max: kind == "MaxPool", includePad: strings.HasSuffix(kind, "pad"),
				inShape: x.Shape, outShape: g.outShape(rank, n, c)}
			want := refPool(k, x.F)
			got, err := k.forward([]*onnx.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if !sameBits(got.F[i], want[i]) {
					t.Fatalf("%s, window %+v, input %v: output %d = %g (%#x), reference %g (%#x)", kind, g, x.Shape, i,
						got.F[i], math.Float32bits(got.F[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
		ran++
	}
}

func poolF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func TestLRNGradients(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	for _, c := range []struct {
		shape             []int
		size              int
		alpha, beta, bias float32
	}{
		{[]int{2, 5, 3, 2}, 3, 0.3, 0.75, 1},
		{[]int{1, 6, 2, 2}, 4, 0.5, 0.6, 2},
		{[]int{1, 4, 3}, 5, 1e-1, 0.5, 1.5},
		{[]int{1, 3, 2, 2}, 1, 1, 1, 1},
	} {
		x := randTensor(r, c.shape...)
		checkGrad(t, fmt.Sprintf("LRN %v size %d", c.shape, c.size), newLRN(c.shape, c.size, c.alpha, c.beta, c.bias), []*onnx.Tensor{x}, []int{0}, 2e-3)
	}
}

// ---- comparison with ONNX Runtime on single-node models

// windowModel writes a one-node model of op (attributes: int, float32,
// string, []int) with graph input "x" and the other inputs as
// initializers, and returns it and its path.
func windowModel(t *testing.T, op string, opset int, attrs map[string]any, x *onnx.Tensor, inits ...*onnx.Tensor) (*onnx.Model, string) {
	t.Helper()
	n := &onnx.NodeProto{OpType: op, Name: "n0", Input: []string{"x"}, Output: []string{"y"}}
	g := &onnx.GraphProto{Name: "g", Node: []*onnx.NodeProto{n}, Input: []*onnx.ValueInfoProto{testValueInfo("x", onnx.Float32, x.Shape)},
		Output: []*onnx.ValueInfoProto{testValueInfo("y", onnx.Float32, nil)}}
	for i, it := range inits {
		c := it.Clone()
		c.Name = fmt.Sprintf("w%d", i)
		n.Input = append(n.Input, c.Name)
		g.Initializer = append(g.Initializer, c.ToProto())
	}
	n.Attribute = testAttrs(t, attrs)
	mp := &onnx.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: int64(opset)}}}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := onnx.WriteFile(path, mp, true); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m, path
}

// windowAttrs returns the ONNX attributes of a 2-D (or, when oneD, 1-D)
// window configuration.
func windowAttrs(oneD bool, kh, kw int, strides, dil, pads []int, autoPad string) map[string]any {
	a := map[string]any{}
	pick := func(v []int) []int {
		if oneD {
			return []int{v[1]}
		}
		return v
	}
	a["kernel_shape"] = pick([]int{kh, kw})
	if strides != nil {
		a["strides"] = pick(strides)
	}
	if dil != nil {
		a["dilations"] = pick(dil)
	}
	if pads != nil {
		if oneD {
			a["pads"] = []int{pads[1], pads[3]}
		} else {
			a["pads"] = pads
		}
	}
	if autoPad != "" {
		a["auto_pad"] = autoPad
	}
	return a
}

// vsORT builds and runs the model with graft and with ONNX Runtime and
// compares output "y" at the conformance tolerances.
func vsORT(t *testing.T, ort *onnxtest.Runtime, name string, m *onnx.Model, path string, x *onnx.Tensor) {
	t.Helper()
	gm, err := Build(m, Options{Shapes: map[string][]int{"x": x.Shape}})
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	got, err := gm.Run(map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	ref, err := ort.Run(path, map[string]*onnx.Tensor{"x": x})
	if err != nil {
		t.Errorf("%s: ONNX Runtime: %v", name, err)
		return
	}
	if err := allClose(got["y"], ref["y"], 1e-4, 1e-5); err != nil {
		t.Errorf("%s: vs ONNX Runtime: %v", name, err)
	}
}

func TestConvPoolVsORT(t *testing.T) {
	ort := onnxtest.ORT(t)
	r := rand.New(rand.NewSource(24))
	for _, cc := range convCases {
		k, ins := cc.setup(t, r)
		_ = k
		a := windowAttrs(cc.oneD, cc.kh, cc.kw, cc.strides, cc.dil, cc.pads, cc.autoPad)
		a["group"] = cc.grp
		m, path := windowModel(t, "Conv", 13, a, ins[0], ins[1:]...)
		vsORT(t, ort, "Conv "+cc.name, m, path, ins[0])
	}
	for _, pc := range poolCases {
		_, x := pc.setup(t, r)
		a := windowAttrs(pc.oneD, pc.kh, pc.kw, pc.strides, pc.dil, pc.pads, pc.autoPad)
		if pc.ceil {
			a["ceil_mode"] = 1
		}
		op := "MaxPool"
		if !pc.max {
			op = "AveragePool"
			a["count_include_pad"] = map[bool]int{false: 0, true: 1}[pc.includePad]
		}
		m, path := windowModel(t, op, 12, a, x)
		vsORT(t, ort, op+" "+pc.name, m, path, x)
	}
	for _, op := range []string{"GlobalAveragePool", "GlobalMaxPool"} {
		for _, shape := range [][]int{{2, 3, 4, 5}, {1, 2, 3, 2, 2}, {2, 2, 7}} {
			x := randTensor(r, shape...)
			m, path := windowModel(t, op, 12, nil, x)
			vsORT(t, ort, fmt.Sprint(op, shape), m, path, x)
		}
	}
	for _, c := range []struct {
		size              int
		alpha, beta, bias float32
	}{{3, 0.3, 0.75, 1}, {5, 1e-4, 0.75, 1}, {9, 2, 1.5, 0.5}, {1, 0.5, 0.6, 2}} { // ONNX Runtime takes odd sizes only
		x := randTensor(r, 2, 7, 3, 4)
		m, path := windowModel(t, "LRN", 13, map[string]any{"size": c.size, "alpha": c.alpha, "beta": c.beta, "bias": c.bias}, x)
		vsORT(t, ort, fmt.Sprintf("LRN %+v", c), m, path, x)
	}
}

// TestWindowConverterErrors checks the op builders' messages for what graft
// or the spec rejects, and that MaxPool's Indices output may be left out.
func TestWindowConverterErrors(t *testing.T) {
	r := rand.New(rand.NewSource(25))
	x4 := randTensor(r, 1, 2, 5, 5)
	x5 := randTensor(r, 1, 2, 3, 3, 3)
	w4 := randTensor(r, 2, 2, 3, 3)
	cases := []struct {
		name  string
		op    string
		opset int
		attrs map[string]any
		x     *onnx.Tensor
		inits []*onnx.Tensor
		want  string
	}{
		{"3-D conv", "Conv", 13, nil, x5, []*onnx.Tensor{randTensor(r, 2, 2, 2, 2, 2)}, "1-D and 2-D convolutions only"},
		{"kernel_shape", "Conv", 13, map[string]any{"kernel_shape": []int{2, 2}}, x4, []*onnx.Tensor{w4}, "does not match weight shape"},
		{"group", "Conv", 13, map[string]any{"group": 2}, x4, []*onnx.Tensor{w4}, "group 2 does not fit"},
		{"bias", "Conv", 13, nil, x4, []*onnx.Tensor{w4, randTensor(r, 3)}, "want [2]"},
		{"auto_pad", "Conv", 13, map[string]any{"auto_pad": "SAME"}, x4, []*onnx.Tensor{w4}, `unknown auto_pad "SAME"`},
		{"kernel too large", "Conv", 13, nil, randTensor(r, 1, 2, 2, 2), []*onnx.Tensor{w4}, "larger than the padded input"},
		{"3-D pool", "MaxPool", 12, map[string]any{"kernel_shape": []int{2, 2, 2}}, x5, nil, "1-D and 2-D MaxPool only"},
		{"no kernel_shape", "AveragePool", 12, nil, x4, nil, `"kernel_shape" is required`},
		{"ceil_mode before 10", "MaxPool", 9, map[string]any{"kernel_shape": []int{2, 2}, "ceil_mode": 1}, x4, nil, "not part of MaxPool before opset 10"},
		{"pads >= kernel", "MaxPool", 12, map[string]any{"kernel_shape": []int{2, 2}, "pads": []int{2, 0, 0, 0}}, x4, nil, "must be smaller than kernel_shape"},
		{"avgpool dilations", "AveragePool", 12, map[string]any{"kernel_shape": []int{2, 2}, "dilations": []int{2, 2}}, x4, nil, `"dilations" is not part of AveragePool`},
		{"LRN size", "LRN", 13, nil, x4, nil, `"size" is required`},
	}
	for _, c := range cases {
		m, _ := windowModel(t, c.op, c.opset, c.attrs, c.x, c.inits...)
		_, err := Build(m, Options{Shapes: map[string][]int{"x": c.x.Shape}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// an Indices output that nothing reads is left unproduced
	m, _ := windowModel(t, "MaxPool", 12, map[string]any{"kernel_shape": []int{2, 2}, "storage_order": 1}, x4)
	m.Proto.Graph.Node[0].Output = append(m.Proto.Graph.Node[0].Output, "indices")
	gm, err := Build(m, Options{Shapes: map[string][]int{"x": x4.Shape}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := gm.Run(map[string]*onnx.Tensor{"x": x4}); err != nil || fmt.Sprint(got["y"].Shape) != "[1 2 4 4]" {
		t.Errorf("MaxPool with Indices: %v, %v", got, err)
	}
}

// TestPoolConformanceExtra runs the backend node cases of graft's pooling
// ops that TestConformance leaves out although graft computes what they
// check: the global pools (declared at opset 1, whose definition is that of
// opsets 7-17) and the value output of MaxPool with Indices (which graft
// does not produce).
func TestPoolConformanceExtra(t *testing.T) {
	root := filepath.Join(onnxtest.BackendTestData(t), "node")
	names := []string{
		"test_globalaveragepool", "test_globalaveragepool_precomputed",
		"test_globalmaxpool", "test_globalmaxpool_precomputed",
		"test_maxpool_with_argmax_2d_precomputed_pads", "test_maxpool_with_argmax_2d_precomputed_strides",
	}
	ran := 0
	for _, name := range names {
		dir := filepath.Join(root, name)
		m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"), onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range m.Proto.OpsetImport {
			if (o.Domain == "" || o.Domain == "ai.onnx") && o.Version < MinOpset {
				o.Version = MinOpset
			}
		}
		m.Proto.Graph.Output = m.Proto.Graph.Output[:1] // Y only
		c, err := onnxtest.LoadCase(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := runCase(m, c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		ran++
	}
	t.Logf("%d cases ran", ran)
}
