package graph

import (
	"math/rand"
	"testing"

	"github.com/graftml/graft/onnx"
)

// TestPlaneBroadcast: the plane-by-plane path of Add, Sub, Mul and Div
// (a per-channel value against a full tensor) equals the general
// broadcast path, for both operand orders where the op allows it.
func TestPlaneBroadcast(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	out := []int{2, 3, 5, 7}
	for _, c := range []struct {
		op    string
		small []int
		swap  bool
		plane bool
	}{
		{"Mul", []int{2, 3, 1, 1}, false, true},
		{"Mul", []int{2, 3, 1, 1}, true, true},
		{"Add", []int{3, 1, 1}, false, false}, // leading axis broadcast too: general path
		{"Add", []int{2, 3, 5, 1}, true, true},
		{"Sub", []int{2, 3, 1, 1}, false, true},
		{"Sub", []int{2, 3, 1, 1}, true, false},
		{"Div", []int{2, 3, 1, 1}, false, true},
		{"Mul", []int{7}, false, false},
	} {
		shapes := [][]int{out, c.small}
		if c.swap {
			shapes = [][]int{c.small, out}
		}
		k := newNary(c.op, shapes, out)
		if k.plane != c.plane {
			t.Errorf("%s %v: plane %v, want %v", c.op, shapes, k.plane, c.plane)
		}
		in := make([]*onnx.Tensor, 2)
		for i, s := range shapes {
			in[i] = onnx.NewFloat(s, nil)
			for j := range in[i].F {
				in[i].F[j] = float32(r.NormFloat64()) + 3
			}
		}
		got, err := k.forward(in)
		if err != nil {
			t.Fatal(err)
		}
		ref := newNary(c.op, shapes, out)
		ref.plane = false
		want, err := ref.forward(in)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want.F {
			if got.F[i] != want.F[i] {
				t.Fatalf("%s %v: element %d = %v, general path %v", c.op, shapes, i, got.F[i], want.F[i])
			}
		}
	}
}
