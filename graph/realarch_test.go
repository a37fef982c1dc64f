package graph

import (
	"fmt"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// realArchs are the PyTorch exports graph/testdata/gen_models.py makes.
var realArchs = []string{
	"resnet18", "resnet18_op13", "mobilenet_v2", "mobilenet_v2_op13",
	"squeezenet1_1", "squeezenet1_1_op13", "efficientnet_b0", "efficientnet_b0_op13",
	"densenet121", "densenet121_op13", "mobilenet_v2_dynbatch", "resnet18_bnpreserve",
}

// fixtures are the small committed models of graph/testdata/fixtures.
var fixtures = []string{
	"conv_bn_pool_fc", "mobile_block_op11", "mobile_block_op13", "fire", "dense_bnkeep",
	"se_act_op13", "se_act_op14", "dynbatch_view", "softmax_head_op11", "softmax_head_op13", "tiny_unet",
}

// runCaseSet builds the case's model for set i's input shapes and runs it.
func runCaseSet(t *testing.T, c *onnxtest.Case, i int) map[string]*onnx.Tensor {
	t.Helper()
	feeds, err := c.Feeds(i)
	if err != nil {
		t.Fatal(err)
	}
	return runFile(t, c.ModelPath, feeds)
}

// runFile builds the model file for the feeds' shapes and runs it.
func runFile(t *testing.T, path string, feeds map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	t.Helper()
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Shapes: map[string][]int{}}
	for name, x := range feeds {
		opt.Shapes[name] = x.Shape
	}
	gm, err := Build(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := gm.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// relTol bounds graft's difference from PyTorch and from ONNX Runtime on
// whole models, relative to the output's largest magnitude. Measured with
// CI=true on every fixture and generated architecture (December, 2 cores):
// worst 9.8e-7 (densenet121 and mobilenet_v2 against PyTorch, resnet18 at
// 6.1e-7 against ONNX Runtime), so 1e-5 leaves a factor of 10 for other
// CPUs' summation orders and still fails a kernel that is off by one
// element's contribution. No model needs more.
const relTol = 1e-5

// checkCase runs every test set of a case through graft and compares with
// the stored reference: max abs error at most relTol times the reference's
// max magnitude.
func checkCase(t *testing.T, c *onnxtest.Case) {
	for i := range c.Sets {
		got := runCaseSet(t, c, i)
		wants, err := c.Wants(i)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range wants {
			d, err := onnxtest.Compare(got[name], want)
			if err != nil {
				t.Fatalf("set %d output %q: %v", i, name, err)
			}
			t.Logf("set %d %s %v: max abs diff %.3g, reference max %.3g (relative %.2g)", i, name, want.Shape, d.MaxAbs, d.Ref, d.Rel())
			if d.Rel() > relTol {
				t.Errorf("set %d output %q: max abs diff %.3g is %.3g of the reference's max %.3g (limit %g), worst at %v", i, name, d.MaxAbs, d.Rel(), d.Ref, relTol, d.Index)
			}
		}
	}
}

func TestFixtures(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) { checkCase(t, onnxtest.Fixture(t, name)) })
	}
}

// TestRealArchitectures runs the PyTorch exports of ImageNet CNNs against
// PyTorch's outputs.
func TestRealArchitectures(t *testing.T) {
	onnxtest.GeneratedDir(t)
	for _, name := range realArchs {
		t.Run(name, func(t *testing.T) { checkCase(t, onnxtest.Generated(t, name)) })
	}
}

// TestAgainstONNXRuntime runs the same models through ONNX Runtime on
// fresh random inputs and compares with graft.
func TestAgainstONNXRuntime(t *testing.T) {
	ort := onnxtest.ORT(t)
	names := append([]string{}, fixtures...)
	if testing.Short() {
		names = names[:3]
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { crossCheck(t, ort, onnxtest.Fixture(t, name)) })
	}
	onnxtest.GeneratedDir(t)
	for _, name := range realArchs {
		t.Run(name, func(t *testing.T) { crossCheck(t, ort, onnxtest.Generated(t, name)) })
	}
}

func crossCheck(t *testing.T, ort *onnxtest.Runtime, c *onnxtest.Case) {
	feeds, err := c.Feeds(0)
	if err != nil {
		t.Fatal(err)
	}
	// perturb the stored inputs so that this is not the PyTorch check again
	for _, x := range feeds {
		for i := range x.F {
			x.F[i] = x.F[i]*0.9 + float32(i%7)*0.01
		}
	}
	want, err := ort.Run(c.ModelPath, feeds)
	if err != nil {
		t.Fatal(err)
	}
	got := runFile(t, c.ModelPath, feeds)
	for name, w := range want {
		if d, err := onnxtest.Compare(got[name], w); err == nil {
			t.Logf("%s %v vs ONNX Runtime: max abs diff %.3g, reference max %.3g (relative %.2g)", name, w.Shape, d.MaxAbs, d.Ref, d.Rel())
		}
		onnxtest.AssertClose(t, fmt.Sprintf("%s output %q vs ONNX Runtime", c.Name, name), got[name], w, relTol)
	}
}
