package graph

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/graftml/graft/onnx"
)

// bnParams returns random scale, B, mean and var (var > 0) of n elements.
func bnParams(r *rand.Rand, shape ...int) []*onnx.Tensor {
	scale, bias, mean, vr := randTensor(r, shape...), randTensor(r, shape...), randTensor(r, shape...), randTensor(r, shape...)
	for i := range vr.F {
		vr.F[i] = 0.5 + vr.F[i]*vr.F[i]
		scale.F[i] += 1.5
	}
	return []*onnx.Tensor{scale, bias, mean, vr}
}

func TestBatchNormGradients(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, c := range []struct {
		shape   []int
		spatial bool
	}{
		{[]int{2, 3, 4, 5}, true},
		{[]int{4, 3}, true},
		{[]int{3, 2, 5}, true},
		{[]int{8, 3, 2}, false},
	} {
		l, err := newBNLayout(c.shape, c.spatial)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%v/spatial=%v", c.shape, c.spatial)
		x := randTensor(r, c.shape...)
		p := bnParams(r, l.param...)
		in := append([]*onnx.Tensor{x}, p...)
		inf := &bnKernel{l: l, eps: 1e-3, train: &bnTrainKernel{l: l, eps: 1e-3}}
		checkGrad(t, "BN inference "+name, inf, in, []int{0, 1, 2, 3, 4}, 2e-3)
		tr := &bnTrainKernel{l: l, eps: 1e-3}
		checkGrad(t, "BN training "+name, tr, in, []int{0, 1, 2, 3, 4}, 3e-3)
		checkGrad(t, "BN training (3 inputs) "+name, tr, in[:3], []int{0, 1, 2}, 3e-3)
		inf.batch = true
		checkGrad(t, "BN switched to training "+name, inf, in, []int{0, 1, 2}, 3e-3)
		checkGrad(t, "BN running mean "+name, &bnStatKernel{l: l, momentum: 0.9}, []*onnx.Tensor{x, p[2]}, []int{0, 1}, 2e-3)
		checkGrad(t, "BN running var "+name, &bnStatKernel{l: l, momentum: 0.8, variance: true}, []*onnx.Tensor{x, p[3]}, []int{0, 1}, 2e-3)
		checkGrad(t, "BN saved mean "+name, &bnStatKernel{l: l}, []*onnx.Tensor{x}, []int{0}, 2e-3)
		checkGrad(t, "BN saved var "+name, &bnStatKernel{l: l, variance: true}, []*onnx.Tensor{x}, []int{0}, 2e-3)
	}
}

// bnRef is BatchNormalization in float64 with the given statistics.
func bnRef(x *onnx.Tensor, scale, bias, mean, vr []float64, eps float64) *onnx.Tensor {
	c, inner := x.Shape[1], onnx.NumElems(x.Shape[2:])
	out := onnx.NewFloat(x.Shape, nil)
	for i, v := range x.F {
		ch := i / inner % c
		out.F[i] = float32((float64(v)-mean[ch])*scale[ch]/math.Sqrt(vr[ch]+eps) + bias[ch])
	}
	return out
}

// batchStats64 is the per-channel mean and biased variance in float64.
func batchStats64(x *onnx.Tensor) (mean, vr []float64) {
	c, inner := x.Shape[1], onnx.NumElems(x.Shape[2:])
	mean, vr = make([]float64, c), make([]float64, c)
	cnt := float64(x.Len() / c)
	for i, v := range x.F {
		mean[i/inner%c] += float64(v) / cnt
	}
	for i, v := range x.F {
		d := float64(v) - mean[i/inner%c]
		vr[i/inner%c] += d * d / cnt
	}
	return mean, vr
}

