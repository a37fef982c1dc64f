package native

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// TestTrainingGraphOpsKnown builds graft's training graphs (graph.BuildTraining,
// whose loss is graph.CrossEntropy, and gorgonia.Grad) for the committed
// fixture models and requires every gorgonia op type in them to be in
// gorgoniaOps: written by ExportGorgonia, or refused with a reason.
func TestTrainingGraphOpsKnown(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "fixtures", "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// the generated torchvision architectures, where present
	gen, _ := filepath.Glob(filepath.Join("..", "testdata", "generated", "*", "model.onnx"))
	paths = append(paths, gen...)
	seen := map[string][]string{} // op kind -> models
	built := 0
	for _, path := range paths {
		name := filepath.Base(filepath.Dir(path))
		src, err := onnx.ReadFile(path, onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		out := src.Proto.Graph.Output[0].Name
		var trainable []string
		for _, init := range src.Proto.Graph.Initializer {
			if init.DataType == 1 {
				trainable = append(trainable, init.Name)
			}
		}
		tg, err := graph.BuildTraining(src, graph.TrainOptions{Options: graph.Options{Batch: 2}, Logits: out, Trainable: trainable})
		if err != nil {
			t.Logf("%s: not a classifier graft trains (%v)", name, err)
			continue
		}
		built++
		for _, n := range tg.G.AllNodes() {
			if n.Op() == nil {
				continue
			}
			k := opKind(n.Op())
			if !slices.Contains(seen[k], name) {
				seen[k] = append(seen[k], name)
			}
		}
	}
	if built < 3 {
		t.Fatalf("only %d fixture models built for training; the test needs at least 3", built)
	}
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		op, ok := gorgoniaOps[k]
		switch {
		case !ok:
			t.Errorf("gorgonia op %s (in training graphs of %s) is not in gorgoniaOps: give it a plan or a reason", k, strings.Join(seen[k], ", "))
		case op.plan == nil && op.why == "":
			t.Errorf("gorgonia op %s: gorgoniaOps neither writes it nor says why not", k)
		default:
			t.Logf("%s (in %d models): %v %s", k, len(seen[k]), op.onnx, op.why)
		}
	}
}

// TestGorgoniaOpsTable checks that every entry either writes its op and
// names the ONNX ops it becomes, or says why it does not.
func TestGorgoniaOpsTable(t *testing.T) {
	for k, op := range gorgoniaOps {
		switch {
		case op.plan != nil && len(op.onnx) == 0:
			t.Errorf("%s: written, but the entry names no ONNX op", k)
		case op.plan != nil && op.why != "":
			t.Errorf("%s: written, yet the entry gives a reason not to", k)
		case op.plan == nil && op.why == "":
			t.Errorf("%s: neither written nor refused with a reason", k)
		}
	}
}
