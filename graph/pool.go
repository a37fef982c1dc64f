package graph

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/graftml/graft/graph/internal/cores"
	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
)

// Pooling: MaxPool and AveragePool over 1-D and 2-D inputs (window
// geometry in conv.go), GlobalAveragePool and GlobalMaxPool over any
// number of spatial axes.

var poolOps = map[string]opDef{
	"MaxPool":           {build: buildPool, grad: true, optionalOutputs: []int{1}},
	"AveragePool":       {build: buildPool, grad: true},
	"GlobalAveragePool": {build: buildGlobalPool, grad: true},
	"GlobalMaxPool":     {build: buildGlobalPool, grad: true},
}

func buildPool(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	op := c.n.OpType
	if len(x.shape) != 3 && len(x.shape) != 4 {
		return c.errorf("graft supports 1-D and 2-D %s only (input of rank 3 or 4); input %q has shape %v", op, x.name, x.shape)
	}
	kernel, err := c.attrInts("kernel_shape", nil)
	if err != nil {
		return err
	}
	if kernel == nil {
		return c.errorf("attribute \"kernel_shape\" is required")
	}
	isMax := op == "MaxPool"
	ceil := false
	if c.opset >= 10 {
		cm, err := c.attrInt("ceil_mode", 0)
		if err != nil {
			return err
		}
		ceil = cm != 0
	} else if c.has("ceil_mode") {
		return c.errorf("attribute \"ceil_mode\" is not part of %s before opset 10 (this model imports opset %d)", op, c.opset)
	}
	g, err := c.readWindow(x.shape, kernel, windowOpts{pool: true, ceil: ceil, dilations: isMax && c.opset >= 10 || c.opset >= 19})
	if err != nil {
		return err
	}
	includePad := false
	if !isMax {
		cip, err := c.attrInt("count_include_pad", 0)
		if err != nil {
			return err
		}
		includePad = cip != 0
	}
	// storage_order only changes the Indices output, which graft does not
	// produce (MaxPool's opDef lists it in optionalOutputs).
	k := &poolKernel{g: g, planes: x.shape[0] * x.shape[1], max: isMax, includePad: includePad,
		inShape: x.shape, outShape: g.outShape(len(x.shape), x.shape[0], x.shape[1])}
	return c.apply(0, k, k.outShape, onnx.Float32, 0)
}

// poolKernel is MaxPool or AveragePool over NCHW planes.
type poolKernel struct {
	g                 window
	planes            int // N*C
	max               bool
	includePad        bool // AveragePool count_include_pad
	inShape, outShape []int
}

// taps returns the kernel taps [t0, t1) of a window starting at input
// index start that read inside an axis of length in.
func poolTaps(start, k, d, in int) (t0, t1 int) {
	if start < 0 {
		t0 = (-start + d - 1) / d
	}
	t1 = k
	if last := in - 1 - start; last < 0 {
		t1 = 0
	} else {
		t1 = min(k, last/d+1)
	}
	return t0, max(t0, t1)
}

// divisor is AveragePool's divisor for the window at (oh, ow): the taps
// inside the input, or with count_include_pad the taps inside the input
// and its pads (as ONNX Runtime counts them).
func (k *poolKernel) divisor(oh, ow, i0, i1, j0, j1 int) float32 {
	g := &k.g
	if !k.includePad {
		return float32((i1 - i0) * (j1 - j0))
	}
	hs, ws := oh*g.sh-g.pt, ow*g.sw-g.pl
	he := min(hs+(g.kh-1)*g.dh+1, g.h+g.pb)
	we := min(ws+(g.kw-1)*g.dw+1, g.w+g.pr)
	// taps (every dh-th, dw-th position) from the window's start
	return float32(((he - hs + g.dh - 1) / g.dh) * ((we - ws + g.dw - 1) / g.dw))
}

// argmax returns the input index (within its plane) of the first maximum
// in the window at (oh, ow), or -1 when the window holds no input.
func (k *poolKernel) argmax(xp []float32, oh, ow int) int {
	g := &k.g
	hs, ws := oh*g.sh-g.pt, ow*g.sw-g.pl
	i0, i1 := poolTaps(hs, g.kh, g.dh, g.h)
	j0, j1 := poolTaps(ws, g.kw, g.dw, g.w)
	best, arg := float32(-math.MaxFloat32), -1
	for i := i0; i < i1; i++ {
		row := (hs + i*g.dh) * g.w
		for j := j0; j < j1; j++ {
			idx := row + ws + j*g.dw
			if v := xp[idx]; v > best || arg < 0 && v == best {
				best, arg = v, idx
			}
		}
	}
	return arg
}

