package graph

import (
	"fmt"
	"slices"
	"strings"

	"github.com/graftml/graft/onnx"
)

// Einsum of one or two operands. Everything reduces to one primitive and
// its adjoint: gathering an operand into a contiguous tensor over a chosen
// order of its labels, summing the labels left out (a repeated label
// reads the diagonal). One operand is one gather. Two operands are
// gathered into [batch, m, k] and [batch, k, n] (batch labels are in
// both operands and the output, m and n in one operand and the output, k
// in both operands only), multiplied batch by batch, and the product is
// gathered into the output's order. Ellipses become fresh labels, aligned
// from the right.

// labelView is an operand seen through its labels: each distinct label's
// size and its stride in the operand (the sum of its axes' strides, for a
// repeated label).
type labelView struct {
	labels  []rune
	dims    []int
	strides []int
}

// gather returns src (viewed through v) as a contiguous tensor over the
// labels order, summing the labels of v that order leaves out; with
// adjoint, it adds the contiguous dst back into an operand of n elements.
func (v *labelView) gather(src []float32, order []rune, n int, adjoint bool) []float32 {
	outStride := make([]int, len(v.labels))
	size := 1
	for i := len(order) - 1; i >= 0; i-- {
		j := slices.Index(v.labels, order[i])
		outStride[j] = size
		size *= v.dims[j]
	}
	var dst []float32
	if adjoint {
		dst = make([]float32, n)
	} else {
		dst = make([]float32, size)
	}
	total := 1
	for _, d := range v.dims {
		total *= d
	}
	if total == 0 {
		return dst
	}
	idx := make([]int, len(v.labels))
	in, out := 0, 0
	for range total {
		if adjoint {
			dst[in] += src[out]
		} else {
			dst[out] += src[in]
		}
		for a := len(idx) - 1; a >= 0; a-- { // odometer
			idx[a]++
			in += v.strides[a]
			out += outStride[a]
			if idx[a] < v.dims[a] {
				break
			}
			in -= v.strides[a] * v.dims[a]
			out -= outStride[a] * v.dims[a]
			idx[a] = 0
		}
	}
	return dst
}

// einsumKernel computes one Einsum node.
type einsumKernel struct {
	ops      []labelView // the operands
	inShapes [][]int
	out      labelView // the output, contiguous, in its own label order
	outShape []int
	// two operands: the label orders of the gathered operands and of the
	// product, and the matrix sizes
	orderA, orderB, orderC []rune
	nb, m, n, k            int
}

func (e *einsumKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if len(in) != len(e.ops) {
		return nil, fmt.Errorf("Einsum: %d operands, built for %d", len(in), len(e.ops))
	}
	for i, t := range in {
		if t.DType != onnx.Float32 || t.Len() != onnx.NumElems(e.inShapes[i]) {
			return nil, fmt.Errorf("Einsum: operand %d does not fit shape %v", i, e.inShapes[i])
		}
	}
	out := onnx.NewFloat(e.outShape, nil)
	if len(in) == 1 {
		copy(out.F, e.ops[0].gather(in[0].F, e.out.labels, 0, false))
		return out, nil
	}
	a := e.ops[0].gather(in[0].F, e.orderA, 0, false)
	b := e.ops[1].gather(in[1].F, e.orderB, 0, false)
	c := batchMul(e.nb, false, false, e.m, e.n, e.k, a, b)
	cv := e.productView()
	copy(out.F, cv.gather(c, e.out.labels, 0, false))
	return out, nil
}

// batchMul returns the nb products op(A_b)·op(B_b) (m×n) of contiguous
// row-major matrices, op(A_b) m×k and op(B_b) k×n.
func batchMul(nb int, ta, tb bool, m, n, k int, a, b []float32) []float32 {
	c := make([]float32, nb*m*n)
	if k == 0 {
		return c // no terms to add
	}
	lda, ldb := k, n
	if ta {
		lda = m
	}
	if tb {
		ldb = k
	}
	for bi := range nb {
		sgemm(ta, tb, m, n, k, 1, a[bi*m*k:], lda, b[bi*k*n:], ldb, 0, c[bi*m*n:], n)
	}
	return c
}

// productView views the contiguous product [batch, m, n] through its labels.
func (e *einsumKernel) productView() *labelView {
	v := &labelView{labels: e.orderC}
	size := 1
	v.strides = make([]int, len(e.orderC))
	v.dims = make([]int, len(e.orderC))
	for i := len(e.orderC) - 1; i >= 0; i-- {
		v.dims[i] = e.out.dims[slices.Index(e.out.labels, e.orderC[i])]
		v.strides[i] = size
		size *= v.dims[i]
	}
	return v
}

func (e *einsumKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	g := onnx.NewFloat(e.inShapes[i], nil)
	if len(in) == 1 {
		copy(g.F, e.ops[0].gather(dy.F, e.out.labels, len(g.F), true))
		return g, nil
	}
	// dC in the product's layout: the output's adjoint gather is a
	// permutation, so gathering dY by the product's order is the same
	dc := e.out.gather(dy.F, e.orderC, 0, false)
	if i == 0 {
		b := e.ops[1].gather(in[1].F, e.orderB, 0, false)
		da := batchMul(e.nb, false, true, e.m, e.k, e.n, dc, b)
		copy(g.F, e.ops[0].gather(da, e.orderA, len(g.F), true))
		return g, nil
	}
	a := e.ops[0].gather(in[0].F, e.orderA, 0, false)
	db := batchMul(e.nb, true, false, e.k, e.n, e.m, a, dc)
	copy(g.F, e.ops[1].gather(db, e.orderB, len(g.F), true))
	return g, nil
}

