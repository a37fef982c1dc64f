package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// brokenSample writes the sample backbone after edit to dir/name.
func brokenSample(t *testing.T, model, dir, name string, edit func(*onnx.ModelProto)) string {
	t.Helper()
	m, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	edit(m.Proto)
	path := filepath.Join(dir, name)
	if err := onnx.WriteFile(path, m.Proto, true); err != nil {
		t.Fatal(err)
	}
	return path
}

func firstNode(mp *onnx.ModelProto, op string) *onnx.NodeProto {
	for _, n := range mp.Graph.Node {
		if n.OpType == op {
			return n
		}
	}
	return nil
}

// TestAdaptErrorTypes: errors.As finds the error types of the layers
// below through Adapt.
func TestAdaptErrorTypes(t *testing.T) {
	model, data, dir := sample(t)
	junk := filepath.Join(dir, "junk.onnx")
	os.WriteFile(junk, []byte("not a model"), 0o644)
	unsupported := brokenSample(t, model, dir, "unsup.onnx", func(mp *onnx.ModelProto) { firstNode(mp, "Clip").OpType = "NonMaxSuppression" })
	var logits string
	badNode := brokenSample(t, model, dir, "node.onnx", func(mp *onnx.ModelProto) {
		n := firstNode(mp, "Gemm") // transposing A makes its inner dimensions differ
		n.Attribute = append(n.Attribute, &onnx.AttributeProto{Name: "transA", Type: onnx.AttrInt, I: 1})
		logits = n.Output[0]
	})
	run := func(m string) error {
		cut := ""
		if m == badNode {
			cut = logits // so that the model is built through the bad node
		}
		_, err := Adapt(context.Background(), AdaptConfig{Model: m, Data: data, Epochs: 1, Cut: cut})
		return err
	}
	var fe *onnx.FormatError
	if err := run(junk); !errors.As(err, &fe) {
		t.Errorf("junk model: %v (%T), want *onnx.FormatError", err, err)
	}
	var ue *graph.UnsupportedOpsError
	if err := run(unsupported); !errors.As(err, &ue) {
		t.Errorf("unsupported op: %v (%T), want *graph.UnsupportedOpsError", err, err)
	}
	var ne *graph.NodeError
	if err := run(badNode); !errors.As(err, &ne) {
		t.Errorf("bad node: %v (%T), want *graph.NodeError", err, err)
	}
	var oe *onnx.OptionError
	if _, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, LR: -1}); !errors.As(err, &oe) || oe.Option != "AdaptConfig.LR" {
		t.Errorf("negative learning rate: %v, want an OptionError for AdaptConfig.LR", err)
	}
}

// TestAdaptCancel: a cancelled context stops Adapt with its error.
func TestAdaptCancel(t *testing.T) {
	model, data, _ := sample(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Adapt(ctx, AdaptConfig{Model: model, Data: data, Epochs: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	r := &cancelAt{phase: PhaseHead, cancel: cancel}
	if _, err := Adapt(ctx, AdaptConfig{Model: model, Data: data, Epochs: 50, Reporter: r}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during training: %v", err)
	}
	if r.steps > 6 {
		t.Fatalf("training went on for %d steps after the context was cancelled", r.steps-1)
	}
}

// cancelAt cancels a context at the first step of a phase.
type cancelAt struct {
	NopReporter
	phase  Phase
	cancel func()
	steps  int
}

func (c *cancelAt) Step(p Phase, _ StepInfo) {
	if p == c.phase {
		c.steps++
		c.cancel()
	}
}

// TestFeaturesOptional: Features works with the zero FeatureOptions.
func TestFeaturesOptional(t *testing.T) {
	model, data, _ := sample(t)
	src, input, prep, err := openImageModel(model, onnx.Limits{}, datasetOverrides(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ds := loadSample(t, data)
	ext := &Extractor{Src: src, Input: input, Features: src.Proto.Graph.Output[0].Name, Dim: 6}
	ex, _, err := Features(context.Background(), ext, ds.Train[:3], prep, FeatureOptions{})
	if err != nil || ex.Len() != 3 {
		t.Fatalf("features: %v, %v", ex, err)
	}
}

func datasetOverrides() dataset.Overrides { return dataset.Overrides{} }

func loadSample(t *testing.T, data string) *dataset.Dataset {
	t.Helper()
	ds, err := dataset.LoadDataset(dataset.DataConfig{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