func (k *poolKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	out := onnx.NewFloat(k.outShape, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (k *poolKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	x := in[0]
	g := &k.g
	if x.DType != onnx.Float32 || len(x.F) != k.planes*g.h*g.w {
		return fmt.Errorf("input must be float32 of shape %v", k.inShape)
	}
	if k.max {
		k.maxForward(x.F, out.F)
	} else {
		k.avgForward(x.F, out.F)
	}
	return nil
}

// poolBufs recycles the pools' scratch planes between calls.
var poolBufs sync.Pool

func getPoolBuf(n int) *[]float32 {
	if p, ok := poolBufs.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float32, n)
	return &b
}

// eachPlane calls body(buf, pl) for every plane pl of an input of nx
// values, in parallel tasks of several planes when planes are small (a
// task per plane would cost more than it computes). Each task has a
// scratch buffer of n values, readied by prep before its first plane.
func (k *poolKernel) eachPlane(nx, n int, prep func(buf []float32), body func(buf []float32, pl int)) {
	workers := 0
	if nx < vec.ParMin {
		workers = 1
	}
	// about vec.Chunk input values per task, but no fewer than about four
	// tasks per worker, to balance them
	group := max(1, min(vec.Chunk/max(k.g.h*k.g.w, 1), k.planes/(4*cores.N())))
	forEachPar(workers, (k.planes+group-1)/group, func(task int) {
		bp := getPoolBuf(n)
		defer poolBufs.Put(bp)
		prep(*bp)
		for pl := task * group; pl < min(k.planes, (task+1)*group); pl++ {
			body(*bp, pl)
		}
	})
}

// maxForward is MaxPool, separably: max is exact, associative and
// commutative (up to which NaN payload wins), so a window's maximum is
// the maximum over its columns of the maxima over its rows. Per plane,
// each output row first gets the element-wise maximum of the input rows
// its window covers (vec.Max over whole rows), written into a scratch
// plane t whose rows carry the left and right padding as -Inf columns;
// then h[i] = max over the kernel's column taps of t[i+j·dw] for all of t
// at once, which reads no row beyond its padding at the columns that
// matter; the output is every sw-th column of h. The -MaxFloat32 floor of
// the reference (a window of -Inf values gives -MaxFloat32, as in ONNX
// Runtime) is applied on the way out. No window position needs a bounds
// test; dilation only changes which rows and columns are taps.
func (k *poolKernel) maxForward(x, y []float32) {
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	wp := max(g.pl+g.w, (g.ow-1)*g.sw+(g.kw-1)*g.dw+1) // padded row width
	tn := g.oh * wp
	hn := tn - (g.kw-1)*g.dw // h's length: the last window start is inside
	inf := float32(math.Inf(-1))
	prep := func(buf []float32) {
		t := buf[:tn]
		for r := 0; r < g.oh; r++ {
			row := t[r*wp:][:wp]
			fill(row[:g.pl], inf)
			fill(row[g.pl+g.w:], inf)
		}
	}
	k.eachPlane(len(x), 2*tn, prep, func(buf []float32, pl int) {
		t, h := buf[:tn], buf[tn:]
		if g.kw == 1 {
			h = t
		}
		xp, yp := x[pl*hw:][:hw], y[pl*ohw:][:ohw]
		for oh := 0; oh < g.oh; oh++ {
			row := t[oh*wp+g.pl:][:g.w]
			hs := oh*g.sh - g.pt
			i0, i1 := poolTaps(hs, g.kh, g.dh, g.h)
			in := func(i int) []float32 { return xp[(hs+i*g.dh)*g.w:][:g.w] }
			switch i1 - i0 {
			case 0: // dilated taps all in the padding
				fill(row, inf)
			case 1:
				copy(row, in(i0))
			default:
				vec.Max(row, in(i0), in(i0+1))
				for i := i0 + 2; i < i1; i++ {
					vec.Max(row, row, in(i))
				}
			}
		}
		if g.kw > 1 {
			vec.Max(h[:hn], t[:hn], t[g.dw:][:hn])
			for j := 2; j < g.kw; j++ {
				vec.Max(h[:hn], h[:hn], t[j*g.dw:][:hn])
			}
		}
		for oh := 0; oh < g.oh; oh++ {
			vec.StridedMax(yp[oh*g.ow:][:g.ow], h[oh*wp:], g.sw, -math.MaxFloat32)
		}
	})
}

// avgForward is AveragePool with the reference's rounding: each window's
// sum adds its taps inside the input row by row, left to right, from 0,
// then divides by the divisor. It adds one tap to every window of a plane
// at once. The plane is first copied into a scratch t, padded with zeros
// and split into its sw column phases: t[p][r][m] is padded input row r,
// column m·sw+p. Tap (i, j) of output (oh, ow) is then t[p][oh·sh+i·dh]
// [ow+q] with p, q = j·dw mod sw, j·dw div sw, so that with the sums kept
// in acc[oh·sh·lp+ow] (lp the length of a phase row) a tap is one vec.Add
// over acc from a fixed offset of t. acc's columns ow..lp and, with a
// vertical stride, its rows between output rows hold sums nobody reads:
// cheaper than a call per output row. A padding tap adds +0, which
// changes no sum (a sum that starts from +0 is never -0).
func (k *poolKernel) avgForward(x, y []float32) {
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	lp := max(((g.ow-1)*g.sw+(g.kw-1)*g.dw)/g.sw+1, (g.pl+g.w+g.sw-1)/g.sw) // phase row
	hp := max(g.pt+g.h, (g.oh-1)*g.sh+(g.kh-1)*g.dh+1)                      // padded rows
	pn := hp * lp                                                           // a phase
	tn := g.sw * pn
	an := ((g.oh-1)*g.sh)*lp + g.ow // acc, up to the last output
	aligned := g.w == g.sw*lp       // no left padding, and no room for right padding
	// columns [m0[p], m1[p]) of phase p are input columns m·sw+p-pl
	m0, m1 := make([]int, g.sw), make([]int, g.sw)
	for p := range m0 {
		m0[p] = (g.pl - p + g.sw - 1) / g.sw
		m1[p] = max(m0[p], (g.pl+g.w-p+g.sw-1)/g.sw)
	}
	dp := getPoolBuf(ohw)
	defer poolBufs.Put(dp)
	div := *dp
	for oh := 0; oh < g.oh; oh++ {
		i0, i1 := poolTaps(oh*g.sh-g.pt, g.kh, g.dh, g.h)
		for ow := 0; ow < g.ow; ow++ {
			j0, j1 := poolTaps(ow*g.sw-g.pl, g.kw, g.dw, g.w)
			div[oh*g.ow+ow] = k.divisor(oh, ow, i0, i1, j0, j1)
		}
	}
	inf := float32(math.Inf(-1))
	prep := func(buf []float32) { clear(buf[:tn]) } // planes write only inside the padding
	k.eachPlane(len(x), tn+an, prep, func(buf []float32, pl int) {
		t, acc := buf[:tn], buf[tn:][:an]
		xp, yp := x[pl*hw:][:hw], y[pl*ohw:][:ohw]
		// max with -Inf is an exact copy, NaN payloads included
		for p := 0; p < g.sw; p++ {
			if aligned {
				vec.StridedMax(t[p*pn+g.pt*lp:][:g.h*lp], xp[p:], g.sw, inf)
				continue
			}
			for r := 0; r < g.h && m0[p] < m1[p]; r++ {
				vec.StridedMax(t[p*pn+(g.pt+r)*lp+m0[p]:][:m1[p]-m0[p]], xp[r*g.w+m0[p]*g.sw+p-g.pl:][:g.w-(m0[p]*g.sw+p-g.pl)], g.sw, inf)
			}
		}
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				c := j * g.dw
				src := t[c%g.sw*pn+i*g.dh*lp+c/g.sw:][:an]
				if i == 0 && j == 0 {
					vec.AddScalar(acc, src, 0) // 0 + x: -0 becomes +0
				} else {
					vec.Add(acc, acc, src)
				}
			}
		}
		for oh := 0; oh < g.oh; oh++ {
			vec.Div(yp[oh*g.ow:][:g.ow], acc[oh*g.sh*lp:][:g.ow], div[oh*g.ow:][:g.ow])
		}
	})
}

