package graph

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gemmRef is alpha*op(A)*op(B) + beta*C in float64.
func gemmRef(a, b, c *onnx.Tensor, transA, transB bool, alpha, beta float64) *onnx.Tensor {
	m, k := a.Shape[0], a.Shape[1]
	if transA {
		m, k = k, m
	}
	n := b.Shape[1]
	if transB {
		n = b.Shape[0]
	}
	out := onnx.NewFloat([]int{m, n}, nil)
	var cIdx []int32
	if c != nil {
		cIdx = broadcastIndex(c.Shape, out.Shape)
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for l := 0; l < k; l++ {
				av := a.F[i*k+l]
				if transA {
					av = a.F[l*m+i]
				}
				bv := b.F[l*n+j]
				if transB {
					bv = b.F[j*k+l]
				}
				s += float64(av) * float64(bv)
			}
			s *= alpha
			if c != nil {
				s += beta * float64(c.F[cIdx[i*n+j]])
			}
			out.F[i*n+j] = float32(s)
		}
	}
	return out
}

func TestGemmGradients(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	const m, k, n = 3, 4, 5
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, cs := range [][]int{nil, {}, {1}, {n}, {1, n}, {m, 1}, {m, n}} {
				as, bs := []int{m, k}, []int{k, n}
				if ta {
					as = []int{k, m}
				}
				if tb {
					bs = []int{n, k}
				}
				g := &gemmKernel{transA: ta, transB: tb, alpha: 0.7, beta: 1.3, m: m, n: n, k: k, a: as, b: bs}
				in := []*onnx.Tensor{randTensor(r, as...), randTensor(r, bs...)}
				wrt := []int{0, 1}
				var c *onnx.Tensor
				if cs != nil {
					c = randTensor(r, cs...)
					g.c, g.hasC, g.cIdx = cs, true, broadcastIndex(cs, []int{m, n})
					in = append(in, c)
					wrt = append(wrt, 2)
				}
				name := fmt.Sprintf("Gemm transA=%v transB=%v C=%v", ta, tb, cs)
				y, err := g.forward(in)
				if err != nil {
					t.Fatal(err)
				}
				want := gemmRef(in[0], in[1], c, ta, tb, 0.7, 1.3)
				if err := allClose(y, want, 1e-5, 1e-5); err != nil {
					t.Errorf("%s: forward: %v", name, err)
				}
				// constant weights (a frozen build): op(B)ᵀ packed once, the
				// product taken transposed; twice, to use the packed copy
				cg := &gemmKernel{transA: ta, transB: tb, alpha: 0.7, beta: 1.3, m: m, n: n, k: k, a: as, b: bs, constB: true}
				cg.c, cg.hasC, cg.cIdx = g.c, g.hasC, g.cIdx
				for range 2 {
					if y, err = cg.forward(in); err != nil {
						t.Fatal(err)
					}
					if err := allClose(y, want, 1e-5, 1e-5); err != nil {
						t.Errorf("%s, constant B: forward: %v", name, err)
					}
				}
				checkGrad(t, name, g, in, wrt, 2e-3)
			}
		}
	}
}

