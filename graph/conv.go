package graph

import (
	"fmt"
	"slices"
	"sync"

	"github.com/graftml/graft/graph/internal/cores"
	"github.com/graftml/graft/graph/internal/dwconv"
	"github.com/graftml/graft/graph/internal/gemm"
	"github.com/graftml/graft/graph/internal/vec"
	"github.com/graftml/graft/onnx"
)

// Convolution (Conv) over 1-D and 2-D inputs, and the sliding-window
// geometry it shares with the pooling ops. A 1-D input is handled as a
// 2-D one of height 1.

var convOps = map[string]opDef{
	"Conv":          {build: buildConv, grad: true, weights: []int{1, 2}},
	"ConvTranspose": {build: buildConvTranspose, grad: true, weights: []int{1, 2}}, // convtranspose.go
	"LRN":           {build: buildLRN, grad: true, family: "norm"},                 // code in lrn.go
}

// window is the geometry of a 2-D sliding window over an h×w plane.
type window struct {
	h, w           int // input plane
	kh, kw         int // kernel
	sh, sw         int // strides
	dh, dw         int // dilations
	pt, pl, pb, pr int // pads: top, left, bottom, right
	oh, ow         int // output plane
	// The masked im2col (see phasePlanes): when tapBits is not nil, the
	// input is read as sh·sw phase planes of ph×pw (pw = ow; the input
	// itself when the stride is 1), tap t reads phase tapPhase[t] at
	// offset tapShift[t] from each output's flat index, and tapBits[t]
	// marks, as bits over maskReps output planes one after the other,
	// the outputs it reads inside the input (tapTables). phaseUsed marks
	// the phases some tap reads.
	tapBits            [][]uint32
	tapPhase, tapShift []int
	phaseUsed          []bool
	ph, pw             int
	maskReps           int
}

// phasePlanes sets up the geometry of the masked im2col and reports
// whether the window allows it. With strides sh, sw, input row r·sh + a
// (column c·sw + b) is row r (column c) of phase plane (a, b); an output
// at (oh, ow) then reads, at tap (i, j), row oh + di, column ow + dj of
// one phase plane, where di and dj depend on the tap only. With planes
// as wide as the output, that is a constant shift of the output's flat
// index: a row of im2col is a shifted run of a phase plane, copied with
// the padding masked off (gemm.FillBits). A window whose taps read phase
// columns past the output's width (no padding on the right: the outputs
// stop short of the input's last columns) does not allow it, nor does a
// stride of 1 that does not keep the width.
func (g *window) phasePlanes() bool {
	ph := (g.h + g.sh - 1) / g.sh
	if g.sh*g.sw == 1 && g.ow != g.w {
		return false
	}
	khw := g.kh * g.kw
	phase, shift, used := make([]int, khw), make([]int, khw), make([]bool, g.sh*g.sw)
	for i := range g.kh {
		a, di := floorMod(i*g.dh-g.pt, g.sh)
		r0, r1 := tapRange(g.h, g.oh, g.sh, g.pt, g.dh, i)
		for j := range g.kw {
			b, dj := floorMod(j*g.dw-g.pl, g.sw)
			c0, c1 := tapRange(g.w, g.ow, g.sw, g.pl, g.dw, j)
			if r0 < r1 && c0 < c1 && (c1-1+dj >= g.ow || r1-1+di >= ph) {
				return false
			}
			phase[i*g.kw+j], shift[i*g.kw+j] = a*g.sw+b, di*g.ow+dj
			used[a*g.sw+b] = true
		}
	}
	g.tapPhase, g.tapShift, g.phaseUsed, g.ph, g.pw = phase, shift, used, ph, g.ow
	return true
}

// tapTables sets g.tapBits over reps output planes: bit q of tap (i, j)
// is set when output q%(oh·ow) reads an input row at tap row i and an
// input column at tap column j. Each table has two zero words past the
// planes' bits, as gemm.FillBits asks.
func (g *window) tapTables(reps int) {
	ohw := g.oh * g.ow
	words := (reps*ohw+31)/32 + 2
	g.tapBits = make([][]uint32, g.kh*g.kw)
	for i := range g.kh {
		r0, r1 := tapRange(g.h, g.oh, g.sh, g.pt, g.dh, i)
		for j := range g.kw {
			c0, c1 := tapRange(g.w, g.ow, g.sw, g.pl, g.dw, j)
			tab := make([]uint32, words)
			for q := range reps * ohw {
				if oh, ow := q%ohw/g.ow, q%g.ow; oh >= r0 && oh < r1 && ow >= c0 && ow < c1 {
					tab[q/32] |= 1 << (q % 32)
				}
			}
			g.tapBits[i*g.kw+j] = tab
		}
	}
	g.maskReps = reps
}

// floorMod returns v mod s in [0, s) and the floor of v/s.
func floorMod(v, s int) (mod, div int) {
	div = v / s
	if v%s < 0 {
		div--
	}
	return v - div*s, div
}

// phaseSplit writes the phase planes of chans channels of imgs images of
// x (image i, channel c at x[i·imgStride + c·h·w]) into dst, channel by
// channel, phase by phase, image by image, each ph×pw with zeros where
// the plane runs past the input, on up to workers goroutines (a task a
// channel). Phases no tap reads are left as they are.
func (g *window) phaseSplit(dst, x []float32, chans, imgs, imgStride, workers int) {
	hw, plane, used := g.h*g.w, g.ph*g.pw, g.phaseUsed
	forEachPar(workers, chans, func(c int) {
		for img := range imgs {
			src := x[img*imgStride+c*hw:][:hw]
			// the plane of phase p of this channel and image
			at := func(p int) []float32 { return dst[(c*g.sh*g.sw+p)*imgs*plane+img*plane:][:plane] }
			for ir := range g.ph * g.sh {
				a, r := ir%g.sh, ir/g.sh
				for b := range g.sw {
					if !used[a*g.sw+b] {
						continue
					}
					row := at(a*g.sw + b)[r*g.pw:][:g.pw]
					n := 0 // the columns the input has (none past its last row)
					if ir < g.h {
						in := src[ir*g.w : (ir+1)*g.w]
						n = min(g.pw, (g.w-b+g.sw-1)/g.sw)
						if g.sw == 1 {
							copy(row, in[:n])
						} else {
							for t := range n {
								row[t] = in[t*g.sw+b]
							}
						}
					}
					clear(row[n:])
				}
			}
		}
	})
}

