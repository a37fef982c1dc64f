package graph

import (
	"errors"
	"math/rand"
	"strings"
	"testing"
)

// TestEinsumVsORT runs the equations of the ONNX backend cases (whose data
// is float64, which graft does not run) and a few models use, in float32
// against ONNX Runtime.
func TestEinsumVsORT(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, c := range []struct {
		eq     string
		shapes [][]int
	}{
		{"...ii ->...i", [][]int{{3, 5, 5}}},
		{"bij, bjk -> bik", [][]int{{5, 2, 3}, {5, 3, 4}}},
		{"i,i", [][]int{{5}, {5}}},
		{"ij->i", [][]int{{3, 4}}},
		{"ij->ji", [][]int{{3, 4}}},
		{"bhqd,bhkd->bhqk", [][]int{{2, 3, 7, 8}, {2, 3, 6, 8}}},
		{"...ij,...jk", [][]int{{2, 3, 4, 5}, {2, 3, 5, 2}}},
		{"nchw,oc->nohw", [][]int{{2, 3, 4, 4}, {5, 3}}},
	} {
		var ins []opIn
		for i, s := range c.shapes {
			ins = append(ins, opIn{name: string(rune('a' + i)), t: randT(r, s...)})
		}
		m := opModel(t, 12, "Einsum", map[string]any{"equation": c.eq}, ins, "y")
		opCheck(t, c.eq, m, ins, nil)
	}
}

// TestEinsumRefused: what graft does not read is an error naming the node.
func TestEinsumRefused(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		eq     string
		shapes [][]int
		want   string
	}{
		{"i,i,i", [][]int{{2}, {2}, {2}}, "one or two operands"},
		{"ij,jk", [][]int{{2, 3}, {4, 5}}, "label 'j' has size 3 and 4"},
		{"ij", [][]int{{2, 3, 4}}, "does not fit an operand of rank 3"},
		{"ij->ik", [][]int{{2, 3}}, "in no operand"},
		{"i1->i", [][]int{{2, 3}}, "not a letter"},
		{"ij,j", [][]int{{2, 3}}, "has 2 operands"},
	} {
		var ins []opIn
		for i, s := range c.shapes {
			ins = append(ins, opIn{name: string(rune('a' + i)), t: randT(r, s...)})
		}
		_, err := opRunGraft(opModel(t, 12, "Einsum", map[string]any{"equation": c.eq}, ins, "y"), ins)
		var ne *NodeError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want a NodeError saying %q", c.eq, err, c.want)
		}
	}
}
