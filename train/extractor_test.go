package train

import (
	"context"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// TestExtractorPadsLastBatch: once a full batch's graph exists, the last
// images of a run go through it padded with zeros instead of a graph
// built for their number, and get the features a run of their own gives.
func TestExtractorPadsLastBatch(t *testing.T) {
	model, data, _ := sample(t)
	src, input, prep, err := openImageModel(model, onnx.Limits{}, datasetOverrides(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ds := loadSample(t, data)
	x, kept, _, err := dataset.LoadTensors(ds.Train[:11], prep, 2, true)
	if err != nil || len(kept) != 11 {
		t.Fatalf("%d images: %v", len(kept), err)
	}
	shape := prep.Shape(1)[1:]
	size := prep.Size()
	ext := &Extractor{Src: src, Input: input, Features: src.Proto.Graph.Output[0].Name, Batch: 4, Dim: 6}
	all, err := ext.Run(context.Background(), x, 11, shape)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 11*6 {
		t.Fatalf("%d features for 11 images of 6", len(all))
	}
	if len(ext.models) != 1 || ext.models[4] == nil {
		t.Fatalf("graphs built for batches %v, want only 4", keys(ext.models))
	}
	// the last three images alone, through a graph of batch 3
	alone := &Extractor{Src: src, Input: input, Features: ext.Features, Batch: 4, Dim: 6}
	last, err := alone.Run(context.Background(), x[8*size:], 3, shape)
	if err != nil {
		t.Fatal(err)
	}
	if alone.models[3] == nil {
		t.Fatal("three images alone did not build a batch-3 graph")
	}
	for i, v := range last {
		if all[8*6+i] != v {
			t.Fatalf("feature %d of the padded batch is %g, alone %g", i, all[8*6+i], v)
		}
	}
}

func keys[K comparable, V any](m map[K]V) []K {
	var ks []K
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