// windowAxis computes the output length of one spatial axis, and its pads
// when autoPad sets them. dk is the dilated kernel extent. In ceil mode a
// last window that would start in the right padding is dropped, as ONNX
// Runtime and PyTorch do.
func windowAxis(in, k, s, d, head, tail int, autoPad string, ceil bool) (out, ph, pt int, err error) {
	if k < 1 || s < 1 || d < 1 {
		return 0, 0, 0, fmt.Errorf("kernel %d, stride %d and dilation %d must be positive", k, s, d)
	}
	dk := (k-1)*d + 1
	switch autoPad {
	case "NOTSET", "":
		if head < 0 || tail < 0 {
			return 0, 0, 0, fmt.Errorf("negative pads %d, %d", head, tail)
		}
	case "VALID":
		head, tail = 0, 0
	case "SAME_UPPER", "SAME_LOWER":
		out = (in + s - 1) / s
		need := max(0, (out-1)*s+dk-in)
		head = need / 2
		if autoPad == "SAME_LOWER" {
			head = need - need/2
		}
		return out, head, need - head, nil
	default:
		return 0, 0, 0, fmt.Errorf("unknown auto_pad %q", autoPad)
	}
	span := in + head + tail - dk
	if span < 0 {
		return 0, 0, 0, fmt.Errorf("the kernel (extent %d) is larger than the padded input (%d)", dk, in+head+tail)
	}
	if ceil {
		out = (span+s-1)/s + 1
		if (out-1)*s >= in+head {
			out--
		}
	} else {
		out = span/s + 1
	}
	return out, head, tail, nil
}

// tapRange returns the outputs [lo, hi) at which kernel tap t reads
// inside an input axis of length in: 0 <= o*s - p + t*d < in.
func tapRange(in, out, s, p, d, t int) (lo, hi int) {
	off := t*d - p // input index of output 0
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	if last := in - 1 - off; last >= 0 {
		hi = last/s + 1
	}
	hi = min(hi, out)
	lo = min(lo, hi)
	return lo, hi
}

// interior returns the output rows and columns at which every tap reads
// inside the input.
func (g *window) interior() (oh0, oh1, ow0, ow1 int) {
	oh0, _ = tapRange(g.h, g.oh, g.sh, g.pt, g.dh, 0)
	_, oh1 = tapRange(g.h, g.oh, g.sh, g.pt, g.dh, g.kh-1)
	ow0, _ = tapRange(g.w, g.ow, g.sw, g.pl, g.dw, 0)
	_, ow1 = tapRange(g.w, g.ow, g.sw, g.pl, g.dw, g.kw-1)
	return oh0, max(oh0, oh1), ow0, max(ow0, ow1)
}

// windowOpts says which window attributes a node may carry.
type windowOpts struct {
	pool      bool // a pooling op: pads must be smaller than the kernel
	ceil      bool // ceil_mode
	dilations bool // the op reads a dilations attribute
}

// readWindowAttrs reads strides, dilations (when the op has them), pads
// and auto_pad for sp spatial axes, with ONNX's defaults, and checks their
// lengths.
func (c *nodeCtx) readWindowAttrs(sp int, dilations bool) (strides, dil, pads []int, autoPad string, err error) {
	ones := slices.Repeat([]int{1}, sp)
	strides, err = c.attrInts("strides", ones)
	if err != nil {
		return nil, nil, nil, "", err
	}
	dil = ones
	if dilations {
		if dil, err = c.attrInts("dilations", ones); err != nil {
			return nil, nil, nil, "", err
		}
	} else if c.has("dilations") {
		return nil, nil, nil, "", c.errorf("attribute \"dilations\" is not part of %s at opset %d", c.n.OpType, c.opset)
	}
	autoPad, err = c.attrString("auto_pad", "NOTSET")
	if err != nil {
		return nil, nil, nil, "", err
	}
	pads, err = c.attrInts("pads", make([]int, 2*sp))
	if err != nil {
		return nil, nil, nil, "", err
	}
	if len(strides) == 0 {
		strides = ones
	}
	if len(dil) == 0 {
		dil = ones
	}
	if len(pads) == 0 {
		pads = make([]int, 2*sp)
	}
	if len(strides) != sp || len(dil) != sp || len(pads) != 2*sp {
		return nil, nil, nil, "", c.errorf("strides %v, dilations %v or pads %v do not fit %d spatial axes", strides, dil, pads, sp)
	}
	return strides, dil, pads, autoPad, nil
}

// readWindow reads strides, pads, dilations and auto_pad for a window of
// the given spatial kernel over input shape x (N, C, spatial...), which
// must have one or two spatial axes.
func (c *nodeCtx) readWindow(x, kernel []int, o windowOpts) (window, error) {
	sp := len(x) - 2
	if len(kernel) != sp {
		return window{}, c.errorf("kernel_shape %v does not match input shape %v", kernel, x)
	}
	strides, dil, pads, autoPad, err := c.readWindowAttrs(sp, o.dilations)
	if err != nil {
		return window{}, err
	}
	if o.pool && (autoPad == "NOTSET" || autoPad == "") {
		for i, k := range kernel {
			if pads[i] >= k || pads[i+sp] >= k {
				return window{}, c.errorf("pads %v must be smaller than kernel_shape %v", pads, kernel)
			}
		}
	}
	g := window{h: 1, kh: 1, sh: 1, dh: 1, oh: 1}
	axis := func(i int, in, k, s, d *int, ph, pt, out *int) error {
		*in, *k, *s, *d = x[2+i], kernel[i], strides[i], dil[i]
		var err error
		*out, *ph, *pt, err = windowAxis(*in, *k, *s, *d, pads[i], pads[i+sp], autoPad, o.ceil)
		if err != nil {
			return c.errorf("spatial axis %d of input shape %v: %v", i, x, err)
		}
		return nil
	}
	if sp == 2 {
		if err := axis(0, &g.h, &g.kh, &g.sh, &g.dh, &g.pt, &g.pb, &g.oh); err != nil {
			return window{}, err
		}
	}
	if err := axis(sp-1, &g.w, &g.kw, &g.sw, &g.dw, &g.pl, &g.pr, &g.ow); err != nil {
		return window{}, err
	}
	return g, nil
}

// outShape is the output shape [n, ch, (oh,) ow] for an input of
// rank 3 or 4.
func (g *window) outShape(rank, n, ch int) []int {
	if rank == 3 {
		return []int{n, ch, g.ow}
	}
	return []int{n, ch, g.oh, g.ow}
}

// convKernel is Conv over NCHW float32 tensors (NCW for 1-D).
type convKernel struct {
	g         window
	n, c, m   int // batch, input and output channels
	group     int
	cg, mg    int // input and output channels per group
	bias      bool
	outShape  []int
	xN, wN    int  // elements of X and W
	depthwise bool // group == C: one input channel per group
	direct    bool // 1×1, stride 1, no pads: X is its own im2col matrix
	// constW: the weights never change for this kernel's life (an
	// inference-only build), so they are packed for the matrix multiply
	// once, on the first run, instead of on every call.
	constW bool
	packMu sync.Mutex
	packed []*gemm.PackedA // per group
	packOf *float32        // the weights packed was made from
}

