package dwconv

import (
	"fmt"
	"sync"
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
	return kernelFor(path, g.K, g.S) != nil && g.valid() == nil
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

// Forward sets y (OH·OW values) to the depthwise convolution of the
// plane x (H·W values) with the filter w (K·K values, row-major) plus
// bias. It panics when Supported(g) is false or a slice is too short.
func Forward(g Geom, x, w []float32, bias float32, y []float32) {
	fwd := kernelFor(path, g.K, g.S)
	if fwd == nil {
		panic(fmt.Sprintf("dwconv: no kernel for %dx%d stride %d on path %s", g.K, g.K, g.S, path))
	}
	if err := g.valid(); err != nil {
		panic(err)
	}
	x, w, y = x[:g.H*g.W], w[:g.K*g.K], y[:g.OH*g.OW]
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
	for r := range g.H {
		copy(s.buf[(g.PT+r)*ldx+g.PL:][:g.W], x[r*g.W:][:g.W])
	}
	fwd(&s.buf[0], ldx, &y[0], g.OW, g.OH, &w[0], bias)
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

// pad writes x into buf (rows×ldx) at row PT, column PL, and zeros around
// it.
func pad(g Geom, x, buf []float32, ldx, rows int) {
	clear(buf[:rows*ldx])
	for r := range g.H {
		copy(buf[(g.PT+r)*ldx+g.PL:][:g.W], x[r*g.W:][:g.W])
	}
}