// parseEinsum splits an equation into per-operand label lists and the
// output's (implicit: the labels used once, in alphabetical order), with
// each ellipsis replaced by fresh labels for the operand's extra axes.
func parseEinsum(eq string, ranks []int) (ins [][]rune, out []rune, err error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(ranks) {
		return nil, nil, fmt.Errorf("equation %q has %d operands; the node has %d inputs", eq, len(terms), len(ranks))
	}
	// fresh labels for ellipsis axes: from the end of the alphabet of
	// private-use runes, the last axis the last label
	const fresh = 0xE000
	maxEll := 0
	expand := func(term string, rank int) ([]rune, error) {
		pre, post, hasEll := strings.Cut(term, "...")
		if strings.Contains(post, "...") {
			return nil, fmt.Errorf("term %q has more than one ellipsis", term)
		}
		named := []rune(pre + post)
		for _, r := range named {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return nil, fmt.Errorf("term %q: label %q is not a letter", term, r)
			}
		}
		e := rank - len(named)
		if (!hasEll && e != 0) || e < 0 {
			return nil, fmt.Errorf("term %q does not fit an operand of rank %d", term, rank)
		}
		maxEll = max(maxEll, e)
		labels := []rune(pre)
		for j := range e {
			labels = append(labels, rune(fresh+64-e+j))
		}
		return append(labels, []rune(post)...), nil
	}
	count := map[rune]int{}
	for i, t := range terms {
		l, err := expand(t, ranks[i])
		if err != nil {
			return nil, nil, err
		}
		ins = append(ins, l)
		for _, r := range l {
			count[r]++
		}
	}
	if !explicit {
		for r, n := range count {
			if n == 1 && r < fresh {
				out = append(out, r)
			}
		}
		slices.Sort(out)
		var ell []rune
		for j := range maxEll {
			ell = append(ell, rune(fresh+64-maxEll+j))
		}
		return ins, append(ell, out...), nil
	}
	pre, post, hasEll := strings.Cut(rhs, "...")
	out = []rune(pre)
	if hasEll {
		for j := range maxEll {
			out = append(out, rune(fresh+64-maxEll+j))
		}
	}
	out = append(out, []rune(post)...)
	seen := map[rune]bool{}
	for _, r := range out {
		if seen[r] || count[r] == 0 {
			return nil, nil, fmt.Errorf("output label %q appears twice or in no operand", r)
		}
		seen[r] = true
	}
	return ins, out, nil
}

func buildEinsum(c *nodeCtx) error {
	eq, err := c.attrString("equation", "")
	if err != nil {
		return err
	}
	if len(c.in) < 1 || len(c.in) > 2 {
		return c.errorf("graft reads Einsum of one or two operands; this node has %d", len(c.in))
	}
	var ranks []int
	k := &einsumKernel{}
	for i := range c.in {
		x, err := c.input(i)
		if err != nil {
			return err
		}
		if x.dtype != onnx.Float32 {
			return c.errorf("operand %q is %s; graft reads float Einsum", x.name, x.dtype)
		}
		ranks = append(ranks, len(x.shape))
		k.inShapes = append(k.inShapes, x.shape)
	}
	ins, outLabels, err := parseEinsum(eq, ranks)
	if err != nil {
		return c.errorf("%v", err)
	}
	size := map[rune]int{}
	for i, labels := range ins {
		v := labelView{}
		st := rowMajorStrides(k.inShapes[i])
		for a, r := range labels {
			d := k.inShapes[i][a]
			if s, ok := size[r]; ok && s != d {
				return c.errorf("label %q has size %d and %d (operands %v)", r, s, d, k.inShapes)
			}
			size[r] = d
			if j := slices.Index(v.labels, r); j >= 0 {
				v.strides[j] += st[a]
				continue
			}
			v.labels = append(v.labels, r)
			v.dims = append(v.dims, d)
			v.strides = append(v.strides, st[a])
		}
		k.ops = append(k.ops, v)
	}
	k.out.labels = outLabels
	k.outShape = []int{}
	for _, r := range outLabels {
		k.out.dims = append(k.out.dims, size[r])
		k.outShape = append(k.outShape, size[r])
	}
	k.out.strides = rowMajorStrides(k.outShape)
	if len(ins) == 2 {
		a, b := k.ops[0].labels, k.ops[1].labels
		var batch, mm, nn, kk []rune
		for _, r := range a {
			inB, inOut := slices.Contains(b, r), slices.Contains(outLabels, r)
			switch {
			case inB && inOut:
				batch = append(batch, r)
			case inOut:
				mm = append(mm, r)
			case inB:
				kk = append(kk, r)
			}
		}
		for _, r := range b {
			if !slices.Contains(a, r) && slices.Contains(outLabels, r) {
				nn = append(nn, r)
			}
		}
		prod := func(ls []rune) int {
			p := 1
			for _, r := range ls {
				p *= size[r]
			}
			return p
		}
		k.nb, k.m, k.n, k.k = prod(batch), prod(mm), prod(nn), prod(kk)
		k.orderA = slices.Concat(batch, mm, kk)
		k.orderB = slices.Concat(batch, kk, nn)
		k.orderC = slices.Concat(batch, mm, nn)
	}
	if err := c.checkSize(k.outShape); err != nil {
		return err
	}
	inputs := []int{0}
	if len(ins) == 2 {
		inputs = append(inputs, 1)
	}
	return c.apply(0, k, k.outShape, onnx.Float32, inputs...)
}
