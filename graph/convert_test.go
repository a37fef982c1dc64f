package graph

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// TestConvertErrorTypes: errors.As finds the reader's and the builder's
// error types through Convert, and an OptionError names the option.
func TestConvertErrorTypes(t *testing.T) {
	c := onnxtest.Fixture(t, "conv_bn_pool_fc")
	dir := t.TempDir()
	edited := func(name string, edit func(*onnx.NodeProto)) string {
		m, err := onnx.ReadFile(c.ModelPath, onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range m.Proto.Graph.Node {
			if n.OpType == "Gemm" {
				edit(n)
			}
		}
		path := filepath.Join(dir, name)
		if err := onnx.WriteFile(path, m.Proto, true); err != nil {
			t.Fatal(err)
		}
		return path
	}
	junk := filepath.Join(dir, "junk.onnx")
	os.WriteFile(junk, []byte("not a model"), 0o644)
	unsupported := edited("unsup.onnx", func(n *onnx.NodeProto) { n.OpType = "NonMaxSuppression" })
	badNode := edited("node.onnx", func(n *onnx.NodeProto) {
		n.Attribute = append(n.Attribute, &onnx.AttributeProto{Name: "transA", Type: onnx.AttrInt, I: 1})
	})
	convert := func(model string) error {
		_, err := Convert(context.Background(), ConvertConfig{Model: model, Out: filepath.Join(dir, "out.onnx"), Batch: "dynamic"})
		return err
	}
	var fe *onnx.FormatError
	if err := convert(junk); !errors.As(err, &fe) {
		t.Errorf("junk model: %v (%T), want *onnx.FormatError", err, err)
	}
	var ue *UnsupportedOpsError
	if err := convert(unsupported); !errors.As(err, &ue) {
		t.Errorf("unsupported op: %v (%T), want *UnsupportedOpsError", err, err)
	}
	var ne *NodeError
	if err := convert(badNode); !errors.As(err, &ne) {
		t.Errorf("bad node: %v (%T), want *NodeError", err, err)
	}
	var oe *onnx.OptionError
	_, err := Convert(context.Background(), ConvertConfig{Model: c.ModelPath, Out: filepath.Join(dir, "out.onnx"), Labels: []string{"a"}})
	if !errors.As(err, &oe) || oe.Option != "ConvertConfig.Labels" {
		t.Errorf("labels without a head: %v, want an OptionError for ConvertConfig.Labels", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Convert(ctx, ConvertConfig{Model: c.ModelPath, Out: filepath.Join(dir, "out.onnx")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.onnx")); err == nil {
		t.Error("a failed convert wrote its output")
	}
}