// packedWeights returns the packed weights of each group, packing them on
// first use; nil when the weights may change or no assembly kernel runs.
func (k *convKernel) packedWeights(w []float32, kk int) []*gemm.PackedA {
	if !k.constW || !useGemm || len(w) == 0 {
		return nil
	}
	k.packMu.Lock()
	defer k.packMu.Unlock()
	if k.packOf != &w[0] {
		k.packed = make([]*gemm.PackedA, k.group)
		for gi := range k.group {
			k.packed[gi] = gemm.PackA(false, k.mg, kk, w[gi*k.mg*kk:][:k.mg*kk], kk)
		}
		k.packOf = &w[0]
	}
	return k.packed
}

func newConvKernel(g window, rank, n, c, m, group int, bias bool) *convKernel {
	k := &convKernel{g: g, n: n, c: c, m: m, group: group, cg: c / group, mg: m / group, bias: bias}
	k.outShape = g.outShape(rank, n, m)
	k.xN = n * c * g.h * g.w
	k.wN = m * k.cg * g.kh * g.kw
	k.depthwise = group > 1 && k.cg == 1
	k.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.pb == 0 && g.pr == 0
	if !k.direct && !k.depthwise && gemm.FillBitsFast(gemm.PanelWidth()) && k.g.phasePlanes() {
		reps := 1
		if k.foldable() {
			reps = n
		}
		k.g.tapTables(reps)
	}
	return k
}

// convOperands reads what Conv and ConvTranspose share: X and W (float,
// 1-D or 2-D, of equal rank), group, kernel_shape (which must match W's
// spatial dims) and the optional bias of nb elements. The inputs the
// kernel reads are returned (X, W and B when present).
func (c *nodeCtx) convOperands(biasLen func(w *value, group int) int) (x, w *value, group int, inputs []int, err error) {
	if x, err = c.input(0); err != nil {
		return
	}
	if w, err = c.input(1); err != nil {
		return
	}
	if len(x.shape) != 3 && len(x.shape) != 4 {
		err = c.errorf("graft supports 1-D and 2-D convolutions only (an input of rank 3 or 4); input %q has shape %v", x.name, x.shape)
		return
	}
	if x.dtype != onnx.Float32 || w.dtype != onnx.Float32 {
		err = c.errorf("X and W must be float tensors")
		return
	}
	if len(w.shape) != len(x.shape) {
		err = c.errorf("weight %q has shape %v; a rank-%d input needs a rank-%d weight", w.name, w.shape, len(x.shape), len(x.shape))
		return
	}
	if group, err = c.attrInt("group", 1); err != nil {
		return
	}
	if group < 1 {
		err = c.errorf("group %d must be positive", group)
		return
	}
	if ks, e := c.attrInts("kernel_shape", nil); e != nil {
		err = e
		return
	} else if ks != nil && !slices.Equal(ks, w.shape[2:]) {
		err = c.errorf("kernel_shape %v does not match weight shape %v", ks, w.shape)
		return
	}
	inputs = []int{0, 1}
	if c.optional(2) {
		b, _ := c.input(2)
		if m := biasLen(w, group); onnx.NumElems(b.shape) != m || len(b.shape) != 1 {
			err = c.errorf("bias %q has shape %v; want [%d]", b.name, b.shape, m)
			return
		}
		inputs = append(inputs, 2)
	}
	return x, w, group, inputs, nil
}

func buildConv(c *nodeCtx) error {
	x, w, group, inputs, err := c.convOperands(func(w *value, _ int) int { return w.shape[0] })
	if err != nil {
		return err
	}
	n, ch, m := x.shape[0], x.shape[1], w.shape[0]
	if ch%group != 0 || m%group != 0 || w.shape[1]*group != ch {
		return c.errorf("group %d does not fit input channels %d (X %v) and weight shape %v", group, ch, x.shape, w.shape)
	}
	g, err := c.readWindow(x.shape, w.shape[2:], windowOpts{dilations: true})
	if err != nil {
		return err
	}
	k := newConvKernel(g, len(x.shape), n, ch, m, group, len(inputs) == 3)
	k.constW = c.b.constWeights && w.t != nil
	return c.apply(0, k, k.outShape, onnx.Float32, inputs...)
}

// convBufs recycles im2col buffers between calls.
var convBufs sync.Pool

func getConvBuf(n int) *[]float32 {
	if p, ok := convBufs.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float32, n)
	return &b
}

func putConvBuf(p *[]float32) { convBufs.Put(p) }

func (k *convKernel) check(in []*onnx.Tensor) error {
	if len(in) < 2 || (k.bias && len(in) < 3) {
		return fmt.Errorf("Conv needs X, W and, when built with one, B")
	}
	for i, t := range in {
		if t.DType != onnx.Float32 {
			return fmt.Errorf("input %d must be float32", i)
		}
	}
	if len(in[0].F) != k.xN || len(in[1].F) != k.wN {
		return fmt.Errorf("X or W has the wrong size for this Conv (built for X %d, W %d elements)", k.xN, k.wN)
	}
	return nil
}