// TestBatchNormInferenceFloat64 compares inference BatchNormalization,
// built from a model, with a direct float64 computation on random data
// (large activations and a small variance, where float32 shortcuts lose
// precision), at every opset form.
func TestBatchNormInferenceFloat64(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, opset := range []int{7, 9, 14, 15, 17} {
		for _, shape := range [][]int{{2, 3, 4, 5}, {3, 4}, {1, 8, 7, 7}} {
			x := randTensor(r, shape...)
			for i := range x.F {
				x.F[i] = x.F[i]*50 + 20
			}
			p := bnParams(r, shape[1])
			p[3].F[0] = 1e-4
			eps := float32(1e-3)
			ins := []opIn{{name: "x", t: x}, {name: "s", t: p[0], init: true}, {name: "b", t: p[1], init: true}, {name: "mean", t: p[2], init: true}, {name: "var", t: p[3], init: true}}
			m := opModel(t, opset, "BatchNormalization", map[string]any{"epsilon": eps}, ins, "y")
			want := bnRef(x, f64s(p[0].F), f64s(p[1].F), f64s(p[2].F), f64s(p[3].F), float64(eps))
			opCheck(t, fmt.Sprintf("BN opset %d %v", opset, shape), m, ins, want)
		}
	}
	// spatial=0 (opset 7): per-activation parameters
	x := randTensor(r, 3, 2, 4)
	p := bnParams(r, 2, 4)
	ins := []opIn{{name: "x", t: x}, {name: "s", t: p[0], init: true}, {name: "b", t: p[1], init: true}, {name: "mean", t: p[2], init: true}, {name: "var", t: p[3], init: true}}
	m := opModel(t, 7, "BatchNormalization", map[string]any{"spatial": 0}, ins, "y")
	want := onnx.NewFloat(x.Shape, nil)
	for i, v := range x.F {
		j := i % 8
		want.F[i] = float32((float64(v)-float64(p[2].F[j]))*float64(p[0].F[j])/math.Sqrt(float64(p[3].F[j])+1e-5) + float64(p[1].F[j]))
	}
	got, err := opRunGraft(m, ins)
	if err != nil {
		t.Fatal(err)
	}
	if err := allClose(got["y"], want, 1e-5, 1e-6); err != nil {
		t.Errorf("BN spatial=0: %v", err)
	}
}

// TestBatchNormTrainingModel: training_mode=1 (opset 15) and the training
// outputs of opset 9 use batch statistics and update the running ones.
func TestBatchNormTrainingModel(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	x := randTensor(r, 2, 3, 4, 5)
	p := bnParams(r, 3)
	ins := []opIn{{name: "x", t: x}, {name: "s", t: p[0]}, {name: "b", t: p[1]}, {name: "mean", t: p[2]}, {name: "var", t: p[3]}}
	mu, vr := batchStats64(x)
	want := bnRef(x, f64s(p[0].F), f64s(p[1].F), mu, vr, 1e-5)
	m := opModel(t, 15, "BatchNormalization", map[string]any{"training_mode": 1, "momentum": 0.8}, ins, "y", "rm", "rv")
	opCheck(t, "BN training_mode=1", m, ins, want)
	got, err := opRunGraft(m, ins)
	if err != nil {
		t.Fatal(err)
	}
	for ch := range mu {
		rm := 0.8*float64(p[2].F[ch]) + 0.2*mu[ch]
		rv := 0.8*float64(p[3].F[ch]) + 0.2*vr[ch]
		if math.Abs(float64(got["rm"].F[ch])-rm) > 1e-6 || math.Abs(float64(got["rv"].F[ch])-rv) > 1e-6 {
			t.Errorf("channel %d: running mean %g var %g, want %g %g", ch, got["rm"].F[ch], got["rv"].F[ch], rm, rv)
		}
	}
	m = opModel(t, 9, "BatchNormalization", nil, ins, "y", "rm", "rv", "sm", "sv")
	got, err = opRunGraft(m, ins)
	if err != nil {
		t.Fatal(err)
	}
	if err := allClose(got["y"], want, 1e-5, 1e-6); err != nil {
		t.Errorf("BN opset 9 training outputs: y: %v", err)
	}
	if err := allClose(got["sm"], onnx.NewFloat([]int{3}, f32s(mu)), 1e-5, 1e-6); err != nil {
		t.Errorf("saved mean: %v", err)
	}
	if err := allClose(got["sv"], onnx.NewFloat([]int{3}, f32s(vr)), 1e-5, 1e-6); err != nil {
		t.Errorf("saved var: %v", err)
	}
}

