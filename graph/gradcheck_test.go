package graph

import (
	"maps"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
)

// randTensor returns a float tensor with values uniform in [-1, 1).
func randTensor(r *rand.Rand, shape ...int) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	for i := range t.F {
		t.F[i] = 2*r.Float32() - 1
	}
	return t
}

// checkGrad compares k's backward against central finite differences of
// L = sum(w * forward(in)) for a random w, for each input in wrt. Up to 50
// elements of each input are probed. The kernel computes in float32, so
// the difference uses a step of 1e-2 and sums in float64; tol is relative
// to the largest gradient magnitude of that input.
func checkGrad(t *testing.T, name string, k gradKernel, in []*onnx.Tensor, wrt []int, tol float64) {
	t.Helper()
	r := rand.New(rand.NewSource(7))
	out, err := k.forward(in)
	if err != nil {
		t.Fatalf("%s: forward: %v", name, err)
	}
	w := randTensor(r, out.Shape...)
	loss := func() float64 {
		o, err := k.forward(in)
		if err != nil {
			t.Fatalf("%s: forward: %v", name, err)
		}
		s := 0.0
		for i, v := range o.F {
			s += float64(v) * float64(w.F[i])
		}
		return s
	}
	for _, i := range wrt {
		g, err := k.backward(i, in, out, w)
		if err != nil {
			t.Fatalf("%s: backward %d: %v", name, i, err)
		}
		if len(g.F) != in[i].Len() {
			t.Fatalf("%s: gradient %d has %d elements, input has %d", name, i, len(g.F), in[i].Len())
		}
		scale := 1e-3
		for _, v := range g.F {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		const eps = 1e-2
		x := in[i].F
		probes := r.Perm(len(x))
		if len(probes) > 50 {
			probes = probes[:50]
		}
		for _, j := range probes {
			orig := x[j]
			x[j] = orig + eps
			lp := loss()
			x[j] = orig - eps
			lm := loss()
			x[j] = orig
			num := (lp - lm) / (2 * eps)
			if d := math.Abs(num - float64(g.F[j])); d > tol*scale {
				t.Errorf("%s: d/d in%d[%d]: backward %g, finite difference %g (diff %.3g > %.3g)", name, i, j, g.F[j], num, d, tol*scale)
			}
		}
	}
}

func TestElementwiseGradients(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Min", "Max", "Sum", "Mean"} {
		a, b := randTensor(r, 2, 3, 4), randTensor(r, 3, 1)
		if op == "Div" {
			for i := range b.F {
				b.F[i] = 1.5 + b.F[i]/2
			}
		}
		out, _ := broadcastShape(a.Shape, b.Shape)
		checkGrad(t, op, newNary(op, [][]int{a.Shape, b.Shape}, out), []*onnx.Tensor{a, b}, []int{0, 1}, 2e-3)
	}
	a, b := randTensor(r, 2, 3), randTensor(r, 2, 3)
	for i := range a.F {
		a.F[i] = 0.5 + a.F[i]/4
	}
	checkGrad(t, "Pow", newNary("Pow", [][]int{a.Shape, b.Shape}, a.Shape), []*onnx.Tensor{a, b}, []int{0, 1}, 2e-3)
	// sorted, so each op always gets the same inputs
	unary := map[string]func() *unaryKernel{
		"Abs": absKernel, "Ceil": ceilKernel, "Erf": erfKernel, "Exp": expKernel, "Floor": floorKernel,
		"Log": logKernel, "Neg": negKernel, "Reciprocal": reciprocalKernel, "Sqrt": sqrtKernel,
	}
	for _, op := range slices.Sorted(maps.Keys(unary)) {
		k := unary[op]()
		if op == "Floor" || op == "Ceil" {
			continue
		}
		x := randTensor(r, 3, 4)
		for i, v := range x.F {
			switch op {
			case "Sqrt", "Log", "Reciprocal":
				x.F[i] = 1 + v/2
			case "Abs": // keep clear of the kink at 0, wider than the step
				x.F[i] = float32(math.Copysign(0.1+math.Abs(float64(v)), float64(v)))
			}
		}
		checkGrad(t, op, k, []*onnx.Tensor{x}, []int{0}, 2e-3)
	}
}