func (k *convKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	out := onnx.NewFloat(k.outShape, nil)
	if err := k.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (k *convKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	return k.forwardEpi(in, out, nil)
}

// forwardEpi is forward into out, with the epilogue epi (nil for none)
// applied to each block of the output right after it is computed, while
// it is still in cache. in holds X, W and B (when the Conv has a bias),
// then the epilogue's extra inputs.
func (k *convKernel) forwardEpi(in []*onnx.Tensor, out *onnx.Tensor, epi *epilogue) error {
	if err := k.check(in); err != nil {
		return err
	}
	x, w, y := in[0].F, in[1].F, out.F
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	if k.depthwise {
		k.dwForward(in, y, epi)
		return nil
	}
	kk := k.cg * g.kh * g.kw
	packed := k.packedWeights(w, kk)
	if g.maskReps > 1 && (epi == nil || epi.scale == 0) {
		k.forwardFolded(in, y, packed, epi)
		return nil
	}
	if packed != nil && k.direct && hw == 1 && k.group == 1 && (epi == nil || epi.scale == 0) {
		k.forwardVectors(in, y, packed[0], epi)
		return nil
	}
	units := k.n * k.group
	workers := cores.N()
	outer, inner := 0, 1 // parallel over units, or within each
	if units < workers {
		outer, inner = 1, workers
	}
	forEachPar(outer, units, func(u int) {
		ni, gi := u/k.group, u%k.group
		xg := x[(ni*k.c+gi*k.cg)*hw:][:k.cg*hw]
		yg := y[(ni*k.m+gi*k.mg)*ohw:][:k.mg*ohw]
		wg := w[gi*k.mg*kk:][:k.mg*kk]
		var pw *gemm.PackedA // wg packed once, when the weights are constant
		if packed != nil {
			pw = packed[gi]
		}
		// The columns of im2col: X itself for a 1×1 convolution, else
		// made block by block inside the product, straight into its
		// packed layout (fill), by masked copies of the input's phase
		// planes where the assembly kernels run and the window allows
		// them (phasePlanes), or else whole (col).
		col := xg
		var fill gemm.BFill
		switch {
		case k.direct:
		case g.tapBits != nil:
			src := xg // the input is its own phase plane at stride 1
			if g.sh*g.sw > 1 {
				p := getConvBuf(k.cg * g.sh * g.sw * g.ph * g.pw)
				defer putConvBuf(p)
				src = *p
				g.phaseSplit(src, xg, k.cg, 1, 0, inner)
			}
			fill = func(dst []float32, l0, kc, j0, n, nr int) { im2colMasked(g, src, 1, dst, l0, kc, j0, n, nr) }
		default:
			p := getConvBuf(kk * ohw)
			defer putConvBuf(p)
			col = *p
			im2col(g, xg, col, k.cg, inner)
		}
		// The bias and the epilogue run on each block of the output as
		// soon as the product has finished it, while it is in cache.
		var tile gemm.Epilogue
		if k.bias || epi != nil {
			base := (ni*k.m + gi*k.mg) * ohw
			tile = func(i0, i1, j0, j1 int) {
				for r := i0; r < i1; r++ {
					k.finishRow(yg[r*ohw+j0:r*ohw+j1], gi*k.mg+r, base+r*ohw+j0, epi, in)
				}
			}
		}
		if epi != nil && epi.scale != 0 { // the input's channels scaled per image: scale the weights
			s := in[epi.scale].F[ni*k.c+gi*k.cg:][:k.cg]
			khw := g.kh * g.kw
			wp := getConvBuf(k.mg * kk)
			defer putConvBuf(wp)
			ws := (*wp)[:k.mg*kk]
			for r := 0; r < k.mg; r++ {
				for j := 0; j < kk; j++ {
					ws[r*kk+j] = wg[r*kk+j] * s[j/khw]
				}
			}
			wg, pw = ws, nil
		}
		switch {
		case pw != nil && fill != nil:
			pw.MulFill(inner, ohw, 1, fill, 0, yg, ohw, tile)
		case fill != nil:
			gemm.SgemmFill(inner, false, k.mg, ohw, kk, 1, wg, kk, fill, 0, yg, ohw, tile)
		case pw != nil && ohw > 1:
			pw.MulEpi(inner, false, ohw, 1, col, ohw, 0, yg, ohw, tile)
		default:
			sgemmEpi(inner, false, false, k.mg, ohw, kk, 1, wg, kk, col, ohw, 0, yg, ohw, tile)
		}
	})
	return nil
}

// foldable reports whether forwardFolded serves this convolution: one
// group, several images, a window larger than 1×1, a masked im2col whose
// phase planes are as large as the output planes (so that the images'
// planes follow each other as the output's do), and output planes
// smaller than a block of the product's columns (ResNet's 14×14 and
// 7×7), whose columns, one product an image, leave the kernel's panels
// partly empty. ResNet-18's strided 1×1 shortcuts at 14×14 and 7×7 ran
// 10-40% slower folded: their products are short (k = C) and gain less
// than the scatter costs.
func (k *convKernel) foldable() bool {
	g := &k.g
	return g.tapPhase != nil && k.n > 1 && k.group == 1 && g.kh*g.kw > 1 && g.ph == g.oh && g.oh*g.ow < 512
}

// forwardFolded is forwardEpi for a foldable convolution: the images are
// the columns of one product, W times im2col of the whole batch, where
// forwardEpi makes one product per image. 49 columns (a 7×7 plane) fill
// 49 of the 64 columns of two 32-column panels; 8 images, 392 columns,
// fill 392 of 416. Each channel's planes are first gathered image after
// image, so that a row of the batch's im2col matrix is one shifted run
// of them (im2colMasked over g's masks for n planes); each block of the
// product is then scattered to the images' output planes, where the bias
// and epi run. Every output gets the operations it gets in forwardEpi,
// so the bits are the same. With strides, the planes gathered are the
// phase planes (phasePlanes).
func (k *convKernel) forwardFolded(in []*onnx.Tensor, y []float32, packed []*gemm.PackedA, epi *epilogue) {
	g := &k.g
	n, c, m := k.n, k.c, k.m
	hw, ohw := g.h*g.w, g.oh*g.ow
	kk := c * g.kh * g.kw
	cols := n * ohw
	xp := getConvBuf(c * g.sh * g.sw * n * g.ph * g.pw)
	defer putConvBuf(xp)
	xt := *xp
	g.phaseSplit(xt, in[0].F, c, n, c*hw, 0)
	cp := getConvBuf(m * cols)
	defer putConvBuf(cp)
	ct := (*cp)[:m*cols]
	fill := func(dst []float32, l0, kc, j0, nn, nr int) { im2colMasked(g, xt, n, dst, l0, kc, j0, nn, nr) }
	tile := func(i0, i1, j0, j1 int) {
		for r := i0; r < i1; r++ {
			for q := j0; q < j1; {
				img, pos := q/ohw, q%ohw
				e := min(j1-q, ohw-pos)
				base := (img*m+r)*ohw + pos
				out := y[base : base+e]
				copy(out, ct[r*cols+q:])
				k.finishRow(out, r, base, epi, in)
				q += e
			}
		}
	}
	if packed != nil {
		packed[0].MulFill(0, cols, 1, fill, 0, ct, cols, tile)
		return
	}
	gemm.SgemmFill(0, false, m, cols, kk, 1, in[1].F, kk, fill, 0, ct, cols, tile)
}

// finishRow adds output channel ch's bias (when the Conv has one) to
// row, the part of the output at element offset off, then runs epi
// (nil for none) over it.
func (k *convKernel) finishRow(row []float32, ch, off int, epi *epilogue, in []*onnx.Tensor) {
	if k.bias {
		epi.applyBias(row, in[2].F[ch], off, in)
	} else {
		epi.apply(row, off, in)
	}
}

// forwardVectors is forwardEpi for a 1×1 convolution of 1×1 planes
// (squeeze-excitation's): each image is a vector of channels, so the
// batch is one product, W times the images as columns, through the tile
// kernel (gemm.MulTiles) so that an image's bits do not depend on the
// batch size; C (m×n) is then written to the outputs image by image.
func (k *convKernel) forwardVectors(in []*onnx.Tensor, y []float32, packed *gemm.PackedA, epi *epilogue) {
	cp := getConvBuf(k.m * k.n)
	defer putConvBuf(cp)
	c := *cp
	packed.MulTiles(0, true, k.n, 1, in[0].F, k.c, 0, c, k.n, nil)
	for ni := range k.n {
		yi := y[ni*k.m : (ni+1)*k.m]
		for r := range yi {
			yi[r] = c[r*k.n+ni]
		}
		if k.bias {
			vec.Add(yi, yi, in[2].F)
		}
		epi.apply(yi, ni*k.m, in)
	}
}

func (k *convKernel) backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	return freshGrad(k, i, in, out, dy)
}