// TestBatchNormTrainingAPI exercises the training-mode kernel on its own and
// switching a built model's BatchNormalization layers between modes.
func TestBatchNormTrainingAPI(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	x := randTensor(r, 4, 3, 2, 2)
	p := bnParams(r, 3)
	k, err := newBNTrainKernel(x.Shape, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	mean, vr, count, err := k.BatchStats(x)
	if err != nil {
		t.Fatal(err)
	}
	mu64, vr64 := batchStats64(x)
	if count != 16 {
		t.Errorf("count %d, want 16", count)
	}
	for ch := range mean {
		if math.Abs(float64(mean[ch])-mu64[ch]) > 1e-6 || math.Abs(float64(vr[ch])-vr64[ch]) > 1e-6 {
			t.Errorf("channel %d: batch stats %g %g, want %g %g", ch, mean[ch], vr[ch], mu64[ch], vr64[ch])
		}
	}
	y, err := k.Forward(x, p[0], p[1])
	if err != nil {
		t.Fatal(err)
	}
	want := bnRef(x, f64s(p[0].F), f64s(p[1].F), mu64, vr64, 1e-5)
	if err := allClose(y, want, 1e-5, 1e-6); err != nil {
		t.Errorf("Forward: %v", err)
	}
	// sum over the batch of a normalized channel is B*count: dL/dB = count for dy = 1
	dy := onnx.NewFloat(x.Shape, nil)
	for i := range dy.F {
		dy.F[i] = 1
	}
	gb, err := k.Backward(2, x, p[0], p[1], y, dy)
	if err != nil {
		t.Fatal(err)
	}
	gx, err := k.Backward(0, x, p[0], p[1], y, dy)
	if err != nil {
		t.Fatal(err)
	}
	for ch := range gb.F {
		if gb.F[ch] != 16 {
			t.Errorf("dB[%d] = %g, want 16", ch, gb.F[ch])
		}
	}
	for i, g := range gx.F { // a constant dy does not move normalized outputs
		if math.Abs(float64(g)) > 1e-5 {
			t.Errorf("dX[%d] = %g, want 0", i, g)
			break
		}
	}
	if _, err := k.Forward(randTensor(r, 2, 3), p[0], p[1]); err == nil {
		t.Error("Forward accepted a wrong shape")
	}

	// switching a built model
	ins := []opIn{{name: "x", t: x}, {name: "s", t: p[0], init: true}, {name: "b", t: p[1], init: true}, {name: "mean", t: p[2], init: true}, {name: "var", t: p[3], init: true}}
	m := opModel(t, 15, "BatchNormalization", nil, ins, "y")
	gm, err := Build(m, Options{Shapes: map[string][]int{"x": x.Shape}})
	if err != nil {
		t.Fatal(err)
	}
	layers := gm.BatchNormLayers()
	if len(layers) != 1 || layers[0].X != "x" || layers[0].Mean != "mean" || layers[0].Y != "y" || layers[0].Training() {
		t.Fatalf("BatchNormLayers = %+v", layers)
	}
	run := func() *onnx.Tensor {
		out, err := gm.Run(map[string]*onnx.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		return out["y"]
	}
	inference := bnRef(x, f64s(p[0].F), f64s(p[1].F), f64s(p[2].F), f64s(p[3].F), 1e-5)
	if err := allClose(run(), inference, 1e-5, 1e-6); err != nil {
		t.Errorf("inference mode: %v", err)
	}
	layers[0].SetTraining(true)
	if err := allClose(run(), want, 1e-5, 1e-6); err != nil {
		t.Errorf("training mode: %v", err)
	}
	if layers[0].k.train.Epsilon() != 1e-5 {
		t.Errorf("kernel epsilon %g", layers[0].k.train.Epsilon())
	}
	layers[0].SetTraining(false)
	if err := allClose(run(), inference, 1e-5, 1e-6); err != nil {
		t.Errorf("back to inference mode: %v", err)
	}
	// gradients through gorgonia.Grad follow the mode: in training mode
	// sum(y) has dB = count and dscale = sum(xhat) = 0
	layers[0].SetTraining(true)
	g := opGraphGrads(t, gm, "y", map[string]*onnx.Tensor{"x": x}, "s", "b", "mean")
	for ch := 0; ch < 3; ch++ {
		if math.Abs(float64(g["b"][ch])-16) > 1e-4 || math.Abs(float64(g["s"][ch])) > 1e-4 || g["mean"][ch] != 0 {
			t.Errorf("channel %d: training-mode graph gradients dB %g dscale %g dmean %g, want 16, 0, 0", ch, g["b"][ch], g["s"][ch], g["mean"][ch])
		}
	}
}

func TestLayerNormGradients(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	for _, c := range []struct {
		shape       []int
		axis        int
		scale, bias []int // bias nil: none
	}{
		{[]int{2, 3, 4}, 2, []int{4}, []int{4}},
		{[]int{2, 3, 4}, 1, []int{3, 4}, []int{3, 4}},
		{[]int{2, 3, 4}, 0, []int{2, 3, 4}, nil},
		{[]int{2, 3, 4}, 1, []int{1, 4}, []int{3, 1}},
		{[]int{6, 5}, 1, []int{5}, nil},
		{[]int{6, 5}, 1, []int{}, []int{}}, // scalar scale and bias
	} {
		x := randTensor(r, c.shape...)
		s := randTensor(r, c.scale...)
		in := []*onnx.Tensor{x, s}
		wrt := []int{0, 1}
		if c.bias != nil {
			in = append(in, randTensor(r, c.bias...))
			wrt = append(wrt, 2)
		}
		name := fmt.Sprintf("LN %v axis %d scale %v bias %v", c.shape, c.axis, c.scale, c.bias)
		checkGrad(t, name, newLN(c.shape, c.axis, 1e-3, c.scale, c.bias, c.bias != nil), in, wrt, 3e-3)
		outer, n := onnx.NumElems(c.shape[:c.axis]), onnx.NumElems(c.shape[c.axis:])
		stat := make([]int, len(c.shape))
		for i := range stat {
			stat[i] = 1
		}
		copy(stat, c.shape[:c.axis])
		for _, inv := range []bool{false, true} {
			k := &lnStatKernel{shape: c.shape, out: stat, outer: outer, n: n, eps: 1e-3, inv: inv}
			checkGrad(t, fmt.Sprintf("%s stat inv=%v", name, inv), k, []*onnx.Tensor{x}, []int{0}, 3e-3)
		}
	}
}

func TestLayerNormModel(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	x := randTensor(r, 2, 3, 4)
	s, b := randTensor(r, 4), randTensor(r, 4)
	ins := []opIn{{name: "x", t: x}, {name: "s", t: s, init: true}, {name: "b", t: b, init: true}}
	want := onnx.NewFloat(x.Shape, nil)
	for o := 0; o < 6; o++ {
		row := x.F[o*4 : o*4+4]
		mu, v := 0.0, 0.0
		for _, e := range row {
			mu += float64(e) / 4
		}
		for _, e := range row {
			v += (float64(e) - mu) * (float64(e) - mu) / 4
		}
		for j, e := range row {
			want.F[o*4+j] = float32((float64(e)-mu)/math.Sqrt(v+1e-5)*float64(s.F[j]) + float64(b.F[j]))
		}
	}
	opCheck(t, "LayerNormalization default axis", opModel(t, 17, "LayerNormalization", nil, ins, "y", "mean", "invstd"), ins, want)
	opCheck(t, "LayerNormalization no bias", opModel(t, 17, "LayerNormalization", map[string]any{"axis": 1, "epsilon": 0.1}, ins[:2], "y"), ins[:2], nil)
}
