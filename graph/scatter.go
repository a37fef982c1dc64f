package graph

import (
	"fmt"
	"slices"

	"github.com/graftml/graft/onnx"
)

// ScatterElements, Scatter (its name at opsets 9 and 10) and ScatterND:
// a copy of data with the elements the indices select replaced by
// updates, or combined with them (reduction add or mul from opset 16, max
// or min from 18). The
// indices must be known at build time, like GatherElements': they become
// a fixed map from each update to the data element it writes, checked
// against data's shape when the graph is built, so an index out of range
// is an error naming the node, never a fault at run time.

// scatterKernel writes updates (input 1) into a copy of data (input 0)
// at the flat positions dst.
type scatterKernel struct {
	shape []int
	dst   []int32 // per update element, the data element it goes to
	// reduction: "none", "add", "mul", "max" or "min"
	reduction string
}

func (k *scatterKernel) check(in []*onnx.Tensor) error {
	if len(in) != 2 || in[0].Len() != onnx.NumElems(k.shape) || in[1].Len() != len(k.dst) || in[0].DType != in[1].DType {
		return fmt.Errorf("scatter: data and updates do not fit the shapes it was built for (%v, %d updates)", k.shape, len(k.dst))
	}
	return nil
}

func (k *scatterKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if err := k.check(in); err != nil {
		return nil, err
	}
	out := in[0].Clone()
	out.Shape = append([]int(nil), k.shape...)
	if out.DType == onnx.Int64 {
		scatterInto(out.I, in[1].I, k.dst, k.reduction)
	} else {
		scatterInto(out.F, in[1].F, k.dst, k.reduction)
	}
	return out, nil
}

func scatterInto[T int64 | float32](out, upd []T, dst []int32, reduction string) {
	for i, j := range dst {
		switch reduction {
		case "add":
			out[j] += upd[i]
		case "mul":
			out[j] *= upd[i]
		case "max":
			out[j] = max(out[j], upd[i])
		case "min":
			out[j] = min(out[j], upd[i])
		default:
			out[j] = upd[i]
		}
	}
}

// backward: without a reduction dY flows to the last update written to
// each element (the one that stays) and to the data elements no update
// overwrote; with add to both; with mul each factor gets dY times the
// product of the others written to its element; with max and min to the
// value that won (the first of equal ones, data before updates).
func (k *scatterKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	if err := k.check(in); err != nil {
		return nil, err
	}
	data, upd := in[0].F, in[1].F
	g := onnx.NewFloat(in[i].Shape, nil)
	switch k.reduction {
	case "add":
		if i == 0 {
			copy(g.F, dy.F)
			return g, nil
		}
		for u, j := range k.dst {
			g.F[u] = dy.F[j]
		}
	case "mul":
		if i == 0 {
			prod := make([]float64, len(data))
			for j := range prod {
				prod[j] = 1
			}
			for u, j := range k.dst {
				prod[j] *= float64(upd[u])
			}
			for j := range g.F {
				g.F[j] = float32(float64(dy.F[j]) * prod[j])
			}
			return g, nil
		}
		// the other factors of element j: data[j] and every other update
		// written there, as prefix and suffix products (no division, for
		// zeros; linear in the updates however many share an element)
		byDst := map[int32][]int{}
		for u, j := range k.dst {
			byDst[j] = append(byDst[j], u)
		}
		for j, us := range byDst {
			pre := float64(data[j])
			suf := make([]float64, len(us)+1)
			suf[len(us)] = 1
			for a := len(us) - 1; a >= 0; a-- {
				suf[a] = suf[a+1] * float64(upd[us[a]])
			}
			for a, u := range us {
				g.F[u] = float32(float64(dy.F[j]) * pre * suf[a+1])
				pre *= float64(upd[u])
			}
		}
	case "max", "min":
		// win[j] is the update that won element j, -1 for data
		win := make(map[int32]int, len(k.dst))
		best := map[int32]float32{}
		for u, j := range k.dst {
			b, ok := best[j]
			if !ok {
				b, win[j] = data[j], -1
			}
			if (k.reduction == "max" && upd[u] > b) || (k.reduction == "min" && upd[u] < b) {
				b, win[j] = upd[u], u
			}
			best[j] = b
		}
		if i == 0 {
			copy(g.F, dy.F)
			for j, u := range win {
				if u >= 0 {
					g.F[j] = 0
				}
			}
			return g, nil
		}
		for j, u := range win {
			if u >= 0 {
				g.F[u] = dy.F[j]
			}
		}
	default:
		last := make(map[int32]int, len(k.dst))
		for u, j := range k.dst {
			last[j] = u
		}
		if i == 0 {
			copy(g.F, dy.F)
			for j := range last {
				g.F[j] = 0
			}
			return g, nil
		}
		for j, u := range last {
			g.F[u] = dy.F[j]
		}
	}
	return g, nil
}

