package graph

import (
	"fmt"

	"github.com/graftml/graft/onnx"
)

// ConvTranspose over 1-D and 2-D inputs. It is the adjoint of a Conv
// whose input has ConvTranspose's output shape: its forward pass is that
// Conv's gradient with respect to its input (a matrix multiply by Wᵀ and
// col2im), its gradient with respect to X is that Conv's forward pass
// over dY, and its gradient with respect to W is that Conv's weight
// gradient with the roles of X and dY exchanged. ONNX's W layout
// [C, M/group, kH, kW] is exactly the Conv's [outC, inC/group, kH, kW].

// transposeAxis computes one spatial axis of a ConvTranspose: the output
// length and the pads at both ends, following ONNX (and ONNX Runtime):
// with output_shape or a SAME auto_pad the pads come from the total
// padding stride*(in-1) + outPad + dilated kernel - out, the odd one at
// the tail for SAME_UPPER and at the head otherwise (SAME_LOWER, or
// NOTSET with output_shape), as ONNX's definition, its backend test data
// and ONNX Runtime 1.30 have it. A negative total
// (an output_shape larger than the natural one) extends the tail.
func transposeAxis(in, k, s, d, outPad, head, tail, out int, autoPad string) (o, ph, pt int, err error) {
	if k < 1 || s < 1 || d < 1 {
		return 0, 0, 0, fmt.Errorf("kernel %d, stride %d and dilation %d must be positive", k, s, d)
	}
	if outPad < 0 || head < 0 || tail < 0 {
		return 0, 0, 0, fmt.Errorf("negative pads %d, %d or output_padding %d", head, tail, outPad)
	}
	if float64(s)*float64(in)+float64(outPad)+float64(k)*float64(d) > 1<<40 {
		return 0, 0, 0, fmt.Errorf("stride %d, kernel %d, dilation %d and output_padding %d give an output too large", s, k, d, outPad)
	}
	full := s*(in-1) + outPad + (k-1)*d + 1
	switch autoPad {
	case "NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return 0, 0, 0, fmt.Errorf("unknown auto_pad %q", autoPad)
	}
	if out <= 0 && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
		out = in * s
	}
	switch {
	case out > 0:
		total := full - out
		switch {
		case total < 0:
			head, tail = 0, total
		case autoPad == "SAME_UPPER":
			head, tail = total/2, total-total/2
		default:
			head, tail = total-total/2, total/2
		}
	case autoPad == "VALID":
		head, tail = 0, 0
	}
	o = full - head - tail
	if o < 1 {
		return 0, 0, 0, fmt.Errorf("the output would have length %d", o)
	}
	return o, head, tail, nil
}

