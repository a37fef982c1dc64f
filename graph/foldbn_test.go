package graph

import (
	"bytes"
	"context"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/onnx/surgery"
	"google.golang.org/protobuf/proto"
)

// TestFoldBatchNorm compares models with their BatchNormalization nodes
// folded and kept, and checks that Build never changes the model it was
// given (exports are written from it).
func TestFoldBatchNorm(t *testing.T) {
	cases := []func(t *testing.T) *onnxtest.Case{
		func(t *testing.T) *onnxtest.Case { return onnxtest.Fixture(t, "dense_bnkeep") },
		func(t *testing.T) *onnxtest.Case { return onnxtest.Generated(t, "resnet18_bnpreserve") },
	}
	for _, get := range cases {
		c := get(t)
		t.Run(c.Name, func(t *testing.T) {
			src, err := onnx.ReadFile(c.ModelPath, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			before, err := onnx.Encode(src.Proto)
			if err != nil {
				t.Fatal(err)
			}
			bns := 0
			for _, n := range src.Proto.Graph.Node {
				if n.OpType == "BatchNormalization" {
					bns++
				}
			}
			cp := surgery.CloneProto(src.Proto)
			n, err := surgery.FoldBatchNorm(cp)
			if err != nil {
				t.Fatal(err)
			}
			left := 0
			for _, nd := range cp.Graph.Node {
				if nd.OpType == "BatchNormalization" {
					left++
				}
			}
			t.Logf("%d of %d BatchNormalization nodes folded", n, bns)
			if n == 0 || left != bns-n {
				t.Fatalf("folded %d, %d of %d BatchNormalization nodes left", n, left, bns)
			}
			feeds, err := c.Feeds(0)
			if err != nil {
				t.Fatal(err)
			}
			var x *onnx.Tensor
			for _, v := range feeds {
				x = v
			}
			// folded and kept, through Build (Freeze folds on a copy)
			runBoth(t, src, x, nil, 1e-5)
			// and the folded proto itself, without fusion
			kept := runFile(t, c.ModelPath, feeds)
			folded, err := Build(&onnx.Model{Proto: cp}, Options{Shapes: map[string][]int{src.Inputs()[0].Name: x.Shape}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := folded.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range kept {
				onnxtest.AssertClose(t, "folded "+name, got[name], want, 1e-5)
			}
			after, err := onnx.Encode(src.Proto)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("Build with Freeze changed the model it was given")
			}
		})
	}
}

// TestFoldBatchNormKeeps: a BatchNormalization whose input has another
// reader, or is asked for, or whose Conv shares its weight, is handled
// without changing what anything else reads.
func TestFoldBatchNormKeeps(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	pad1 := onnx.IntsAttr("pads", 1, 1, 1, 1)
	bn := func(in, out string) *onnx.NodeProto {
		return node("BatchNormalization", []string{in, "s", "bb", "mu", "var"}, []string{out})
	}
	v := randNamed(r, "var", 4)
	for i := range v.F {
		v.F[i] = v.F[i]*v.F[i] + 0.5
	}
	inits := []*onnx.Tensor{randNamed(r, "w", 4, 4, 3, 3), randNamed(r, "s", 4), randNamed(r, "bb", 4), randNamed(r, "mu", 4), v}
	cases := []struct {
		name  string
		nodes []*onnx.NodeProto
		keep  []string
		want  int
	}{
		{"plain", []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}, pad1), bn("y", "out")}, nil, 1},
		{"second_reader", []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}, pad1), bn("y", "z"), node("Add", []string{"y", "z"}, []string{"out"})}, nil, 0},
		{"kept", []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}, pad1), bn("y", "out")}, []string{"y"}, 0},
		{"shared_weight", []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}, pad1), bn("y", "z"),
			node("Conv", []string{"z", "w"}, []string{"y2"}, pad1), node("Add", []string{"z", "y2"}, []string{"out"})}, nil, 1},
		{"two_bns_one_stats", []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}, pad1), bn("y", "z"),
			node("Conv", []string{"z", "w"}, []string{"y2"}, pad1), bn("y2", "out")}, nil, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := netSpec{opset: 13, x: []int{2, 4, 6, 6}, nodes: tc.nodes, inits: inits, outs: []string{"out"}}
			src := spec.model(t)
			cp := surgery.CloneProto(src.Proto)
			n, err := surgery.FoldBatchNorm(cp, tc.keep...)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("folded %d, want %d", n, tc.want)
			}
			x := randNamed(r, "x", 2, 4, 6, 6)
			feeds := map[string]*onnx.Tensor{"x": x}
			run := func(mp *onnx.ModelProto) map[string]*onnx.Tensor {
				m, err := Build(&onnx.Model{Proto: mp}, Options{Outputs: append([]string{"out"}, tc.keep...)})
				if err != nil {
					t.Fatal(err)
				}
				out, err := m.Run(feeds)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			want, got := run(src.Proto), run(cp)
			for name, w := range want {
				onnxtest.AssertClose(t, name, got[name], w, 1e-5)
			}
			runBoth(t, src, x, append([]string{"out"}, tc.keep...), 1e-5)
		})
	}
}

// TestConvertKeepsWeightsWithFusion: `graft convert` builds its models
// with Freeze (BatchNormalization folded, epilogues fused), yet every
// initializer it writes that the input model has is byte-identical:
// exports come from the original ModelProto.
func TestConvertKeepsWeightsWithFusion(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ConvertConfig
	}{
		{"dense_bnkeep", ConvertConfig{Cut: "/pool/AveragePool_output_0", Batch: "dynamic"}},
		{"dense_bnkeep", ConvertConfig{Batch: "4"}},
		{"conv_bn_pool_fc", ConvertConfig{Cut: "auto", Batch: "dynamic"}},
		{"conv_bn_pool_fc", ConvertConfig{Head: &surgery.HeadSpec{Classes: 3, Seed: 1}, Batch: "4"}},
	} {
		name, cfg := tc.name, tc.cfg
		c := onnxtest.Fixture(t, name)
		{
			src, err := onnx.ReadFile(c.ModelPath, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Model = c.ModelPath
			cfg.Out = filepath.Join(t.TempDir(), "out.onnx")
			if _, err := Convert(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			out, err := onnx.ReadFile(cfg.Out, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			before := src.Initializers()
			same := 0
			for _, tp := range out.Proto.Graph.Initializer {
				old, ok := before[tp.Name]
				if !ok {
					continue // the new head's
				}
				a, err := proto.Marshal(old)
				if err != nil {
					t.Fatal(err)
				}
				b, err := proto.Marshal(tp)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, b) {
					t.Errorf("%s: initializer %q changed", name, tp.Name)
				}
				same++
			}
			if same == 0 {
				t.Errorf("%s: no initializer kept", name)
			}
		}
	}
}
