package dwconv

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Geom is the geometry of one depthwise plane: an H×W input, a K×K
// filter at stride S on both axes, PT rows of zeros above the input and
// PL columns left of it, and an OH×OW output. Zeros below and right of
// the input are implied by OH and OW (a window may reach past the input
// there, never past the top or left padding).
type Geom struct {
	H, W   int
	K, S   int
	PT, PL int
	OH, OW int
}

// Supported reports whether Forward runs g: an assembly path is in use,
// K is 3 or 5, S 1 or 2, and the geometry is consistent.
func Supported(g Geom) bool {
	return kernelFor(path, g.K, g.S) != 0 && g.valid() == nil
}

func (g Geom) valid() error {
	switch {
	case g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1 || g.K < 1 || g.S < 1 || g.PT < 0 || g.PL < 0:
		return fmt.Errorf("dwconv: bad geometry %+v", g)
	case g.PT >= g.K+(g.OH-1)*g.S || g.PL >= g.K+(g.OW-1)*g.S:
		return fmt.Errorf("dwconv: geometry %+v reads no input", g)
	}
	return nil
}

// narrowKernels turns on the narrow kernels (see narrowTab) of the
// avx512 path; tests turn them off to run the other kernels on narrow
// planes (both give the same bits).
var narrowKernels = true

// lanes is the widest vector any kernel uses, in float32 values.
const lanes = 16

// scratch is a padded plane and the geometry it was last used for: its
// zero border stays zero from one plane of a geometry to the next, so
// only the input is copied in.
type scratch struct {
	g   Geom
	buf []float32
}

// scratches recycles padded planes.
var scratches sync.Pool

// args is the kernels' argument block (its field offsets are written
// into gen_amd64.go; TestArgsLayout checks them). The kernels advance
// the cursors x, y, w and bias from one plane to the next, count n down
// and use rows as a counter.
type args struct {
	x, y, w, bias *float32
	n             int
	bufIn, buf    *float32 // the padded plane at (PT, PL), and at (0, 0)
	ldx           int      // values per padded row
	h, wd         int      // the input plane
	oh, ow        int      // the output plane
	xs, ys, bs    int      // bytes from one plane's input, output and bias to the next
	rows          int
	tab           *narrowTab // the narrow kernels' permutations and masks
	pt            int
}

// narrowTab drives the narrow kernels (planes at most 16 values wide in
// and out, read straight from the input, one row per vector): lane o of
// tap column j takes lane idx[j][o] of the input row, o·S+j-PL, where
// mask[j] has bit o set; the other lanes are zero (the left and right
// padding). wmask has the W lanes of an input row, omask the OW of an
// output row.
type narrowTab struct {
	idx          [5][16]int32
	mask         [5]uint16
	wmask, omask uint16
}

// narrowOK reports whether the narrow kernels take g.
func narrowOK(g Geom) bool { return g.W <= lanes && g.OW <= lanes }

// lastTab is the narrow table made last, with its geometry: the tasks
// of a layer, one after the other and side by side, all want the same
// (and never write it).
var lastTab atomic.Pointer[geomTab]

type geomTab struct {
	g Geom
	t narrowTab
}

// narrowTabOf returns the narrow table of g, made again only when g is
// not the last one's geometry.
func narrowTabOf(g Geom) *narrowTab {
	if gt := lastTab.Load(); gt != nil && gt.g == g {
		return &gt.t
	}
	gt := &geomTab{g: g, t: newNarrowTab(g)}
	lastTab.Store(gt)
	return &gt.t
}

// newNarrowTab returns the table of g.
func newNarrowTab(g Geom) narrowTab {
	var t narrowTab
	for j := range g.K {
		for o := range g.OW {
			if c := o*g.S + j - g.PL; c >= 0 && c < g.W {
				t.idx[j][o] = int32(c)
				t.mask[j] |= 1 << o
			}
		}
	}
	t.wmask = uint16(1<<g.W - 1)
	t.omask = uint16(1<<g.OW - 1)
	return t
}

// Forward sets y (OH·OW values) to the depthwise convolution of the
// plane x (H·W values) with the filter w (K·K values, row-major) plus
// bias. It panics when Supported(g) is false or a slice is too short.
func Forward(g Geom, x, w []float32, bias float32, y []float32) {
	b := [1]float32{bias}
	ForwardN(g, 1, x, 0, w, b[:], y)
}

// ForwardN computes n planes as Forward does: plane p reads the input
// x[p·xs:] (H·W values), the filter w[p·K²:] and the bias bias[p] (0
// when bias is nil), and writes y[p·OH·OW:]. A stride xs of 0 gives
// every plane the same input (a depthwise layer's channel multiplier).
// Each plane comes out as Forward computes it alone. It panics when
// Supported(g) is false, n or xs is negative, or a slice is too short.
func ForwardN(g Geom, n int, x []float32, xs int, w, bias []float32, y []float32) {
	fwd := kernelFor(path, g.K, g.S)
	if fwd == 0 {
		panic(fmt.Sprintf("dwconv: no kernel for %dx%d stride %d on path %s", g.K, g.K, g.S, path))
	}
	if err := g.valid(); err != nil {
		panic(err)
	}
	if n < 0 || xs < 0 {
		panic(fmt.Sprintf("dwconv: %d planes, input stride %d", n, xs))
	}
	if n == 0 {
		return
	}
	hw, kk, ohw := g.H*g.W, g.K*g.K, g.OH*g.OW
	x, w, y = x[:(n-1)*xs+hw], w[:n*kk], y[:n*ohw]
	var zero float32
	b, bs := &zero, 0
	if bias != nil {
		b, bs = &bias[:n][0], 4
	}
	if narrow := kernelNarrow(path, g); narrow != 0 {
		a := args{
			x: &x[0], y: &y[0], w: &w[0], bias: b, n: n,
			h: g.H, wd: g.W, oh: g.OH, ow: g.OW,
			xs: 4 * xs, ys: 4 * ohw, bs: bs, tab: narrowTabOf(g), pt: g.PT,
		}
		run(narrow, &a)
		return
	}
	ldx, rows := g.padded()
	s, _ := scratches.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	defer scratches.Put(s)
	if s.g != g {
		// 64-byte aligned rows; slack for the kernels' reads past the end
		n := rows*ldx + 2*lanes*g.S + g.K + lanes
		if cap(s.buf) < n {
			s.buf = make([]float32, n)
		}
		s.buf = align64(s.buf[:cap(s.buf)])
		clear(s.buf[:rows*ldx])
		s.g = g
	}
	a := args{
		x: &x[0], y: &y[0], w: &w[0], bias: b, n: n,
		bufIn: &s.buf[g.PT*ldx+g.PL], buf: &s.buf[0], ldx: ldx,
		h: g.H, wd: g.W, oh: g.OH, ow: g.OW,
		xs: 4 * xs, ys: 4 * ohw, bs: bs,
	}
	run(fwd, &a)
}

// padded returns the row length, a multiple of 16 values, and the
// number of rows of the padded plane: wide and tall enough for every
// window, and for the input.
func (g Geom) padded() (ldx, rows int) {
	ldx = max((g.OW-1)*g.S+g.K, g.PL+g.W)
	ldx = (ldx + lanes - 1) &^ (lanes - 1)
	rows = max((g.OH-1)*g.S+g.K, g.PT+g.H)
	return ldx, rows
}

// align64 returns s from its first element on a 64-byte boundary; s
// must have 15 elements to spare.
func align64(s []float32) []float32 {
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(s))) & 63)
	if off == 0 {
		return s
	}
	return s[(64-off)/4:]
}