func (k *convKernel) backwardInto(i int, in []*onnx.Tensor, _, dy, dx *onnx.Tensor) error {
	if err := k.check(in); err != nil {
		return err
	}
	switch i {
	case 0:
		k.gradXInto(in[1].F, dy.F, dx.F)
	case 1:
		k.gradWInto(in[0].F, dy.F, dx.F)
	case 2:
		biasGradInto(dy.F, k.n, k.m, k.g.oh*k.g.ow, dx.F)
	default:
		return fmt.Errorf("Conv has no input %d", i)
	}
	return nil
}

// biasGrad is the gradient of a per-channel bias added to n×m planes of
// hw elements: dy summed over the batch and the plane.
func biasGrad(dy []float32, n, m, hw int, shape []int) *onnx.Tensor {
	g := onnx.NewFloat(shape, nil)
	biasGradInto(dy, n, m, hw, g.F)
	return g
}

// biasGradInto adds biasGrad's values to g.
func biasGradInto(dy []float32, n, m, hw int, g []float32) {
	for ni := 0; ni < n; ni++ {
		for oc := 0; oc < m; oc++ {
			var s float32
			for _, v := range dy[(ni*m+oc)*hw:][:hw] {
				s += v
			}
			g[oc] += s
		}
	}
}

func (k *convKernel) gradX(w, dy []float32, shape []int) *onnx.Tensor {
	out := onnx.NewFloat(shape, nil)
	k.gradXInto(w, dy, out.F)
	return out
}

// gradXInto adds dL/dX to dx (zeros, for the gradient itself).
func (k *convKernel) gradXInto(w, dy, dx []float32) {
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	if k.depthwise {
		mult, khw := k.mg, g.kh*g.kw
		forEachPar(0, k.n*k.c, func(u int) {
			ni, ic := u/k.c, u%k.c
			dxp := dx[u*hw:][:hw]
			for oc := ic * mult; oc < (ic+1)*mult; oc++ {
				dwGradXPlane(g, dxp, dy[(ni*k.m+oc)*ohw:][:ohw], w[oc*khw:][:khw])
			}
		})
		return
	}
	kk := k.cg * g.kh * g.kw
	units := k.n * k.group
	workers := cores.N()
	outer, inner := 0, 1
	if units < workers {
		outer, inner = 1, workers
	}
	forEachPar(outer, units, func(u int) {
		ni, gi := u/k.group, u%k.group
		dxg := dx[(ni*k.c+gi*k.cg)*hw:][:k.cg*hw]
		dyg := dy[(ni*k.m+gi*k.mg)*ohw:][:k.mg*ohw]
		wg := w[gi*k.mg*kk:][:k.mg*kk]
		if k.direct {
			sgemmWorkers(inner, true, false, kk, ohw, k.mg, 1, wg, kk, dyg, ohw, 0, dxg, hw)
			return
		}
		p := getConvBuf(kk * ohw)
		defer putConvBuf(p)
		dcol := *p
		sgemmWorkers(inner, true, false, kk, ohw, k.mg, 1, wg, kk, dyg, ohw, 0, dcol, ohw)
		col2im(g, dcol, dxg, k.cg, inner)
	})
}

func (k *convKernel) gradW(x, dy []float32, shape []int) *onnx.Tensor {
	out := onnx.NewFloat(shape, nil)
	k.gradWInto(x, dy, out.F)
	return out
}

// gradWInto adds dL/dW to dw (zeros, for the gradient itself).
func (k *convKernel) gradWInto(x, dy, dw []float32) {
	g := &k.g
	hw, ohw := g.h*g.w, g.oh*g.ow
	if k.depthwise {
		mult, khw := k.mg, g.kh*g.kw
		forEachPar(0, k.m, func(oc int) {
			ic := oc / mult
			acc := make([]float64, khw)
			for ni := 0; ni < k.n; ni++ {
				dwGradWPlane(g, acc, x[(ni*k.c+ic)*hw:][:hw], dy[(ni*k.m+oc)*ohw:][:ohw])
			}
			for t, v := range acc {
				dw[oc*khw+t] = float32(v)
			}
		})
		return
	}
	kk := k.cg * g.kh * g.kw
	units := k.n * k.group
	workers := min(cores.N(), units)
	// unit u adds dY_u · col_uᵀ to dW of its group; each worker sums its
	// units into a dW of its own, and those are added at the end.
	unit := func(u, inner int, acc []float32) {
		ni, gi := u/k.group, u%k.group
		xg := x[(ni*k.c+gi*k.cg)*hw:][:k.cg*hw]
		dyg := dy[(ni*k.m+gi*k.mg)*ohw:][:k.mg*ohw]
		col := xg
		if !k.direct {
			p := getConvBuf(kk * ohw)
			defer putConvBuf(p)
			col = *p
			im2col(g, xg, col, k.cg, inner)
		}
		sgemmWorkers(inner, false, true, k.mg, kk, ohw, 1, dyg, ohw, col, ohw, 1, acc[gi*k.mg*kk:][:k.mg*kk], kk)
	}
	if workers <= 1 || units < workers {
		for u := 0; u < units; u++ {
			unit(u, 0, dw)
		}
		return
	}
	parts := make([][]float32, workers)
	parts[0] = dw
	forEachPar(workers, workers, func(wi int) {
		if parts[wi] == nil {
			parts[wi] = make([]float32, len(dw))
		}
		for u := wi; u < units; u += workers {
			unit(u, 1, parts[wi])
		}
	})
	for _, p := range parts[1:] {
		for j, v := range p {
			dw[j] += v
		}
	}
}

// im2col writes the columns of cg input planes xg for the window g into
// col: row (c, i, j) holds, for every output position, the input element
// tap (i, j) of channel c reads there (0 in the padding).
func im2col(g *window, xg, col []float32, cg, workers int) {
	ohw := g.oh * g.ow
	var xe []float32
	if g.sw == 2 {
		p := getConvBuf(cg * g.h * 2 * ((g.w + 1) / 2))
		defer putConvBuf(p)
		xe = *p
		forEachPar(workers, cg, func(ci int) {
			plane := ci * g.h * g.w
			deinterleave(g, xg[plane:plane+g.h*g.w], 1, xe[ci*g.h*2*((g.w+1)/2):])
		})
	}
	// a task per channel and kernel row: a stem convolution has 3
	// channels, which two workers would share unevenly
	forEachPar(workers, cg*g.kh, func(t int) {
		l0 := t * g.kw
		im2colRows(g, xg, xe, col[l0*ohw:][:g.kw*ohw], l0, g.kw, 0, ohw)
	})
}

