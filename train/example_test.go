package train_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train"
	"github.com/graftml/graft/train/dataset"
)

// Transfer learning in one call: the shipped sample backbone, pretrained
// on 6 Fashion-MNIST classes, learns 4 classes it never saw.
func ExampleAdapt() {
	dir, err := os.MkdirTemp("", "graft-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	model, data, err := models.Extract(dir)
	if err != nil {
		log.Fatal(err)
	}
	res, err := train.Adapt(context.Background(), train.AdaptConfig{
		Model: model,
		Data:  data,
		Out:   filepath.Join(dir, "adapted.onnx"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("classes:", res.Classes)
	fmt.Println("head:", res.Head)
	fmt.Println("test images:", res.Test.N)
	fmt.Println("beats chance:", res.Test.Accuracy > 1/float64(len(res.Classes)))
	// Output:
	// classes: [Ankle_boot Bag Sandal Sneaker]
	// head: linear
	// test images: 400
	// beats chance: true
}

// The same route step by step, for programs that need another one: load,
// cut, attach a head, freeze the backbone, train, export.
func Example_stepByStep() {
	dir, err := os.MkdirTemp("", "graft-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path, data, err := models.Extract(dir)
	if err != nil {
		log.Fatal(err)
	}

	// Load the model and the data, preprocessed as the model expects.
	src, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	prep, err := dataset.PreprocessFor(src, dataset.Overrides{})
	if err != nil {
		log.Fatal(err)
	}
	ds, err := dataset.LoadDataset(dataset.DataConfig{Dir: data})
	if err != nil {
		log.Fatal(err)
	}
	x, kept, _, err := dataset.LoadTensors(ds.Train, prep, 0, true)
	if err != nil {
		log.Fatal(err)
	}
	images := &train.Examples{X: x, Shape: prep.Shape(1)[1:]}
	for _, s := range kept {
		images.Labels = append(images.Labels, s.Label)
	}

	// Cut the classifier off where it starts, and learn the cut's shape.
	cut, err := surgery.ResolveCut(src, "auto")
	if err != nil {
		log.Fatal(err)
	}
	probe, err := graph.Build(src, graph.Options{Freeze: true, Outputs: []string{cut}})
	if err != nil {
		log.Fatal(err)
	}
	cutShape, _ := probe.Shape(cut)
	mp := surgery.CloneProto(src.Proto)
	if err := surgery.CutAt(mp, cut); err != nil {
		log.Fatal(err)
	}

	// Attach a linear head for the new classes; its labels replace the
	// base model's.
	head, err := surgery.AttachHead(mp, cut, cutShape, surgery.HeadSpec{Classes: len(ds.Classes), Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	labels, _ := json.Marshal(ds.Classes)
	surgery.SetMetadata(mp, onnx.KeyLabels, string(labels))

	// Freeze the backbone: only the head's weights are trainable.
	adapted := &onnx.Model{Proto: mp, Path: path}
	input := src.Inputs()[0].Name
	net, err := train.NewNet(adapted, input, head.Logits, head.Params, 1)
	if err != nil {
		log.Fatal(err)
	}

	// Train; the zero Config fields mean the defaults (Adam, DefaultLR).
	fit, err := train.Run(context.Background(), net, train.Config{Epochs: 3}, images, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Export: put the trained weights into the model and write it.
	if _, err := surgery.UpdateWeights(mp, net.Weights); err != nil {
		log.Fatal(err)
	}
	if err := graph.SetOutputs(mp, path); err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(dir, "adapted.onnx")
	if err := onnx.WriteFile(out, mp, false); err != nil {
		log.Fatal(err)
	}
	written, err := onnx.ReadFile(out, onnx.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	got, _ := written.Labels()
	fmt.Println("trainable weights:", head.Params)
	fmt.Println("epochs:", len(fit.History))
	fmt.Println("loss fell:", fit.History[2].TrainLoss < fit.History[0].TrainLoss)
	fmt.Println("labels:", got)
	// Output:
	// trainable weights: [graft_head.0.weight graft_head.0.bias]
	// epochs: 3
	// loss fell: true
	// labels: [Ankle_boot Bag Sandal Sneaker]
}