// scatterCommon reads data, the build-time indices and updates, and the
// reduction attribute (from opset 16).
func (c *nodeCtx) scatterCommon() (data, upd *value, idx *onnx.Tensor, reduction string, err error) {
	if data, err = c.input(0); err != nil {
		return
	}
	if idx, err = c.constInput(1); err != nil {
		return
	}
	if upd, err = c.input(2); err != nil {
		return
	}
	if idx.DType != onnx.Int64 {
		err = c.errorf("indices must be an integer tensor")
		return
	}
	if data.dtype != upd.dtype {
		err = c.errorf("data is %s but updates %s", data.dtype, upd.dtype)
		return
	}
	reduction = "none"
	if c.opset >= 16 {
		if reduction, err = c.attrString("reduction", "none"); err != nil {
			return
		}
	} else if c.has("reduction") {
		err = c.errorf("attribute \"reduction\" is not part of %s at opset %d", c.n.OpType, c.opset)
		return
	}
	switch {
	case reduction == "none" || reduction == "add" || reduction == "mul":
	case (reduction == "max" || reduction == "min") && c.opset >= 18:
	default:
		err = c.errorf("reduction %q is not one %s reads at opset %d", reduction, c.n.OpType, c.opset)
	}
	return
}

// scatterIndex returns index v of an axis of size n, negative ones
// counted from the end, or an error naming the node.
func (c *nodeCtx) scatterIndex(v int64, n, axis int) (int, error) {
	w := v
	if w < 0 {
		w += int64(n)
	}
	if w < 0 || w >= int64(n) {
		return 0, c.errorf("index %d is out of range for axis %d of size %d", v, axis, n)
	}
	return int(w), nil
}

func buildScatterElements(c *nodeCtx) error {
	data, upd, it, reduction, err := c.scatterCommon()
	if err != nil {
		return err
	}
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	rank := len(data.shape)
	if rank == 0 {
		return c.errorf("data is a scalar: it needs at least one axis")
	}
	if len(it.Shape) != rank || !slices.Equal(it.Shape, upd.shape) {
		return c.errorf("indices %v and updates %v must have one shape, of data's rank %d", it.Shape, upd.shape, rank)
	}
	if axis, err = c.normAxis(axis, rank); err != nil {
		return err
	}
	for d := range rank {
		if it.Shape[d] > data.shape[d] && d != axis {
			return c.errorf("indices %v are larger than data %v on axis %d", it.Shape, data.shape, d)
		}
	}
	xs := rowMajorStrides(data.shape)
	dst := make([]int32, len(it.I))
	co := make([]int, rank)
	for i, v := range it.I {
		unravelInto(i, it.Shape, co)
		p, err := c.scatterIndex(v, data.shape[axis], axis)
		if err != nil {
			return err
		}
		co[axis] = p
		off := 0
		for d := range rank {
			off += co[d] * xs[d]
		}
		dst[i] = int32(off)
	}
	k := &scatterKernel{shape: data.shape, dst: dst, reduction: reduction}
	return c.applyMove(0, k, data.shape, data.dtype, 0, 2)
}

func buildScatterND(c *nodeCtx) error {
	data, upd, it, reduction, err := c.scatterCommon()
	if err != nil {
		return err
	}
	rank := len(data.shape)
	if len(it.Shape) == 0 {
		return c.errorf("indices must have at least one axis")
	}
	q := it.Shape[len(it.Shape)-1]
	if q < 1 || q > rank {
		return c.errorf("the last axis of indices %v must be between 1 and data's rank %d", it.Shape, rank)
	}
	want := append(append([]int{}, it.Shape[:len(it.Shape)-1]...), data.shape[q:]...)
	if !slices.Equal(upd.shape, want) {
		return c.errorf("updates have shape %v; indices %v and data %v need %v", upd.shape, it.Shape, data.shape, want)
	}
	xs := rowMajorStrides(data.shape)
	slice := onnx.NumElems(data.shape[q:])
	dst := make([]int32, 0, onnx.NumElems(upd.shape))
	for t := 0; t+q <= len(it.I); t += q {
		off := 0
		for d, v := range it.I[t : t+q] {
			p, err := c.scatterIndex(v, data.shape[d], d)
			if err != nil {
				return err
			}
			off += p * xs[d]
		}
		for s := range slice {
			dst = append(dst, int32(off+s))
		}
	}
	k := &scatterKernel{shape: data.shape, dst: dst, reduction: reduction}
	return c.applyMove(0, k, data.shape, data.dtype, 0, 2)
}