// im2colRows writes rows l0..l0+kc-1, columns j0..j0+n-1 of the im2col
// matrix of the input planes xg (see im2col) into dst, a kc×n block. With a stride of 2 along the width, xe, when not nil, holds every input
// row deinterleaved (deinterleave): each tap's run of outputs in a row
// then reads consecutive inputs, and is one copy instead of a gather.
func im2colRows(g *window, xg, xe, dst []float32, l0, kc, j0, n int) {
	khw := g.kh * g.kw
	half := (g.w + 1) / 2
	for l := range kc {
		row := dst[l*n : (l+1)*n]
		ci, tap := (l0+l)/khw, (l0+l)%khw
		i, j := tap/g.kw, tap%g.kw
		oh0, oh1 := tapRange(g.h, g.oh, g.sh, g.pt, g.dh, i)
		ow0, ow1 := tapRange(g.w, g.ow, g.sw, g.pl, g.dw, j)
		d := j*g.dw - g.pl // the input column of output column ow is ow*sw + d
		for q := j0; q < j0+n; {
			oh := q / g.ow
			s := q - oh*g.ow                 // first output column of this run
			e := min(g.ow, s+j0+n-q)         // its end
			seg := row[q-j0 : q-j0+e-s]      // the run in dst
			a, b := max(s, ow0), min(e, ow1) // the columns that read inside
			q += e - s
			if oh < oh0 || oh >= oh1 || a >= b {
				clear(seg)
				continue
			}
			clear(seg[:a-s])
			clear(seg[b-s:])
			out := seg[a-s : b-s]
			ih := oh*g.sh - g.pt + i*g.dh
			switch {
			case g.sw == 1:
				copy(out, xg[(ci*g.h+ih)*g.w+a+d:])
			case g.sw == 2 && xe != nil:
				// column 2·ow + d: the evens at ow + d/2 when d is
				// even, the odds at ow + (d-1)/2 when it is odd
				r := xe[(ci*g.h+ih)*2*half:]
				if d&1 == 0 {
					copy(out, r[a+d>>1:])
				} else {
					copy(out, r[half+a+d>>1:])
				}
			default:
				src := xg[(ci*g.h+ih)*g.w+a*g.sw+d:]
				for t := range out {
					out[t] = src[t*g.sw]
				}
			}
		}
	}
}

// fillBufs holds im2colMasked's offsets and tables between calls.
var fillBufs sync.Pool

type fillBuf struct {
	offs []int
	tabs [][]uint32
}

// im2colMasked writes the block of rows l0..l0+kc-1, columns
// j0..j0+n-1 of the im2col matrix packed in panels of nr columns for
// the matrix multiply (gemm.BFill), for a window
// set up by phasePlanes and tapTables, from src: the phase planes of imgs images (the
// layout phaseSplit writes; the input itself at stride 1 for one
// image). Each row of the block is a run of one phase plane shifted by
// the tap's offset, and each of its panels one masked copy. With
// several images, the block's columns may run across images, as the
// output planes do over g's maskReps planes.
func im2colMasked(g *window, src []float32, imgs int, dst []float32, l0, kc, j0, n, nr int) {
	fb, _ := fillBufs.Get().(*fillBuf)
	if fb == nil {
		fb = new(fillBuf)
	}
	defer fillBufs.Put(fb)
	if cap(fb.offs) < kc {
		fb.offs, fb.tabs = make([]int, kc), make([][]uint32, kc)
	}
	offs, tabs := fb.offs[:kc], fb.tabs[:kc]
	khw := g.kh * g.kw
	phase := imgs * g.ph * g.pw
	channel := g.sh * g.sw * phase
	for l := range kc {
		ci, tap := (l0+l)/khw, (l0+l)%khw
		offs[l] = ci*channel + g.tapPhase[tap]*phase + g.tapShift[tap] + j0
		tabs[l] = g.tapBits[tap]
	}
	gemm.FillBits(dst, nr, kc, n, src, offs, tabs, j0)
	clear(tabs) // the pool keeps no tables alive
}

// deinterleave writes the rows of cg input planes xg, each as its even
// columns followed by its odd columns, into dst: (w+1)/2 values each, so
// a row takes 2·((w+1)/2) values. A convolution with a stride of 2 along
// the width reads either only even or only odd columns at each tap.
func deinterleave(g *window, xg []float32, cg int, dst []float32) {
	half := (g.w + 1) / 2
	for r := range cg * g.h {
		src := xg[r*g.w : (r+1)*g.w]
		ev, od := dst[r*2*half:][:half], dst[r*2*half+half:][:half]
		for t := 0; t+1 < len(src); t += 2 {
			ev[t>>1], od[t>>1] = src[t], src[t+1]
		}
		if len(src)&1 == 1 {
			ev[half-1] = src[len(src)-1]
		}
	}
}

// col2im adds the columns back into the input planes: the adjoint of
// im2col.
func col2im(g *window, col, dxg []float32, cg, workers int) {
	hw, ohw := g.h*g.w, g.oh*g.ow
	forEachPar(workers, cg, func(ci int) {
		dst := dxg[ci*hw:][:hw]
		for i := 0; i < g.kh; i++ {
			oh0, oh1 := tapRange(g.h, g.oh, g.sh, g.pt, g.dh, i)
			for j := 0; j < g.kw; j++ {
				ow0, ow1 := tapRange(g.w, g.ow, g.sw, g.pl, g.dw, j)
				src := col[((ci*g.kh+i)*g.kw+j)*ohw:][:ohw]
				if ow0 >= ow1 {
					continue // as in im2col: the tap reads no column
				}
				for oh := oh0; oh < oh1; oh++ {
					s := src[oh*g.ow+ow0 : oh*g.ow+ow1]
					d := dst[(oh*g.sh-g.pt+i*g.dh)*g.w+ow0*g.sw-g.pl+j*g.dw:]
					if g.sw == 1 {
						d = d[:len(s)]
						for t, v := range s {
							d[t] += v
						}
						continue
					}
					for t, v := range s {
						d[t*g.sw] += v
					}
				}
			}
		}
	})
}

// dwPixel is one output of a depthwise convolution, with bounds tests.
func dwPixel(g *window, xp, wk []float32, bias float32, oh, ow int) float32 {
	acc := bias
	for i := 0; i < g.kh; i++ {
		ih := oh*g.sh - g.pt + i*g.dh
		if ih < 0 || ih >= g.h {
			continue
		}
		row := xp[ih*g.w : (ih+1)*g.w]
		for j := 0; j < g.kw; j++ {
			if iw := ow*g.sw - g.pl + j*g.dw; iw >= 0 && iw < g.w {
				acc += wk[i*g.kw+j] * row[iw]
			}
		}
	}
	return acc
}

// dwFlat reports whether the output plane has the input's width at stride
// 1. Then tap (i, j) reads x[q+off] for output q of the flattened plane,
// one constant offset per tap, and a whole plane is one vector operation
// per tap; only the border columns, where the flat offset would wrap
// into the neighbouring row, need the bounds tests.
func (g *window) dwFlat() bool { return g.sh == 1 && g.sw == 1 && g.ow == g.w }

