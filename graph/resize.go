package graph

import (
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
)

// Resize (opsets 10-21) and Upsample (7-9). Every mode is a fixed linear
// map from input to output elements, separable per axis: each axis gives
// every output coordinate a few input coordinates with weights (1 for
// nearest, 2 for linear, 4 for cubic), and an output element is the sum
// over the product of its axes' taps. The gradient is the transposed map.

var resizeOps = map[string]opDef{
	"Resize":   {build: buildResize, grad: true, since: 10},
	"Upsample": {build: buildResize, grad: true, until: 9},
}

// tap is one input coordinate of an output coordinate along an axis.
type tap struct {
	src int
	w   float64
}

// resizeKernel applies per-axis taps; an output coordinate with no taps
// on some axis (tf_crop_and_resize outside the crop) is extrap.
type resizeKernel struct {
	in, out []int
	taps    [][][]tap // axis -> output coordinate -> taps
	extrap  float32
}

func (k *resizeKernel) each(fn func(o int, src int, w float64), outside func(o int)) {
	rank := len(k.out)
	inSt := rowMajorStrides(k.in)
	co := make([]int, rank)
	n := onnx.NumElems(k.out)
	type acc struct {
		off int
		w   float64
	}
	cur := []acc{}
	for o := range n {
		unravelInto(o, k.out, co)
		cur = append(cur[:0], acc{0, 1})
		empty := false
		for d := range rank {
			ts := k.taps[d][co[d]]
			if len(ts) == 0 {
				empty = true
				break
			}
			if len(ts) == 1 {
				for i := range cur {
					cur[i].off += ts[0].src * inSt[d]
					cur[i].w *= ts[0].w
				}
				continue
			}
			next := make([]acc, 0, len(cur)*len(ts))
			for _, a := range cur {
				for _, t := range ts {
					next = append(next, acc{a.off + t.src*inSt[d], a.w * t.w})
				}
			}
			cur = next
		}
		if empty {
			outside(o)
			continue
		}
		for _, a := range cur {
			fn(o, a.off, a.w)
		}
	}
}

func (k *resizeKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	acc := make([]float64, onnx.NumElems(k.out))
	get := func(i int) float64 {
		if x.DType == onnx.Int64 {
			return float64(x.I[i])
		}
		return float64(x.F[i])
	}
	k.each(func(o, src int, w float64) { acc[o] += w * get(src) }, func(o int) { acc[o] = float64(k.extrap) })
	if x.DType == onnx.Int64 {
		out := onnx.NewInt(k.out, nil)
		for i, v := range acc {
			out.I[i] = int64(math.Round(v))
		}
		return out, nil
	}
	out := onnx.NewFloat(k.out, nil)
	for i, v := range acc {
		out.F[i] = float32(v)
	}
	return out, nil
}

func (k *resizeKernel) backward(_ int, _ []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := make([]float64, onnx.NumElems(k.in))
	k.each(func(o, src int, w float64) { g[src] += w * float64(dy.F[o]) }, func(int) {})
	out := onnx.NewFloat(k.in, nil)
	for i, v := range g {
		out.F[i] = float32(v)
	}
	return out, nil
}

// resizeAxis holds what one axis needs to compute its taps.
type resizeAxis struct {
	in, out      int
	scale        float64 // output/input, as given or from sizes
	roiS, roiE   float64
	mode, coord  string
	nearest      string
	cubicA       float64
	excludeOut   bool
	legacyNearst bool // Upsample and Resize-10: floor of x/scale
}

