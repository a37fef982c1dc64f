package onnxtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/onnx"
)

func randConst(r *rand.Rand, shape ...int) *onnx.Tensor {
	t := onnx.NewFloat(shape, nil)
	for i := range t.F {
		t.F[i] = float32(r.NormFloat64() * 0.5)
	}
	return t
}

func constNode(name string, t *onnx.Tensor) *onnx.NodeProto {
	tp := t.ToProto()
	tp.Name = ""
	return &onnx.NodeProto{Name: name, OpType: "Constant", Output: []string{name},
		Attribute: []*onnx.AttributeProto{{Name: "value", Type: onnx.AttrTensor, T: tp}}}
}

func floatAttr(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttrFloat, F: v}
}

// symbolicInput declares x: [N, C, H, W] with H and W symbolic.
func symbolicInput(name string, c int) *onnx.ValueInfoProto {
	vi := onnx.ValueInfo(name, []int{1, c, 1, 1}, 1, "N")
	dims := vi.Type.GetTensorType().Shape.Dim
	dims[2].Value = &onnx.DimParam{DimParam: "H"}
	dims[3].Value = &onnx.DimParam{DimParam: "W"}
	return vi
}

// ConstClassifier writes, in a temporary folder, a classifier in the
// shapes non-PyTorch exporters (paddle2onnx, tf2onnx, Caffe2) write, and
// returns it and its path: every weight a Constant node (the Conv bias
// through an Identity), Constant Clip bounds and Reshape shape, a
// MatMul+Add head, and an input x: [N, 3, H, W] with N, H and W
// symbolic, at opset 13:
//
//	Conv -> Clip -> GlobalAveragePool -> Reshape -> MatMul -> Add -> Softmax
func ConstClassifier(t testing.TB) (*onnx.ModelProto, string) {
	t.Helper()
	r := rand.New(rand.NewSource(7))
	nodes := []*onnx.NodeProto{
		constNode("conv_w", randConst(r, 4, 3, 3, 3)),
		constNode("conv_b_raw", randConst(r, 4)),
		{Name: "conv_b_id", OpType: "Identity", Input: []string{"conv_b_raw"}, Output: []string{"conv_b"}},
		{Name: "conv", OpType: "Conv", Input: []string{"x", "conv_w", "conv_b"}, Output: []string{"c1"},
			Attribute: []*onnx.AttributeProto{onnx.IntsAttr("pads", 1, 1, 1, 1)}},
		constNode("clip_lo", onnx.NewFloat([]int{}, []float32{0})),
		constNode("clip_hi", onnx.NewFloat([]int{}, []float32{6})),
		{Name: "clip", OpType: "Clip", Input: []string{"c1", "clip_lo", "clip_hi"}, Output: []string{"a1"}},
		{Name: "gap", OpType: "GlobalAveragePool", Input: []string{"a1"}, Output: []string{"p1"}},
		constNode("shape", onnx.NewInt([]int{2}, []int64{-1, 4})),
		{Name: "flat", OpType: "Reshape", Input: []string{"p1", "shape"}, Output: []string{"feat"}},
		constNode("fc_w", randConst(r, 4, 5)),
		{Name: "fc", OpType: "MatMul", Input: []string{"feat", "fc_w"}, Output: []string{"mm"}},
		constNode("fc_b", randConst(r, 5)),
		{Name: "fc_add", OpType: "Add", Input: []string{"mm", "fc_b"}, Output: []string{"logits"}},
		{Name: "prob", OpType: "Softmax", Input: []string{"logits"}, Output: []string{"y"},
			Attribute: []*onnx.AttributeProto{onnx.IntAttr("axis", 1)}},
	}
	mp := &onnx.ModelProto{
		IrVersion:    8,
		ProducerName: "paddle2onnx-like",
		OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: "", Version: 13}},
		Graph: &onnx.GraphProto{
			Name:   "const_classifier",
			Node:   nodes,
			Input:  []*onnx.ValueInfoProto{symbolicInput("x", 3)},
			Output: []*onnx.ValueInfoProto{onnx.ValueInfo("y", []int{1, 5}, 1, "N")},
		},
	}
	path := filepath.Join(t.TempDir(), "const_classifier.onnx")
	if err := onnx.WriteFile(path, mp, false); err != nil {
		t.Fatal(err)
	}
	return mp, path
}

// ColorImages writes DIR/train/<class>/*.png and DIR/test/<class>/*.png,
// perClass images each for three classes: size x size noisy images whose
// mean color depends on the class (red, green, blue), so that any
// backbone's features separate them.
func ColorImages(t testing.TB, dir string, perClass, size int) {
	t.Helper()
	r := rand.New(rand.NewSource(5))
	base := [][3]float64{{200, 60, 60}, {60, 200, 60}, {60, 60, 200}}
	for _, split := range []string{"train", "test"} {
		for c, b := range base {
			d := filepath.Join(dir, split, fmt.Sprintf("class%d", c))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < perClass; i++ {
				img := image.NewRGBA(image.Rect(0, 0, size, size))
				for p := 0; p < size*size; p++ {
					ch := func(k int) uint8 { return uint8(max(0, min(255, b[k]+60*r.NormFloat64()))) }
					img.Set(p%size, p/size, color.RGBA{ch(0), ch(1), ch(2), 255})
				}
				var buf bytes.Buffer
				if err := png.Encode(&buf, img); err != nil {
					t.Fatal(err)
				}
				if err := onnx.WriteAtomic(filepath.Join(d, fmt.Sprintf("%02d.png", i)), buf.Bytes(), false); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// LowPrecisionTol is how far graft may be from ONNX Runtime on the float16 and
// QDQ fixtures, relative to the largest output magnitude. float16: ONNX
// Runtime rounds to float16 after every op (it casts around its float32
// kernels), graft only at the output; each rounding is 2^-11 relative,
// and the fixtures have five ops that round before the logits. QDQ:
// ONNX Runtime runs the quantized ops in integer arithmetic
// (QLinearConv, requantizing with its own rounding), graft in float32
// with fake quantization; a value on a rounding tie may land one
// quantization step apart, which the next layers spread. The logits'
// step is 1/255 of their range: the tolerance allows about 2 steps.
//
// It also bounds ONNX Runtime's distance from the fixtures' stored
// output_0.pb, which gen_lowp.py computes with the float32 network.
var LowPrecisionTol = map[string]float64{"f16_classifier": 1e-2, "qdq_classifier": 2e-2}