// dwFlatRange returns tap (i, j)'s offset and the flat output range
// [q0, q1) of the rows it reads, clipped to the input.
func (g *window) dwFlatRange(i, j int) (off, q0, q1 int) {
	r0, r1 := tapRange(g.h, g.oh, 1, g.pt, g.dh, i)
	off = (i*g.dh-g.pt)*g.w + j*g.dw - g.pl
	return off, max(r0*g.ow, -off), min(r1*g.ow, g.h*g.w-off)
}

// dwMaskBorder copies the plane dyp into buf with its border columns
// (those where some tap reads outside the input) set to zero.
func dwMaskBorder(g *window, dyp, buf []float32) []float32 {
	_, _, ow0, ow1 := g.interior()
	buf = buf[:len(dyp)]
	copy(buf, dyp)
	for oh := 0; oh < g.oh; oh++ {
		row := buf[oh*g.ow : (oh+1)*g.ow]
		clear(row[:ow0])
		clear(row[ow1:])
	}
	return buf
}

// dwGeom returns the window as a dwconv geometry: square kernel and
// strides, no dilation (the shapes dwconv may have a kernel for).
func (g *window) dwGeom() (dwconv.Geom, bool) {
	ok := g.kh == g.kw && g.sh == g.sw && g.dh == 1 && g.dw == 1
	return dwconv.Geom{H: g.h, W: g.w, K: g.kh, S: g.sh, PT: g.pt, PL: g.pl, OH: g.oh, OW: g.ow}, ok
}

// dwTaskValues is about how many output values one task of a depthwise
// forward pass computes: enough planes to make the task's dispatch and
// set-up small against its work, few enough that the epilogue finds them
// in the level-1 cache.
const dwTaskValues = 4096

// dwPlanesPerTask returns how many consecutive output planes of one
// image a task computes: about dwTaskValues values, and at most an
// eighth of the m channels (rounded up), so that even one image makes
// eight tasks or more; but four planes at least when the task takes
// their means, which dwconv.PlaneSums adds up four at a time (a plane's
// four chains of additions alone wait on each other's latency). It
// depends on the layer only, never on the batch or the number of
// threads: the epilogue runs over a task's planes at once, and where
// its vector code ends depends on the span.
func dwPlanesPerTask(ohw, m int, means bool) int {
	per := max(1, min(dwTaskValues/ohw, (m+7)/8))
	if means {
		per = max(per, min(4, m))
	}
	return per
}

// dwForward is the depthwise convolution's forward pass into y, with
// the epilogue epi. A task computes a run of consecutive output
// channels of one image, which are contiguous in Y and, with one output
// channel per input channel, in X: 3×3 and 5×5 filters at stride 1 or 2
// go to dwconv's vector kernels (when the CPU has them) in one call for
// the run, other filters plane by plane in dwForwardPlane. Then the
// epilogue runs over the run's planes while they are in cache, and the
// planes' means are taken for a fused GlobalAveragePool.
func (k *convKernel) dwForward(in []*onnx.Tensor, y []float32, epi *epilogue) {
	g := &k.g
	x, w := in[0].F, in[1].F
	var bias []float32
	if k.bias {
		bias = in[2].F
	}
	hw, ohw, khw := g.h*g.w, g.oh*g.ow, g.kh*g.kw
	mult := k.mg // output channels per input channel
	dg, ok := g.dwGeom()
	vector := ok && dwconv.Supported(dg)
	per := dwPlanesPerTask(ohw, k.m, epi != nil && epi.means != nil)
	tasks := (k.m + per - 1) / per
	forEachPar(0, k.n*tasks, func(t int) {
		ni, oc0 := t/tasks, t%tasks*per
		oc1 := min(oc0+per, k.m)
		u0 := ni*k.m + oc0
		for oc := oc0; oc < oc1; {
			ic := oc / mult
			end, xs := oc1, hw // the planes that read consecutive inputs
			if mult > 1 {
				end, xs = min(oc1, (ic+1)*mult), 0
			}
			xp := x[(ni*k.c+ic)*hw:]
			yp := y[(ni*k.m+oc)*ohw : (ni*k.m+end)*ohw]
			var bp []float32
			if bias != nil {
				bp = bias[oc:end]
			}
			if vector {
				dwconv.ForwardN(dg, end-oc, xp, xs, w[oc*khw:end*khw], bp, yp)
			} else {
				for p := range end - oc {
					var b float32
					if bp != nil {
						b = bp[p]
					}
					dwForwardPlane(g, xp[p*xs:][:hw], yp[p*ohw:][:ohw], w[(oc+p)*khw:][:khw], b)
				}
			}
			oc = end
		}
		yc := y[u0*ohw : (u0+oc1-oc0)*ohw]
		epi.apply(yc, u0*ohw, in)
		if epi != nil && epi.means != nil {
			dwMeans(yc, ohw, epi.means[u0:u0+oc1-oc0])
		}
	})
}

// dwMeans sets means[p] to the mean of plane p of y (planes of size
// values), with the bits GlobalAveragePool's planeSum gives:
// dwconv.PlaneSums adds in its order, several planes at once.
func dwMeans(y []float32, size int, means []float32) {
	var buf [64]float64
	for p := 0; p < len(means); p += len(buf) {
		sums := buf[:min(len(buf), len(means)-p)]
		dwconv.PlaneSums(y[p*size:], size, sums)
		for q, s := range sums {
			means[p+q] = float32(s / float64(size))
		}
	}
}

// dwForwardPlane computes one output plane of a depthwise convolution
// in Go: yp = bias + xp ⋆ wk. Interior outputs, where every tap is
// inside the input, skip the bounds tests.
func dwForwardPlane(g *window, xp, yp, wk []float32, bias float32) {
	oh0, oh1, ow0, ow1 := g.interior()
	border := func(oh, ow int) float32 { return dwPixel(g, xp, wk, bias, oh, ow) }
	if g.dwFlat() {
		for q := range yp {
			yp[q] = bias
		}
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				if off, q0, q1 := g.dwFlatRange(i, j); q0 < q1 {
					axpyF32(wk[i*g.kw+j], xp[q0+off:q1+off], yp[q0:q1])
				}
			}
		}
		for oh := 0; oh < g.oh; oh++ {
			yrow := yp[oh*g.ow : (oh+1)*g.ow]
			for ow := 0; ow < ow0; ow++ {
				yrow[ow] = border(oh, ow)
			}
			for ow := ow1; ow < g.ow; ow++ {
				yrow[ow] = border(oh, ow)
			}
		}
		return
	}
	for oh := 0; oh < g.oh; oh++ {
		yrow := yp[oh*g.ow : (oh+1)*g.ow]
		if oh < oh0 || oh >= oh1 {
			for ow := range yrow {
				yrow[ow] = border(oh, ow)
			}
			continue
		}
		for ow := 0; ow < ow0; ow++ {
			yrow[ow] = border(oh, ow)
		}
		for ow := ow1; ow < g.ow; ow++ {
			yrow[ow] = border(oh, ow)
		}
		ih := oh*g.sh - g.pt
		p := ow0*g.sw - g.pl
		if g.kh == 3 && g.kw == 3 && g.dw == 1 {
			r0 := xp[ih*g.w:]
			r1 := xp[(ih+g.dh)*g.w:]
			r2 := xp[(ih+2*g.dh)*g.w:]
			w0, w1, w2, w3, w4, w5, w6, w7, w8 := wk[0], wk[1], wk[2], wk[3], wk[4], wk[5], wk[6], wk[7], wk[8]
			for ow := ow0; ow < ow1; ow++ {
				a := r0[p : p+3 : p+3]
				b := r1[p : p+3 : p+3]
				c := r2[p : p+3 : p+3]
				yrow[ow] = bias + w0*a[0] + w1*a[1] + w2*a[2] + w3*b[0] + w4*b[1] + w5*b[2] + w6*c[0] + w7*c[1] + w8*c[2]
				p += g.sw
			}
			continue
		}
		for ow := ow0; ow < ow1; ow++ {
			acc := bias
			for i := 0; i < g.kh; i++ {
				row := xp[(ih+i*g.dh)*g.w+p:]
				wr := wk[i*g.kw : (i+1)*g.kw]
				for j, wv := range wr {
					acc += wv * row[j*g.dw]
				}
			}
			yrow[ow] = acc
			p += g.sw
		}
	}
}

