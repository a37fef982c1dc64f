package graph_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx/surgery"
)

// Convert replaces the shipped sample backbone's 6-class classifier with
// a fresh 4-class head that outputs probabilities, with a symbolic batch.
func ExampleConvert() {
	dir, err := os.MkdirTemp("", "graft-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	model, _, err := models.Extract(dir)
	if err != nil {
		log.Fatal(err)
	}
	res, err := graph.Convert(context.Background(), graph.ConvertConfig{
		Model:  model,
		Out:    filepath.Join(dir, "head4.onnx"),
		Head:   &surgery.HeadSpec{Classes: 4, Softmax: true, Seed: 1},
		Labels: []string{"boot", "bag", "sandal", "sneaker"},
		Batch:  "dynamic",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cut at %q\n", res.Cut)
	for _, out := range res.Outputs {
		fmt.Println("output", out.Name, out.Shape)
	}
	// Output:
	// cut at "/Flatten_output_0"
	// output probabilities [N 4]
}