func (a resizeAxis) taps() [][]tap {
	out := make([][]tap, a.out)
	clamp := func(i int) int { return min(max(i, 0), a.in-1) }
	for o := range a.out {
		x := float64(o)
		lenOut := a.scale * float64(a.in)
		var xo float64
		switch a.coord {
		case "align_corners":
			if lenOut == 1 {
				xo = 0
			} else {
				xo = x * float64(a.in-1) / (lenOut - 1)
			}
		case "asymmetric":
			xo = x / a.scale
		case "tf_half_pixel_for_nn":
			xo = (x + 0.5) / a.scale
		case "tf_crop_and_resize":
			if a.out > 1 {
				xo = a.roiS*float64(a.in-1) + x*(a.roiE-a.roiS)*float64(a.in-1)/float64(a.out-1)
			} else {
				xo = 0.5 * (a.roiS + a.roiE) * float64(a.in-1)
			}
			if xo < 0 || xo > float64(a.in-1) {
				continue // no taps: the extrapolation value
			}
		case "half_pixel_symmetric":
			adj := float64(a.out) / lenOut
			center := float64(a.in) / 2
			xo = center*(1-adj) + (x+0.5)/a.scale - 0.5
		case "pytorch_half_pixel":
			if a.out > 1 {
				xo = (x+0.5)/a.scale - 0.5
			} else {
				xo = 0
			}
		default: // half_pixel
			xo = (x+0.5)/a.scale - 0.5
		}
		switch a.mode {
		case "nearest":
			var i int
			switch {
			case a.legacyNearst:
				i = int(math.Floor(xo))
			case a.nearest == "round_prefer_ceil":
				i = int(math.Floor(xo + 0.5))
			case a.nearest == "floor":
				i = int(math.Floor(xo))
			case a.nearest == "ceil":
				i = int(math.Ceil(xo))
			default: // round_prefer_floor
				i = int(math.Ceil(xo - 0.5))
			}
			out[o] = []tap{{clamp(i), 1}}
		case "linear":
			if a.in == 1 {
				out[o] = []tap{{0, 1}}
				continue
			}
			f := math.Floor(xo)
			r := xo - f
			i := int(f)
			out[o] = []tap{{clamp(i), 1 - r}, {clamp(i + 1), r}}
		case "cubic":
			f := math.Floor(xo)
			r := xo - f
			i := int(f)
			A := a.cubicA
			cs := []float64{
				((A*(r+1)-5*A)*(r+1)+8*A)*(r+1) - 4*A,
				((A+2)*r-(A+3))*r*r + 1,
				((A+2)*(1-r)-(A+3))*(1-r)*(1-r) + 1,
				((A*(2-r)-5*A)*(2-r)+8*A)*(2-r) - 4*A,
			}
			ts := make([]tap, 0, 4)
			sum := 0.0
			for j, cw := range cs {
				src := i - 1 + j
				if a.excludeOut && (src < 0 || src >= a.in) {
					continue
				}
				sum += cw
				ts = append(ts, tap{clamp(src), cw})
			}
			if a.excludeOut && sum != 0 {
				for j := range ts {
					ts[j].w /= sum
				}
			}
			out[o] = ts
		}
	}
	return out
}

func buildResize(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	rank := len(x.shape)
	o, err := readResizeAttrs(c)
	if err != nil {
		return err
	}
	axes, err := resizeAxesOf(c, o, rank)
	if err != nil {
		return err
	}
	na := len(axes)
	roiA := make([]float64, 2*na)
	for j := range na {
		roiA[na+j] = 1
	}
	scales, sizes, err := readResizeInputs(c, o, na, roiA)
	if err != nil {
		return err
	}
	roi := make([]float64, 2*rank)
	for i := range rank {
		roi[rank+i] = 1
	}
	for j, d := range axes {
		roi[d], roi[rank+d] = roiA[j], roiA[na+j]
	}
	keep := 0.0
	if c.opset >= 18 {
		if scales, sizes, keep, err = expandResize18(c, o, axes, x.shape, scales, sizes); err != nil {
			return err
		}
	}
	out, sc, err := resizeOutShape(c, x.shape, scales, sizes)
	if err != nil {
		return err
	}
	if keep != 0 {
		// the policy's one scale maps coordinates on the listed axes
		for _, d := range axes {
			sc[d] = keep
		}
	}
	if o.antialias && o.mode != "nearest" {
		for i := range rank {
			if sc[i] < 1 && out[i] != x.shape[i] {
				return c.errorf("antialias=1 when downscaling (axis %d from %d to %d) is not supported", i, x.shape[i], out[i])
			}
		}
	}
	if err := c.checkSize(out); err != nil {
		return err
	}
	k := &resizeKernel{in: x.shape, out: out, extrap: o.extrap}
	for i := range rank {
		ax := resizeAxis{in: x.shape[i], out: out[i], scale: sc[i], roiS: roi[i], roiE: roi[rank+i],
			mode: o.mode, coord: o.coord, nearest: o.nearest, cubicA: float64(o.cubicA), excludeOut: o.excl, legacyNearst: o.legacy}
		if out[i] == x.shape[i] && sc[i] == 1 && o.coord != "tf_crop_and_resize" {
			ax.mode = "nearest" // identity along this axis
			ax.coord = "asymmetric"
			ax.legacyNearst = true
		}
		k.taps = append(k.taps, ax.taps())
	}
	return c.applyMove(0, k, out, x.dtype, 0)
}