// dwGradXPlane adds the input gradient of one depthwise output plane:
// dxp += dyp scattered through wk.
func dwGradXPlane(g *window, dxp, dyp, wk []float32) {
	oh0, oh1, ow0, ow1 := g.interior()
	border := func(oh, ow int, d float32) {
		for i := 0; i < g.kh; i++ {
			ih := oh*g.sh - g.pt + i*g.dh
			if ih < 0 || ih >= g.h {
				continue
			}
			row := dxp[ih*g.w : (ih+1)*g.w]
			for j := 0; j < g.kw; j++ {
				if iw := ow*g.sw - g.pl + j*g.dw; iw >= 0 && iw < g.w {
					row[iw] += wk[i*g.kw+j] * d
				}
			}
		}
	}
	if g.dwFlat() {
		// the interior columns as whole-plane vector operations, from a
		// copy of dy whose border columns are zero; then the border
		p := getConvBuf(len(dyp))
		defer putConvBuf(p)
		masked := dwMaskBorder(g, dyp, *p)
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				if off, q0, q1 := g.dwFlatRange(i, j); q0 < q1 {
					axpyF32(wk[i*g.kw+j], masked[q0:q1], dxp[q0+off:q1+off])
				}
			}
		}
		for oh := 0; oh < g.oh; oh++ {
			for ow := 0; ow < ow0; ow++ {
				border(oh, ow, dyp[oh*g.ow+ow])
			}
			for ow := ow1; ow < g.ow; ow++ {
				border(oh, ow, dyp[oh*g.ow+ow])
			}
		}
		return
	}
	for oh := 0; oh < g.oh; oh++ {
		dyrow := dyp[oh*g.ow : (oh+1)*g.ow]
		if oh < oh0 || oh >= oh1 {
			for ow, d := range dyrow {
				border(oh, ow, d)
			}
			continue
		}
		for ow := 0; ow < ow0; ow++ {
			border(oh, ow, dyrow[ow])
		}
		for ow := ow1; ow < g.ow; ow++ {
			border(oh, ow, dyrow[ow])
		}
		ih := oh*g.sh - g.pt
		p := ow0*g.sw - g.pl
		if g.kh == 3 && g.kw == 3 && g.dw == 1 {
			r0 := dxp[ih*g.w:]
			r1 := dxp[(ih+g.dh)*g.w:]
			r2 := dxp[(ih+2*g.dh)*g.w:]
			w0, w1, w2, w3, w4, w5, w6, w7, w8 := wk[0], wk[1], wk[2], wk[3], wk[4], wk[5], wk[6], wk[7], wk[8]
			for _, d := range dyrow[ow0:ow1] {
				a := r0[p : p+3 : p+3]
				b := r1[p : p+3 : p+3]
				c := r2[p : p+3 : p+3]
				a[0] += w0 * d
				a[1] += w1 * d
				a[2] += w2 * d
				b[0] += w3 * d
				b[1] += w4 * d
				b[2] += w5 * d
				c[0] += w6 * d
				c[1] += w7 * d
				c[2] += w8 * d
				p += g.sw
			}
			continue
		}
		for _, d := range dyrow[ow0:ow1] {
			for i := 0; i < g.kh; i++ {
				row := dxp[(ih+i*g.dh)*g.w+p:]
				for j, wv := range wk[i*g.kw : (i+1)*g.kw] {
					row[j*g.dw] += wv * d
				}
			}
			p += g.sw
		}
	}
}

// dwGradWPlane adds, for every tap, the sum over one plane of dy times
// the input element the tap reads.
func dwGradWPlane(g *window, acc []float64, xp, dyp []float32) {
	if g.dwFlat() {
		_, _, ow0, ow1 := g.interior()
		p := getConvBuf(len(dyp))
		defer putConvBuf(p)
		masked := dwMaskBorder(g, dyp, *p)
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				if off, q0, q1 := g.dwFlatRange(i, j); q0 < q1 {
					acc[i*g.kw+j] += float64(dotF32(masked[q0:q1], xp[q0+off:q1+off]))
				}
			}
		}
		for oh := 0; oh < g.oh; oh++ {
			for ow := 0; ow < g.ow; ow++ {
				if ow == ow0 && ow0 < ow1 {
					ow = ow1 - 1 // skip the interior
					continue
				}
				d := float64(dyp[oh*g.ow+ow])
				for i := 0; i < g.kh; i++ {
					ih := oh - g.pt + i*g.dh
					if ih < 0 || ih >= g.h {
						continue
					}
					for j := 0; j < g.kw; j++ {
						if iw := ow - g.pl + j*g.dw; iw >= 0 && iw < g.w {
							acc[i*g.kw+j] += d * float64(xp[ih*g.w+iw])
						}
					}
				}
			}
		}
		return
	}
	for i := 0; i < g.kh; i++ {
		oh0, oh1 := tapRange(g.h, g.oh, g.sh, g.pt, g.dh, i)
		for j := 0; j < g.kw; j++ {
			ow0, ow1 := tapRange(g.w, g.ow, g.sw, g.pl, g.dw, j)
			if ow0 >= ow1 {
				continue
			}
			var s float64
			for oh := oh0; oh < oh1; oh++ {
				d := dyp[oh*g.ow+ow0 : oh*g.ow+ow1]
				xr := xp[(oh*g.sh-g.pt+i*g.dh)*g.w+ow0*g.sw-g.pl+j*g.dw:]
				if g.sw == 1 {
					s += float64(dotF32(d, xr[:len(d)]))
					continue
				}
				var r float32
				for t, v := range d {
					r += v * xr[t*g.sw]
				}
				s += float64(r)
			}
			acc[i*g.kw+j] += s
		}
	}
}
