package graph

import (
	"slices"
	"sync"

	"github.com/graftml/graft/graph/internal/gemm"
	"github.com/graftml/graft/onnx"
)

// Matrix products: Gemm and MatMul, both through sgemm.

var linalgOps = map[string]opDef{
	"Gemm":   {build: buildGemm, grad: true, weights: []int{1, 2}},
	"MatMul": {build: buildMatMul, grad: true, weights: []int{1}},
	"Einsum": {build: buildEinsum, grad: true, since: 12}, // einsum.go
}

// gemmKernel is Y = alpha*op(A)*op(B) + beta*C, op(A) m×k, op(B) k×n, C
// (optional) broadcast to [m, n].
type gemmKernel struct {
	transA, transB bool
	alpha, beta    float32
	m, n, k        int
	a, b, c        []int   // input shapes
	hasC           bool    // C is given
	cIdx           []int32 // per element of Y, its C element
	// constB: B never changes for this kernel's life (an inference-only
	// build): a fully connected layer's weights. op(B)ᵀ is then packed
	// once (packed, made from the tensor at bOf) and Yᵀ = op(B)ᵀ·op(A)ᵀ
	// is computed with the images as columns, instead of the weights
	// being packed again on every run as the right-hand operand.
	constB bool
	bMu    sync.Mutex
	packed *gemm.PackedA
	bOf    *float32
}

// packedBT returns op(B)ᵀ (n×k) packed, packing b on first use.
func (g *gemmKernel) packedBT(b []float32) *gemm.PackedA {
	g.bMu.Lock()
	defer g.bMu.Unlock()
	if g.bOf != &b[0] {
		if g.transB { // B is n×k
			g.packed = gemm.PackA(false, g.n, g.k, b, g.k)
		} else {
			g.packed = gemm.PackA(true, g.n, g.k, b, g.n)
		}
		g.bOf = &b[0]
	}
	return g.packed
}

func (g *gemmKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return nil, errIntUnsupported
		}
	}
	out := onnx.NewFloat([]int{g.m, g.n}, nil)
	if err := g.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (g *gemmKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	for _, t := range in {
		if t.DType != onnx.Float32 {
			return errIntUnsupported
		}
	}
	beta := float32(0)
	if g.hasC && g.beta != 0 {
		c := in[2].F
		for i := range out.F {
			out.F[i] = g.beta * c[g.cIdx[i]]
		}
		beta = 1
	}
	lda, ldb := g.k, g.n
	if g.transA {
		lda = g.m
	}
	if g.transB {
		ldb = g.k
	}
	if g.constB && useGemm && g.k > 0 && g.n > 0 {
		// Yᵀ (n×m) = op(B)ᵀ·op(A)ᵀ: op(A)ᵀ is A read as stored, transposed
		// unless transA. Through the tile kernel, so that a row of A (an
		// image) gets the same bits whatever m (the batch) is.
		t := getConvBuf(g.n * g.m)
		defer putConvBuf(t)
		yt := *t
		g.packedBT(in[1].F).MulTiles(0, !g.transA, g.m, g.alpha, in[0].F, lda, 0, yt, g.m, nil)
		for i := range g.m {
			row := out.F[i*g.n : (i+1)*g.n]
			for j := range row {
				if beta != 0 {
					row[j] += yt[j*g.m+i]
				} else {
					row[j] = yt[j*g.m+i]
				}
			}
		}
		return nil
	}
	sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, in[0].F, lda, in[1].F, ldb, beta, out.F, g.n)
	return nil
}

// backward: with dY m×n,
// dA = alpha*dY*op(B)^T (or its transpose when transA),
// dB = alpha*op(A)^T*dY (or its transpose when transB),
// dC = beta*dY summed over the broadcast.
func (g *gemmKernel) backward(i int, in []*onnx.Tensor, out, dy *onnx.Tensor) (*onnx.Tensor, error) {
	return freshGrad(g, i, in, out, dy)
}