// resizeAttrs are a Resize or Upsample node's attributes, with the
// spec's defaults for its opset.
type resizeAttrs struct {
	mode, coord, nearest string
	legacy               bool // Upsample, or Resize before opset 11
	cubicA, extrap       float32
	excl                 bool
	// from opset 18
	antialias bool
	axes      []int  // the axes roi, scales and sizes are for; nil: all
	keepRatio string // keep_aspect_ratio_policy
}

// readResize18 reads the attributes Resize gained at opset 18.
func readResize18(c *nodeCtx, o *resizeAttrs) error {
	aa, err := c.attrInt("antialias", 0)
	if err != nil {
		return err
	}
	o.antialias = aa != 0
	if c.has("axes") {
		if o.axes, err = c.attrInts("axes", nil); err != nil {
			return err
		}
	}
	if o.keepRatio, err = c.attrString("keep_aspect_ratio_policy", "stretch"); err != nil {
		return err
	}
	if o.keepRatio != "stretch" && o.keepRatio != "not_larger" && o.keepRatio != "not_smaller" {
		return c.errorf("keep_aspect_ratio_policy %q is not defined (stretch, not_larger, not_smaller)", o.keepRatio)
	}
	return nil
}

// resizeAxesOf resolves the axes attribute for an input of rank r: every
// axis when it is absent.
func resizeAxesOf(c *nodeCtx, o resizeAttrs, r int) ([]int, error) {
	if o.axes == nil {
		axes := make([]int, r)
		for i := range axes {
			axes[i] = i
		}
		return axes, nil
	}
	seen := make([]bool, r)
	axes := make([]int, len(o.axes))
	for j, a := range o.axes {
		d, err := c.normAxis(a, r)
		if err != nil {
			return nil, err
		}
		if r == 0 || seen[d] {
			return nil, c.errorf("axes %v: axis %d is given twice or the input is a scalar", o.axes, a)
		}
		seen[d] = true
		axes[j] = d
	}
	return axes, nil
}

// expandResize18 turns scales or sizes given for the axes into values for
// every axis of in (scale 1, the input's size elsewhere), applying
// keep_aspect_ratio_policy to sizes. It returns the scale the policy
// fixed for the listed axes, or 0.
func expandResize18(c *nodeCtx, o resizeAttrs, axes, in []int, scales []float64, sizes []int) ([]float64, []int, float64, error) {
	n := len(axes)
	if scales != nil && len(scales) != n || sizes != nil && len(sizes) != n {
		return nil, nil, 0, c.errorf("scales or sizes hold %d values for the %d axes %v", max(len(scales), len(sizes)), n, axes)
	}
	if scales != nil {
		if o.keepRatio != "stretch" {
			return nil, nil, 0, c.errorf("keep_aspect_ratio_policy %q needs sizes, not scales", o.keepRatio)
		}
		full := make([]float64, len(in))
		for i := range full {
			full[i] = 1
		}
		for j, d := range axes {
			full[d] = scales[j]
		}
		return full, nil, 0, nil
	}
	if sizes == nil {
		return nil, nil, 0, nil
	}
	keep := 0.0
	if o.keepRatio != "stretch" {
		keep = math.Inf(1)
		if o.keepRatio == "not_smaller" {
			keep = math.Inf(-1)
		}
		for j, d := range axes {
			if in[d] == 0 {
				return nil, nil, 0, c.errorf("keep_aspect_ratio_policy %q on an empty axis %d", o.keepRatio, d)
			}
			s := float64(sizes[j]) / float64(in[d])
			if o.keepRatio == "not_larger" {
				keep = min(keep, s)
			} else {
				keep = max(keep, s)
			}
		}
	}
	full := slices.Clone(in)
	for j, d := range axes {
		full[d] = sizes[j]
		if keep != 0 {
			full[d] = int(math.Round(keep * float64(in[d])))
		}
	}
	return nil, full, keep, nil
}