func buildConvTranspose(c *nodeCtx) error {
	x, w, group, inputs, err := c.convOperands(func(w *value, group int) int { return w.shape[1] * group })
	if err != nil {
		return err
	}
	n, ch := x.shape[0], x.shape[1]
	m := w.shape[1] * group
	if w.shape[0] != ch || ch%group != 0 {
		return c.errorf("group %d does not fit input channels %d (X %v) and weight shape %v", group, ch, x.shape, w.shape)
	}
	sp := len(x.shape) - 2
	strides, dil, pads, autoPad, err := c.readWindowAttrs(sp, true)
	if err != nil {
		return err
	}
	outPad, err := c.attrInts("output_padding", make([]int, sp))
	if err != nil {
		return err
	}
	outShape, err := c.attrInts("output_shape", nil)
	if err != nil {
		return err
	}
	if len(outPad) == 0 {
		outPad = make([]int, sp)
	}
	switch len(outShape) {
	case 0:
		outShape = make([]int, sp)
	case sp:
	case sp + 2: // some exporters write N and C too
		outShape = outShape[2:]
	default:
		return c.errorf("output_shape %v does not fit %d spatial axes", outShape, sp)
	}
	if len(outPad) != sp {
		return c.errorf("output_padding %v does not fit %d spatial axes", outPad, sp)
	}
	// g is the window of the adjoint Conv: its input plane is the
	// ConvTranspose's output, its output plane the ConvTranspose's input.
	g := window{h: 1, kh: 1, sh: 1, dh: 1, oh: 1}
	axis := func(i int, h, oh, kh, sh, dh, pt, pb *int) error {
		o, head, tail, err := transposeAxis(x.shape[2+i], w.shape[2+i], strides[i], dil[i], outPad[i], pads[i], pads[i+sp], outShape[i], autoPad)
		if err != nil {
			return c.errorf("spatial axis %d of input shape %v: %v", i, x.shape, err)
		}
		*h, *oh, *kh, *sh, *dh, *pt = o, x.shape[2+i], w.shape[2+i], strides[i], dil[i], head
		*pb = tail - outPad[i] // the Conv's view: rows past it are unread
		return nil
	}
	if sp == 2 {
		if err := axis(0, &g.h, &g.oh, &g.kh, &g.sh, &g.dh, &g.pt, &g.pb); err != nil {
			return err
		}
	}
	if err := axis(sp-1, &g.w, &g.ow, &g.kw, &g.sw, &g.dw, &g.pl, &g.pr); err != nil {
		return err
	}
	k := &convTransposeKernel{conv: newConvKernel(g, len(x.shape), n, m, ch, group, false), bias: len(inputs) == 3}
	k.outShape = []int{n, m, g.h, g.w}
	if sp == 1 {
		k.outShape = []int{n, m, g.w}
	}
	if err := c.checkSize(k.outShape); err != nil {
		return err
	}
	return c.apply(0, k, k.outShape, onnx.Float32, inputs...)
}

// convTransposeKernel is ConvTranspose through the adjoint Conv kernel
// conv (built without a bias; X is its dY, Y its dX).
type convTransposeKernel struct {
	conv     *convKernel
	bias     bool
	outShape []int
}

func (k *convTransposeKernel) check(in []*onnx.Tensor) error {
	if len(in) < 2 || (k.bias && len(in) < 3) {
		return fmt.Errorf("ConvTranspose needs X, W and, when built with one, B")
	}
	for i, t := range in {
		if t.DType != onnx.Float32 {
			return fmt.Errorf("input %d must be float32", i)
		}
	}
	cv := k.conv
	if len(in[0].F) != cv.n*cv.m*cv.g.oh*cv.g.ow || len(in[1].F) != cv.wN {
		return fmt.Errorf("X or W has the wrong size for this ConvTranspose")
	}
	if k.bias && len(in[2].F) != cv.c {
		return fmt.Errorf("B has %d elements; want %d", len(in[2].F), cv.c)
	}
	return nil
}

func (k *convTransposeKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if err := k.check(in); err != nil {
		return nil, err
	}
	y := k.conv.gradX(in[1].F, in[0].F, k.outShape)
	if k.bias {
		hw := k.conv.g.h * k.conv.g.w
		forEachPar(0, k.conv.n*k.conv.c, func(u int) {
			b := in[2].F[u%k.conv.c]
			for j := range y.F[u*hw:][:hw] {
				y.F[u*hw+j] += b
			}
		})
	}
	return y, nil
}

func (k *convTransposeKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if err := k.check(in); err != nil {
		return nil, err
	}
	if len(dy.F) != onnx.NumElems(k.outShape) {
		return nil, fmt.Errorf("dY has %d elements; want %d", len(dy.F), onnx.NumElems(k.outShape))
	}
	cv := k.conv
	switch i {
	case 0:
		dx, err := cv.forward([]*onnx.Tensor{dy, in[1]})
		if err != nil {
			return nil, err
		}
		dx.Shape = append([]int(nil), in[0].Shape...)
		return dx, nil
	case 1:
		return cv.gradW(dy.F, in[0].F, in[1].Shape), nil
	case 2:
		return biasGrad(dy.F, cv.n, cv.c, cv.g.h*cv.g.w, in[2].Shape), nil
	}
	return nil, fmt.Errorf("ConvTranspose has no input %d", i)
}