func (g *gemmKernel) backwardInto(i int, in []*onnx.Tensor, _, dy, r *onnx.Tensor) error {
	m, n, k := g.m, g.n, g.k
	a, b, d := in[0].F, in[1].F, dy.F
	switch i {
	case 0:
		switch {
		case !g.transA && !g.transB: // A m×k = dY (m×n) · B^T, B k×n
			sgemm(false, true, m, k, n, g.alpha, d, n, b, n, 0, r.F, k)
		case !g.transA && g.transB: // B n×k
			sgemm(false, false, m, k, n, g.alpha, d, n, b, k, 0, r.F, k)
		case g.transA && !g.transB: // A k×m = B (k×n) · dY^T
			sgemm(false, true, k, m, n, g.alpha, b, n, d, n, 0, r.F, m)
		default: // A k×m = B^T (B n×k) · dY^T
			sgemm(true, true, k, m, n, g.alpha, b, k, d, n, 0, r.F, m)
		}
		return nil
	case 1:
		switch {
		case !g.transB && !g.transA: // B k×n = A^T (A m×k) · dY
			sgemm(true, false, k, n, m, g.alpha, a, k, d, n, 0, r.F, n)
		case !g.transB && g.transA: // A k×m
			sgemm(false, false, k, n, m, g.alpha, a, m, d, n, 0, r.F, n)
		case g.transB && !g.transA: // B n×k = dY^T · A (m×k)
			sgemm(true, false, n, k, m, g.alpha, d, n, a, k, 0, r.F, k)
		default: // B n×k = dY^T · A^T (A k×m)
			sgemm(true, true, n, k, m, g.alpha, d, n, a, m, 0, r.F, k)
		}
		return nil
	}
	for e, v := range d {
		r.F[g.cIdx[e]] += g.beta * v
	}
	return nil
}

func buildGemm(c *nodeCtx) error {
	a, err := c.input(0)
	if err != nil {
		return err
	}
	b, err := c.input(1)
	if err != nil {
		return err
	}
	g := &gemmKernel{}
	if g.alpha, err = c.attrFloat("alpha", 1); err != nil {
		return err
	}
	if g.beta, err = c.attrFloat("beta", 1); err != nil {
		return err
	}
	ta, err := c.attrInt("transA", 0)
	if err != nil {
		return err
	}
	tb, err := c.attrInt("transB", 0)
	if err != nil {
		return err
	}
	g.transA, g.transB = ta != 0, tb != 0
	if a.dtype != onnx.Float32 || b.dtype != onnx.Float32 {
		return c.errorf("Gemm on integer tensors is not supported")
	}
	if len(a.shape) != 2 || len(b.shape) != 2 {
		return c.errorf("A and B must be matrices, got shapes %v and %v", a.shape, b.shape)
	}
	g.a, g.b = a.shape, b.shape
	g.m, g.k = a.shape[0], a.shape[1]
	if g.transA {
		g.m, g.k = g.k, g.m
	}
	kb, n := b.shape[0], b.shape[1]
	if g.transB {
		kb, n = n, kb
	}
	if kb != g.k {
		return c.errorf("inner dimensions differ: op(A) is %dx%d, op(B) is %dx%d", g.m, g.k, kb, n)
	}
	g.n = n
	g.constB = c.b.constWeights && b.t != nil
	out := []int{g.m, g.n}
	inputs := []int{0, 1}
	if c.optional(2) {
		cv := c.in[2]
		if cv.dtype != onnx.Float32 {
			return c.errorf("C must be a float tensor")
		}
		if bs, ok := broadcastShape(cv.shape, out); !ok || !slices.Equal(bs, out) {
			return c.errorf("C shape %v does not broadcast to the output shape %v", cv.shape, out)
		}
		g.c, g.hasC = cv.shape, true
		g.cIdx = broadcastIndex(cv.shape, out)
		inputs = append(inputs, 2)
	} else if c.opset < 11 {
		return c.errorf("input C is required before opset 11")
	}
	return c.apply(0, g, out, onnx.Float32, inputs...)
}

// matmulKernel is numpy's matmul: a 1-D A is a row vector [1, k], a 1-D B
// a column [k, 1] (the added dimension is dropped from the output), and
// the leading (batch) dims broadcast. Each batch is one sgemm.
type matmulKernel struct {
	a, b, out      []int // logical shapes
	m, n, k        int
	batch          int     // number of output matrices
	aIdx, bIdx     []int32 // per output matrix, its A and B matrix
	aBatch, bBatch int     // number of A and B matrices
}

func newMatMul(a, b []int) (*matmulKernel, bool) {
	if len(a) == 0 || len(b) == 0 {
		return nil, false
	}
	mk := &matmulKernel{a: a, b: b}
	a2, b2 := a, b
	if len(a) == 1 {
		a2 = []int{1, a[0]}
	}
	if len(b) == 1 {
		b2 = []int{b[0], 1}
	}
	mk.m, mk.k = a2[len(a2)-2], a2[len(a2)-1]
	mk.n = b2[len(b2)-1]
	if b2[len(b2)-2] != mk.k {
		return nil, false
	}
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	batch, ok := broadcastShape(ab, bb)
	if !ok {
		return nil, false
	}
	mk.batch = onnx.NumElems(batch)
	mk.aBatch, mk.bBatch = onnx.NumElems(ab), onnx.NumElems(bb)
	mk.aIdx, mk.bIdx = broadcastIndex(ab, batch), broadcastIndex(bb, batch)
	out := append([]int(nil), batch...)
	if len(a) > 1 {
		out = append(out, mk.m)
	}
	if len(b) > 1 {
		out = append(out, mk.n)
	}
	mk.out = out
	return mk, true
}