func TestGemmModels(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	a, b := randTensor(r, 4, 3), randTensor(r, 5, 4)
	c := randTensor(r, 5)
	for _, tc := range []struct {
		opset int
		attrs map[string]any
		withC bool
		ta    bool
	}{
		{7, map[string]any{"transA": 1, "transB": 1}, true, true},
		{9, map[string]any{"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}, true, true},
		{11, map[string]any{"transA": 1, "transB": 1}, false, true},
		{13, map[string]any{"transA": 1, "transB": 1, "beta": 0.0}, true, true},
	} {
		ins := []opIn{{name: "a", t: a}, {name: "b", t: b, init: true}}
		var cv *onnx.Tensor
		if tc.withC {
			ins = append(ins, opIn{name: "c", t: c, init: true})
			cv = c
		}
		alpha, beta := 1.0, 1.0
		if v, ok := tc.attrs["alpha"]; ok {
			alpha = v.(float64)
		}
		if v, ok := tc.attrs["beta"]; ok {
			beta = v.(float64)
		}
		m := opModel(t, tc.opset, "Gemm", tc.attrs, ins, "y")
		opCheck(t, fmt.Sprintf("Gemm opset %d %v C=%v", tc.opset, tc.attrs, tc.withC), m, ins, gemmRef(a, b, cv, true, true, alpha, beta))
	}
	// C is required before opset 11
	ins := []opIn{{name: "a", t: a}, {name: "b", t: b}}
	if _, err := opRunGraft(opModel(t, 9, "Gemm", map[string]any{"transA": 1, "transB": 1}, ins, "y"), ins); err == nil {
		t.Error("Gemm without C at opset 9 was accepted")
	}
	// all-constant inputs fold when frozen
	ins = []opIn{{name: "a", t: a, init: true}, {name: "b", t: b, init: true}, {name: "c", t: c, init: true}}
	gm, err := Build(opModel(t, 13, "Gemm", map[string]any{"transA": 1, "transB": 1}, ins, "y"), Options{Freeze: true})
	if err != nil {
		t.Fatal(err)
	}
	if gm.Outputs[0].Const == nil {
		t.Error("Gemm of frozen initializers did not fold")
	} else if err := allClose(gm.Outputs[0].Const, gemmRef(a, b, c, true, true, 1, 1), 1e-5, 1e-5); err != nil {
		t.Errorf("folded Gemm: %v", err)
	}
}

// matmulRef is numpy's matmul in float64.
func matmulRef(a, b *onnx.Tensor) *onnx.Tensor {
	mk, ok := newMatMul(a.Shape, b.Shape)
	if !ok {
		panic("bad shapes")
	}
	out := onnx.NewFloat(mk.out, nil)
	m, n, k := mk.m, mk.n, mk.k
	// batch coordinates, broadcast by hand
	bo := mk.out[:len(mk.out)-btoi(len(a.Shape) > 1)-btoi(len(b.Shape) > 1)]
	batchShape := func(s []int) []int {
		if len(s) <= 2 {
			return nil
		}
		return s[:len(s)-2]
	}
	ab, bb := batchShape(a.Shape), batchShape(b.Shape)
	coord := make([]int, len(bo))
	for i := 0; i < onnx.NumElems(bo); i++ {
		rem := i
		for d := len(bo) - 1; d >= 0; d-- {
			coord[d] = rem % bo[d]
			rem /= bo[d]
		}
		flat := func(s []int) int {
			off, st := 0, 1
			for d := len(s) - 1; d >= 0; d-- {
				c := coord[len(coord)-len(s)+d]
				if s[d] == 1 {
					c = 0
				}
				off += c * st
				st *= s[d]
			}
			return off
		}
		ai, bi := flat(ab), flat(bb)
		for r := 0; r < m; r++ {
			for c := 0; c < n; c++ {
				s := 0.0
				for l := 0; l < k; l++ {
					s += float64(a.F[ai*m*k+r*k+l]) * float64(b.F[bi*k*n+l*n+c])
				}
				out.F[i*m*n+r*n+c] = float32(s)
			}
		}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMatMulGradients(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	for _, c := range []struct{ a, b, out []int }{
		{[]int{3, 4}, []int{4, 5}, []int{3, 5}},
		{[]int{4}, []int{4, 5}, []int{5}},
		{[]int{3, 4}, []int{4}, []int{3}},
		{[]int{4}, []int{4}, []int{}},
		{[]int{2, 3, 4}, []int{4, 5}, []int{2, 3, 5}},
		{[]int{3, 4}, []int{2, 4, 5}, []int{2, 3, 5}},
		{[]int{2, 1, 3, 4}, []int{3, 4, 5}, []int{2, 3, 3, 5}},
		{[]int{5, 1, 3, 4}, []int{1, 2, 4, 2}, []int{5, 2, 3, 2}},
		{[]int{2, 3, 4}, []int{2, 4, 3}, []int{2, 3, 3}},
		{[]int{2, 3, 4}, []int{4}, []int{2, 3}},
		{[]int{4}, []int{2, 4, 3}, []int{2, 3}},
		{[]int{1, 2, 3, 4}, []int{1, 2, 4, 3}, []int{1, 2, 3, 3}},
	} {
		mk, ok := newMatMul(c.a, c.b)
		if !ok {
			t.Fatalf("MatMul %v x %v refused", c.a, c.b)
		}
		if !slices.Equal(mk.out, c.out) {
			t.Errorf("MatMul %v x %v: shape %v, want %v", c.a, c.b, mk.out, c.out)
		}
		in := []*onnx.Tensor{randTensor(r, c.a...), randTensor(r, c.b...)}
		name := fmt.Sprintf("MatMul %v x %v", c.a, c.b)
		y, err := mk.forward(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := allClose(y, matmulRef(in[0], in[1]), 1e-5, 1e-5); err != nil {
			t.Errorf("%s: forward: %v", name, err)
		}
		checkGrad(t, name, mk, in, []int{0, 1}, 2e-3)
	}
	for _, bad := range [][2][]int{{{3, 4}, {5, 6}}, {{2, 3, 4}, {3, 4, 5}}, {{}, {3}}} {
		if _, ok := newMatMul(bad[0], bad[1]); ok {
			t.Errorf("MatMul %v x %v accepted", bad[0], bad[1])
		}
	}
}

func TestMatMulModels(t *testing.T) {
	r := rand.New(rand.NewSource(24))
	a, b := randTensor(r, 2, 1, 3, 4), randTensor(r, 3, 4, 5)
	ins := []opIn{{name: "a", t: a}, {name: "b", t: b}}
	opCheck(t, "MatMul batched broadcast", opModel(t, 13, "MatMul", nil, ins, "y"), ins, matmulRef(a, b))
	ins = []opIn{{name: "a", t: a}, {name: "b", t: randTensor(r, 4, 5), init: true}}
	opCheck(t, "MatMul by a weight", opModel(t, 9, "MatMul", nil, ins, "y"), ins, matmulRef(a, ins[1].t))
	// integer MatMul folds
	ai, bi := onnx.NewInt([]int{2, 2}, []int64{1, 2, 3, 4}), onnx.NewInt([]int{2}, []int64{5, 6})
	ins = []opIn{{name: "a", t: ai}, {name: "b", t: bi}}
	gm, err := Build(opModel(t, 13, "MatMul", nil, ins, "y"), Options{Values: map[string]*onnx.Tensor{"a": ai, "b": bi}})
	if err != nil {
		t.Fatal(err)
	}
	if c := gm.Outputs[0].Const; c == nil || fmt.Sprint(c.I) != "[17 39]" {
		t.Errorf("integer MatMul folded to %v", c)
	}
}

// opGraphGrads differentiates sum(output) of a built model with
// gorgonia.Grad with respect to the named initializers and returns the
// gradients after one run with the given feed.
func opGraphGrads(t *testing.T, gm *Model, output string, feed map[string]*onnx.Tensor, params ...string) map[string][]float32 {
	t.Helper()
	y, ok := gm.Node(output)
	if !ok {
		t.Fatalf("no node for %q", output)
	}
	loss, err := G.Sum(y)
	if err != nil {
		t.Fatal(err)
	}
	var wrt G.Nodes
	for _, p := range params {
		n, ok := gm.Params[p]
		if !ok {
			t.Fatalf("no parameter %q", p)
		}
		wrt = append(wrt, n)
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range gm.Inputs {
		if err := G.Let(p.Node, wrap(feed[p.Name], false)); err != nil {
			t.Fatal(err)
		}
	}
	vm := G.NewTapeMachine(gm.G)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for i, p := range params {
		out[p] = append([]float32(nil), grads[i].Value().(*tensor.Dense).Float32s()...)
	}
	return out
}

// TestGemmGraphGradient runs Gemm's gradients through gorgonia.Grad in a
// built graph, with a scalar C (a rank-0 tensor, [1] inside gorgonia).
func TestGemmGraphGradient(t *testing.T) {
	r := rand.New(rand.NewSource(25))
	a, b, c := randTensor(r, 3, 4), randTensor(r, 5, 4), onnx.NewFloat(nil, []float32{0.5})
	ins := []opIn{{name: "a", t: a}, {name: "b", t: b, init: true}, {name: "c", t: c, init: true}}
	gm, err := Build(opModel(t, 13, "Gemm", map[string]any{"transB": 1, "alpha": 2.0, "beta": 3.0}, ins, "y"), Options{Shapes: map[string][]int{"a": a.Shape}})
	if err != nil {
		t.Fatal(err)
	}
	got := opGraphGrads(t, gm, "y", map[string]*onnx.Tensor{"a": a}, "b", "c")
	// d sum(y)/dC = beta*M*N; d/dB[j,l] = alpha*sum_i A[i,l]
	if len(got["c"]) != 1 || math.Abs(float64(got["c"][0])-45) > 1e-4 {
		t.Errorf("dC = %v, want [45]", got["c"])
	}
	for j := 0; j < 5; j++ {
		for l := 0; l < 4; l++ {
			want := 0.0
			for i := 0; i < 3; i++ {
				want += 2 * float64(a.F[i*4+l])
			}
			if math.Abs(float64(got["b"][j*4+l])-want) > 1e-5 {
				t.Fatalf("dB[%d,%d] = %g, want %g", j, l, got["b"][j*4+l], want)
			}
		}
	}
}