func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// backward: MaxPool sends each output's gradient to the first maximum of
// its window; AveragePool spreads it evenly over the window's inputs.
func (k *poolKernel) backward(_ int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	dx := onnx.NewFloat(k.inShape, nil)
	forEachPar(0, k.planes, func(pl int) {
		xp, dxp, dyp := x.F[pl*hw:][:hw], dx.F[pl*hw:][:hw], dy.F[pl*ohw:][:ohw]
		for oh := 0; oh < g.oh; oh++ {
			hs := oh*g.sh - g.pt
			i0, i1 := poolTaps(hs, g.kh, g.dh, g.h)
			for ow := 0; ow < g.ow; ow++ {
				d := dyp[oh*g.ow+ow]
				if k.max {
					if a := k.argmax(xp, oh, ow); a >= 0 {
						dxp[a] += d
					}
					continue
				}
				ws := ow*g.sw - g.pl
				j0, j1 := poolTaps(ws, g.kw, g.dw, g.w)
				d /= k.divisor(oh, ow, i0, i1, j0, j1)
				for i := i0; i < i1; i++ {
					row := dxp[(hs+i*g.dh)*g.w:][:g.w]
					for j := j0; j < j1; j++ {
						row[ws+j*g.dw] += d
					}
				}
			}
		}
	})
	return dx, nil
}