func readResizeAttrs(c *nodeCtx) (resizeAttrs, error) {
	var o resizeAttrs
	var err error
	if o.mode, err = c.attrString("mode", "nearest"); err != nil {
		return o, err
	}
	if o.mode == "bilinear" {
		o.mode = "linear" // Upsample-7's name
	}
	if o.mode != "nearest" && o.mode != "linear" && o.mode != "cubic" {
		return o, c.errorf("mode %q is not supported (nearest, linear, cubic)", o.mode)
	}
	if c.opset < 18 {
		for _, a := range []string{"antialias", "axes", "keep_aspect_ratio_policy"} {
			if c.has(a) {
				return o, c.errorf("attribute %q is part of Resize from opset 18 (this model imports opset %d)", a, c.opset)
			}
		}
	} else if err := readResize18(c, &o); err != nil {
		return o, err
	}
	o.coord, o.nearest = "asymmetric", "floor"
	o.legacy = c.n.OpType == "Upsample" || c.opset < 11
	if !o.legacy {
		if o.coord, err = c.attrString("coordinate_transformation_mode", "half_pixel"); err != nil {
			return o, err
		}
		switch o.coord {
		case "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn":
		case "half_pixel_symmetric":
			if c.opset < 19 {
				return o, c.errorf("coordinate_transformation_mode %q is part of Resize from opset 19 (this model imports opset %d)", o.coord, c.opset)
			}
		default:
			return o, c.errorf("coordinate_transformation_mode %q is not defined", o.coord)
		}
		if o.nearest, err = c.attrString("nearest_mode", "round_prefer_floor"); err != nil {
			return o, err
		}
	}
	if o.mode == "cubic" && o.legacy {
		return o, c.errorf("cubic mode needs opset 11")
	}
	if o.cubicA, err = c.attrFloat("cubic_coeff_a", -0.75); err != nil {
		return o, err
	}
	excl, err := c.attrInt("exclude_outside", 0)
	if err != nil {
		return o, err
	}
	o.excl = excl != 0
	o.extrap, err = c.attrFloat("extrapolation_value", 0)
	return o, err
}

// resizeFloats reads optional input i as float64s; ok is false when it is
// absent or empty.
func resizeFloats(c *nodeCtx, i int) ([]float64, bool, error) {
	if !c.optional(i) {
		return nil, false, nil
	}
	t, err := c.constInput(i)
	if err != nil {
		return nil, false, err
	}
	if t.Len() == 0 {
		return nil, false, nil
	}
	out := make([]float64, t.Len())
	for j := range out {
		if t.DType == onnx.Int64 {
			out[j] = float64(t.I[j])
		} else {
			out[j] = float64(t.F[j])
		}
	}
	return out, true, nil
}

// readResizeInputs reads the scales or sizes (and, for
// tf_crop_and_resize, the roi into roi) by the op's version.
func readResizeInputs(c *nodeCtx, o resizeAttrs, rank int, roi []float64) (scales []float64, sizes []int, err error) {
	switch {
	case c.n.OpType == "Upsample" && c.opset < 9:
		fs, err := c.attrFloats("scales", nil)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range fs {
			scales = append(scales, float64(f))
		}
		return scales, nil, nil
	case o.legacy: // Upsample-9, Resize-10: X, scales
		s, _, err := resizeFloats(c, 1)
		return s, nil, err
	}
	// X, roi, scales, sizes
	if r, ok, err := resizeFloats(c, 1); err != nil {
		return nil, nil, err
	} else if ok && o.coord == "tf_crop_and_resize" {
		if len(r) != 2*rank {
			return nil, nil, c.errorf("roi holds %d values; want %d", len(r), 2*rank)
		}
		copy(roi, r)
	}
	s, ok, err := resizeFloats(c, 2)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		scales = s
	}
	if c.optional(3) {
		sz, ok, err := c.constInts(3)
		if err != nil {
			return nil, nil, err
		}
		if ok && len(sz) > 0 {
			if scales != nil {
				return nil, nil, c.errorf("give scales or sizes, not both")
			}
			sizes = sz
		}
	}
	return scales, sizes, nil
}

// resizeOutShape is the output shape and per-axis scale from sizes or
// scales.
func resizeOutShape(c *nodeCtx, in []int, scales []float64, sizes []int) ([]int, []float64, error) {
	rank := len(in)
	out := make([]int, rank)
	sc := make([]float64, rank)
	switch {
	case sizes != nil:
		if len(sizes) != rank {
			return nil, nil, c.errorf("sizes hold %d values for an input of rank %d", len(sizes), rank)
		}
		for i := range rank {
			out[i] = sizes[i]
			sc[i] = float64(sizes[i]) / float64(in[i])
		}
	case scales != nil:
		if len(scales) != rank {
			return nil, nil, c.errorf("scales hold %d values for an input of rank %d", len(scales), rank)
		}
		for i := range rank {
			if scales[i] <= 0 {
				return nil, nil, c.errorf("scale %g must be positive", scales[i])
			}
			sc[i] = scales[i]
			out[i] = int(math.Floor(float64(in[i]) * float64(float32(scales[i]))))
		}
	default:
		return nil, nil, c.errorf("needs scales or sizes")
	}
	return out, sc, nil
}
