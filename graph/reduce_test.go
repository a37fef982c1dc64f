package graph

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
)

// reduceRef reduces x over axes (marked) in float64 by visiting every
// element with explicit coordinates.
func reduceRef(op string, x *onnx.Tensor, axes []bool, keepdims bool) *onnx.Tensor {
	kept := make([]int, len(x.Shape))
	var out []int
	count := 1
	for i, d := range x.Shape {
		if axes[i] {
			kept[i] = 1
			count *= d
			if keepdims {
				out = append(out, 1)
			}
		} else {
			kept[i] = d
			out = append(out, d)
		}
	}
	n := onnx.NumElems(kept)
	acc := make([]float64, n)
	if op == "Max" {
		for i := range acc {
			acc[i] = math.Inf(-1)
		}
	}
	coord := make([]int, len(x.Shape))
	for e, v := range x.F {
		rem := e
		for d := len(x.Shape) - 1; d >= 0; d-- {
			coord[d] = rem % x.Shape[d]
			rem /= x.Shape[d]
		}
		o := 0
		for d := range kept {
			c := coord[d]
			if axes[d] {
				c = 0
			}
			o = o*kept[d] + c
		}
		if op == "Max" {
			acc[o] = math.Max(acc[o], float64(v))
		} else {
			acc[o] += float64(v)
		}
	}
	t := onnx.NewFloat(out, nil)
	for i, v := range acc {
		if op == "Mean" {
			v /= float64(count)
		}
		t.F[i] = float32(v)
	}
	return t
}

func marks(rank int, axes ...int) []bool {
	m := make([]bool, rank)
	for _, a := range axes {
		m[a] = true
	}
	return m
}

func TestReduceGradients(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	shape := []int{2, 3, 4, 5}
	for _, op := range []string{"Sum", "Mean", "Max"} {
		for _, axes := range [][]int{{0}, {1}, {3}, {0, 2}, {1, 3}, {0, 1, 2, 3}, {1, 2}, {0, 1, 3}} {
			for _, keep := range []bool{true, false} {
				x := randTensor(r, shape...)
				if op == "Max" { // distinct values, far apart relative to the step
					p := r.Perm(x.Len())
					for i := range x.F {
						x.F[i] = float32(p[i]) * 0.05
					}
				}
				k := newReduce(op, shape, marks(4, axes...), keep)
				name := fmt.Sprintf("Reduce%s axes %v keepdims %v", op, axes, keep)
				y, err := k.forward([]*onnx.Tensor{x})
				if err != nil {
					t.Fatal(err)
				}
				want := reduceRef(op, x, marks(4, axes...), keep)
				if !slices.Equal(y.Shape, want.Shape) {
					t.Errorf("%s: shape %v, want %v", name, y.Shape, want.Shape)
				}
				if err := allClose(y, want, 1e-5, 1e-6); err != nil {
					t.Errorf("%s: forward: %v", name, err)
				}
				checkGrad(t, name, k, []*onnx.Tensor{x}, []int{0}, 2e-3)
			}
		}
	}
}

func TestReduceMaxTies(t *testing.T) {
	x := onnx.NewFloat([]int{2, 3}, []float32{1, 3, 3, 2, 2, 0})
	k := newReduce("Max", x.Shape, marks(2, 1), false)
	y, _ := k.forward([]*onnx.Tensor{x})
	g, _ := k.backward(0, []*onnx.Tensor{x}, y, onnx.NewFloat([]int{2}, []float32{1, 2}))
	if fmt.Sprint(g.F) != "[0 1 0 2 0 0]" {
		t.Errorf("ReduceMax gradient with ties: %v, want the first maximum only", g.F)
	}
}

func TestReduceModels(t *testing.T) {
	r := rand.New(rand.NewSource(32))
	x := randTensor(r, 2, 3, 4)
	in := []opIn{{name: "x", t: x}}
	for _, op := range []string{"ReduceMean", "ReduceMax", "ReduceSum"} {
		short := op[len("Reduce"):]
		for _, c := range []struct {
			axes []int // nil: attribute absent
			keep any
		}{
			{nil, nil}, {[]int{1}, 0}, {[]int{0, 2}, 1}, {[]int{-1, 0}, 0}, {[]int{2, 1, 0}, 0},
		} {
			attrs := map[string]any{}
			if c.keep != nil {
				attrs["keepdims"] = c.keep
			}
			mk := marks(3)
			for _, a := range c.axes {
				mk[(a+3)%3] = true
			}
			if c.axes == nil {
				mk = marks(3, 0, 1, 2)
			}
			want := reduceRef(short, x, mk, c.keep != 0)
			opsets := []int{11, 13}
			for _, opset := range opsets {
				a := map[string]any{}
				for k, v := range attrs {
					a[k] = v
				}
				ins := in
				if op == "ReduceSum" && opset >= 13 {
					if c.axes != nil {
						ax := onnx.NewInt([]int{len(c.axes)}, nil)
						for i, v := range c.axes {
							ax.I[i] = int64(v)
						}
						ins = append(in[:1:1], opIn{name: "axes", t: ax, init: true})
					}
				} else if c.axes != nil {
					a["axes"] = c.axes
				}
				m := opModel(t, opset, op, a, ins, "y")
				opCheck(t, fmt.Sprintf("%s opset %d axes %v keepdims %v", op, opset, c.axes, c.keep), m, ins, want)
			}
		}
	}
	// ReduceSum (opset 13): empty axes reduce everything, unless
	// noop_with_empty_axes; axes may also be a build-time graph input.
	empty := onnx.NewInt([]int{0}, nil)
	ins := []opIn{{name: "x", t: x}, {name: "axes", t: empty, init: true}}
	opCheck(t, "ReduceSum empty axes", opModel(t, 13, "ReduceSum", nil, ins, "y"), ins, reduceRef("Sum", x, marks(3, 0, 1, 2), true))
	opCheck(t, "ReduceSum noop", opModel(t, 13, "ReduceSum", map[string]any{"noop_with_empty_axes": 1}, ins, "y"), ins, x)
	ins = []opIn{{name: "x", t: x}, {name: "axes", t: onnx.NewInt([]int{1}, []int64{-2})}}
	opCheck(t, "ReduceSum axes graph input", opModel(t, 13, "ReduceSum", map[string]any{"keepdims": 0}, ins, "y"), ins, reduceRef("Sum", x, marks(3, 1), false))
	// integer reductions fold
	xi := onnx.NewInt([]int{2, 3}, []int64{1, 5, 3, -4, 2, 8})
	for op, want := range map[string]string{"ReduceSum": "[9 6]", "ReduceMax": "[5 8]", "ReduceMean": "[3 2]"} {
		ins := []opIn{{name: "x", t: xi}}
		a := map[string]any{"keepdims": 0}
		if op == "ReduceSum" {
			ins = append(ins, opIn{name: "axes", t: onnx.NewInt([]int{1}, []int64{1}), init: true})
		} else {
			a["axes"] = []int{1}
		}
		gm, err := Build(opModel(t, 13, op, a, ins, "y"), Options{Values: map[string]*onnx.Tensor{"x": xi}})
		if err != nil {
			t.Fatal(err)
		}
		if c := gm.Outputs[0].Const; c == nil || fmt.Sprint(c.I) != want {
			t.Errorf("integer %s folded to %v, want %s", op, c, want)
		}
	}
}