func buildGlobalPool(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if len(x.shape) < 3 {
		return c.errorf("input %q has shape %v; %s needs (N, C, spatial...)", x.name, x.shape, c.n.OpType)
	}
	out := slices.Clone(x.shape)
	for i := 2; i < len(out); i++ {
		out[i] = 1
	}
	k := &globalPoolKernel{max: c.n.OpType == "GlobalMaxPool", inShape: x.shape, outShape: out,
		planes: x.shape[0] * x.shape[1], size: onnx.NumElems(x.shape[2:])}
	return c.apply(0, k, out, onnx.Float32, 0)
}

// globalPoolKernel reduces every spatial plane to its mean or maximum.
type globalPoolKernel struct {
	max               bool
	planes, size      int
	inShape, outShape []int
}

func (k *globalPoolKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	out := onnx.NewFloat(k.outShape, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (k *globalPoolKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	x := in[0]
	if x.DType != onnx.Float32 || len(x.F) != k.planes*k.size {
		return fmt.Errorf("input must be float32 of shape %v", k.inShape)
	}
	workers := 0
	if len(x.F) < vec.ParMin {
		workers = 1
	}
	per := max(1, planeTask/k.size) // small planes: several per task
	forEachPar(workers, (k.planes+per-1)/per, func(t int) {
		for pl := t * per; pl < min(k.planes, (t+1)*per); pl++ {
			xp := x.F[pl*k.size:][:k.size]
			if k.max {
				out.F[pl] = planeMax(xp)
				continue
			}
			out.F[pl] = float32(planeSum(xp) / float64(k.size))
		}
	})
	return nil
}

// planeSum adds up a plane in float64, in four interleaved partial sums
// (independent chains of additions, so the loop is not bound by the
// latency of one), combined in a fixed order.
func planeSum(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// planeMax is the largest value of a non-empty plane, by a plain loop of
// comparisons (a later value wins only when greater).
func planeMax(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

func (k *globalPoolKernel) backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	return freshGrad(k, i, in, out, dy)
}

func (k *globalPoolKernel) backwardInto(_ int, in []*onnx.Tensor, _, dy, dx *onnx.Tensor) error {
	x := in[0]
	for pl, d := range dy.F {
		xp, dxp := x.F[pl*k.size:][:k.size], dx.F[pl*k.size:][:k.size]
		if k.max {
			arg := 0
			for i, v := range xp {
				if v > xp[arg] {
					arg = i
				}
			}
			dxp[arg] += d
			continue
		}
		d /= float32(k.size)
		for i := range dxp {
			dxp[i] = d
		}
	}
	return nil
}