// flat reports whether the product is one tall sgemm: B is a single
// matrix and A's batches are the output's, in order.
func (mk *matmulKernel) flat() bool {
	return mk.bBatch == 1 && mk.aBatch == mk.batch
}

func (mk *matmulKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	if in[0].DType == onnx.Int64 && in[1].DType == onnx.Int64 {
		return mk.forwardInt(in[0].I, in[1].I), nil
	}
	if in[0].DType != onnx.Float32 || in[1].DType != onnx.Float32 {
		return nil, errIntUnsupported
	}
	out := onnx.NewFloat(mk.out, nil)
	if err := mk.forwardInto(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (mk *matmulKernel) forwardInto(in []*onnx.Tensor, out *onnx.Tensor) error {
	if in[0].DType != onnx.Float32 || in[1].DType != onnx.Float32 {
		return errIntUnsupported
	}
	a, b := in[0].F, in[1].F
	m, n, k := mk.m, mk.n, mk.k
	if mk.flat() {
		sgemm(false, false, mk.batch*m, n, k, 1, a, k, b, n, 0, out.F, n)
		return nil
	}
	for i := 0; i < mk.batch; i++ {
		ai, bi := int(mk.aIdx[i]), int(mk.bIdx[i])
		sgemm(false, false, m, n, k, 1, a[ai*m*k:(ai+1)*m*k], k, b[bi*k*n:(bi+1)*k*n], n, 0, out.F[i*m*n:(i+1)*m*n], n)
	}
	return nil
}

func (mk *matmulKernel) forwardInt(a, b []int64) *onnx.Tensor {
	out := onnx.NewInt(mk.out, nil)
	m, n, k := mk.m, mk.n, mk.k
	for i := 0; i < mk.batch; i++ {
		ao, bo, oo := int(mk.aIdx[i])*m*k, int(mk.bIdx[i])*k*n, i*m*n
		for r := 0; r < m; r++ {
			for c := 0; c < n; c++ {
				var s int64
				for j := 0; j < k; j++ {
					s += a[ao+r*k+j] * b[bo+j*n+c]
				}
				out.I[oo+r*n+c] = s
			}
		}
	}
	return out
}

// backward: dA_i += dY_i·B_i^T and dB_i += A_i^T·dY_i, accumulated over
// the batches each A or B matrix broadcasts to.
func (mk *matmulKernel) backward(i int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	a, b, d := in[0].F, in[1].F, dy.F
	m, n, k := mk.m, mk.n, mk.k
	if i == 0 {
		g := onnx.NewFloat(mk.a, nil)
		if mk.flat() {
			sgemm(false, true, mk.batch*m, k, n, 1, d, n, b, n, 0, g.F, k)
			return g, nil
		}
		for j := 0; j < mk.batch; j++ {
			ai, bi := int(mk.aIdx[j]), int(mk.bIdx[j])
			sgemm(false, true, m, k, n, 1, d[j*m*n:(j+1)*m*n], n, b[bi*k*n:(bi+1)*k*n], n, 1, g.F[ai*m*k:(ai+1)*m*k], k)
		}
		return g, nil
	}
	g := onnx.NewFloat(mk.b, nil)
	if mk.flat() {
		sgemm(true, false, k, n, mk.batch*m, 1, a, k, d, n, 0, g.F, n)
		return g, nil
	}
	for j := 0; j < mk.batch; j++ {
		ai, bi := int(mk.aIdx[j]), int(mk.bIdx[j])
		sgemm(true, false, k, n, m, 1, a[ai*m*k:(ai+1)*m*k], k, d[j*m*n:(j+1)*m*n], n, 1, g.F[bi*k*n:(bi+1)*k*n], n)
	}
	return g, nil
}

func buildMatMul(c *nodeCtx) error {
	a, err := c.input(0)
	if err != nil {
		return err
	}
	b, err := c.input(1)
	if err != nil {
		return err
	}
	if a.dtype != b.dtype {
		return c.errorf("inputs mix %s and %s", a.dtype, b.dtype)
	}
	mk, ok := newMatMul(a.shape, b.shape)
	if !ok {
		return c.errorf("shapes %v and %v cannot be multiplied", a.shape, b.shape)
	}
	return c.apply(0, mk, mk.out, a.dtype, 0, 1)
}
