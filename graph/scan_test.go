package graph

import (
	"errors"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx"
)

// TestCumSumVsORT runs CumSum at run time on every combination of
// exclusive and reverse, against a float64 reference and ONNX Runtime.
func TestCumSumVsORT(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	x := randT(r, 2, 7, 3)
	for _, axis := range []int64{1, -1} {
		for _, ex := range []int{0, 1} {
			for _, rev := range []int{0, 1} {
				k := &cumSumKernel{shape: x.Shape, exclusive: ex != 0, reverse: rev != 0}
				a := int(axis+3) % 3
				k.outer, k.n, k.inner = axisSplit(x.Shape, a)
				want := naiveCumSum(x, a, ex != 0, rev != 0)
				ins := []opIn{{name: "x", t: x}, {name: "axis", t: onnx.NewInt([]int{}, []int64{axis}), konst: true}}
				m := opModel(t, 14, "CumSum", map[string]any{"exclusive": ex, "reverse": rev}, ins, "y")
				opCheck(t, "cumsum", m, ins, want)
			}
		}
	}
}

// naiveCumSum sums each output element's prefix (or suffix) directly.
func naiveCumSum(x *onnx.Tensor, axis int, exclusive, reverse bool) *onnx.Tensor {
	outer, n, inner := axisSplit(x.Shape, axis)
	out := onnx.NewFloat(x.Shape, nil)
	for o := range outer {
		for a := range n {
			for j := range inner {
				var s float64
				for b := range n {
					in := b <= a
					if reverse {
						in = b >= a
					}
					if in && !(exclusive && b == a) {
						s += float64(x.F[(o*n+b)*inner+j])
					}
				}
				out.F[(o*n+a)*inner+j] = float32(s)
			}
		}
	}
	return out
}

// TestScanFoldsIntegers: CumSum and TopK of integer constants fold to
// int64 exactly (shape subgraphs use them).
func TestScanFoldsIntegers(t *testing.T) {
	x := onnx.NewInt([]int{5}, []int64{1 << 53, 1, 7, -3, 2})
	ins := []opIn{{name: "x", t: x, konst: true}, {name: "axis", t: onnx.NewInt([]int{}, []int64{0}), konst: true}}
	got, err := opRunGraft(opModel(t, 11, "CumSum", nil, ins, "y"), ins)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1 << 53, 1<<53 + 1, 1<<53 + 8, 1<<53 + 5, 1<<53 + 7}; got["y"] == nil || !slices.Equal(got["y"].I, want) {
		t.Errorf("CumSum of int64 constants: %v, want %v", got["y"], want)
	}
	ins = []opIn{{name: "x", t: x, konst: true}, {name: "k", t: onnx.NewInt([]int{1}, []int64{2}), konst: true}}
	m := opModel(t, 11, "TopK", map[string]any{"largest": 0}, ins, "v", "i")
	if got, err = opRunGraft(m, ins); err != nil {
		t.Fatal(err)
	}
	if got["v"] == nil || !slices.Equal(got["v"].I, []int64{-3, 1}) || got["i"] == nil || !slices.Equal(got["i"].I, []int64{3, 1}) {
		t.Errorf("TopK of int64 constants: %v %v", got["v"], got["i"])
	}
}

// TestTopKRefused: k beyond the axis, and k computed at run time, are
// errors naming the node.
func TestTopKRefused(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	x := randT(r, 3, 4)
	for _, c := range []struct {
		k    []opIn
		want string
	}{
		{[]opIn{{name: "k", t: onnx.NewInt([]int{1}, []int64{5}), konst: true}}, "outside [0, 4]"},
		{[]opIn{{name: "k", t: onnx.NewInt([]int{1}, []int64{-1}), konst: true}}, "outside [0, 4]"},
		{[]opIn{{name: "k", t: onnx.NewInt([]int{2}, []int64{1, 2}), konst: true}}, "one-element"},
	} {
		ins := append([]opIn{{name: "x", t: x}}, c.k...)
		_, err := opRunGraft(opModel(t, 11, "TopK", nil, ins, "v", "i"), ins)
		var ne *NodeError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("k %v: got %v, want a NodeError saying %q", c.k[0].t.I, err, c.want)
		}
	}
}
