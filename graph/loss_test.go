package graph

import (
	"math"
	"math/rand"
	"testing"

	"github.com/graftml/graft/onnx"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestCrossEntropyGradient(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	logits := randTensor(r, 4, 5)
	targets := onnx.NewFloat([]int{4, 5}, nil)
	for i := 0; i < 4; i++ {
		targets.F[i*5+r.Intn(5)] = 1
	}
	k := &xentKernel{n: 4, c: 5}
	out, _ := k.forward([]*onnx.Tensor{logits, targets})
	// against a direct computation
	want := 0.0
	for i := 0; i < 4; i++ {
		row := logits.F[i*5 : i*5+5]
		for j, tv := range targets.F[i*5 : i*5+5] {
			if tv == 1 {
				want -= float64(row[j]) - LogSumExp(row)
			}
		}
	}
	if math.Abs(float64(out.F[0])-want/4) > 1e-6 {
		t.Fatalf("loss %g, want %g", out.F[0], want/4)
	}
	checkGrad(t, "xent", k, []*onnx.Tensor{logits, targets}, []int{0}, 2e-3)
}

// TestGorgoniaGrad runs a kop graph through gorgonia.Grad and a tape
// machine, with a weight used twice (so gorgonia sums two gradients), and
// compares with finite differences of the whole graph.
func TestGorgoniaGrad(t *testing.T) {
	g := G.NewGraph()
	r := rand.New(rand.NewSource(5))
	xT, wT := randTensor(r, 3, 4), randTensor(r, 1, 4)
	yT := onnx.NewFloat([]int{3, 4}, nil)
	for i := 0; i < 3; i++ {
		yT.F[i*4+i] = 1
	}
	x := G.NewTensor(g, G.Float32, 2, G.WithShape(3, 4), G.WithName("x"), G.WithValue(wrap(xT, false)))
	w := G.NewTensor(g, G.Float32, 2, G.WithShape(1, 4), G.WithName("w"), G.WithValue(wrap(wT, false)))
	y := G.NewTensor(g, G.Float32, 2, G.WithShape(3, 4), G.WithName("y"), G.WithValue(wrap(yT, false)))
	mul := &kop{k: newNary("Mul", [][]int{{3, 4}, {1, 4}}, []int{3, 4}), opType: "Mul", id: "m", in: [][]int{{3, 4}, {1, 4}}, out: []int{3, 4}, diff: []bool{true, true}}
	m, err := G.ApplyOpWithName(mul, "m", x, w)
	if err != nil {
		t.Fatal(err)
	}
	add := &kop{k: newNary("Add", [][]int{{3, 4}, {1, 4}}, []int{3, 4}), opType: "Add", id: "a", in: [][]int{{3, 4}, {1, 4}}, out: []int{3, 4}, diff: []bool{true, true}}
	a, err := G.ApplyOpWithName(add, "a", m, w)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := CrossEntropy(a, y)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, w)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	lossAt := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return float64(*loss.Value().(*G.F32))
	}
	lossAt()
	gw := append([]float32(nil), grads[0].Value().(*tensor.Dense).Float32s()...)
	for j := range wT.F {
		orig := wT.F[j]
		wT.F[j] = orig + 1e-2
		lp := lossAt()
		wT.F[j] = orig - 1e-2
		lm := lossAt()
		wT.F[j] = orig
		num := (lp - lm) / 2e-2
		if math.Abs(num-float64(gw[j])) > 2e-3 {
			t.Errorf("dL/dw[%d] = %g, finite difference %g", j, gw[j], num)
		}
	}
}
