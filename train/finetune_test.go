package train

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/graftml/graft/train/dataset"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// bnModel writes a small classifier that keeps its BatchNormalization
// nodes (as models from other producers than PyTorch's eval export do):
// Conv-BN-Relu twice, GlobalAveragePool, Flatten, Gemm; input [N,3,8,8].
func bnModel(t *testing.T, path string) {
	t.Helper()
	r := rand.New(rand.NewSource(11))
	var inits []*onnx.TensorProto
	param := func(name string, shape []int, scale, offset float64) string {
		w := onnx.NewFloat(shape, nil)
		for i := range w.F {
			w.F[i] = float32(offset + scale*r.NormFloat64())
		}
		w.Name = name
		inits = append(inits, w.ToProto())
		return name
	}
	intAttr := func(name string, v ...int64) *onnx.AttributeProto {
		return &onnx.AttributeProto{Name: name, Type: onnx.AttrInts, Ints: v}
	}
	var nodes []*onnx.NodeProto
	x := "input"
	cin := 3
	for i, cout := range []int{4, 6} {
		c := fmt.Sprintf("conv%d", i)
		nodes = append(nodes,
			&onnx.NodeProto{Name: c, OpType: "Conv", Input: []string{x, param(c+".w", []int{cout, cin, 3, 3}, 0.3, 0), param(c+".b", []int{cout}, 0.1, 0)},
				Output: []string{c + ".y"}, Attribute: []*onnx.AttributeProto{intAttr("pads", 1, 1, 1, 1)}},
			&onnx.NodeProto{Name: fmt.Sprintf("bn%d", i), OpType: "BatchNormalization",
				Input:  []string{c + ".y", param(fmt.Sprintf("bn%d.scale", i), []int{cout}, 0.1, 1), param(fmt.Sprintf("bn%d.bias", i), []int{cout}, 0.1, 0), param(fmt.Sprintf("bn%d.mean", i), []int{cout}, 0.1, 0), param(fmt.Sprintf("bn%d.var", i), []int{cout}, 0.1, 1)},
				Output: []string{fmt.Sprintf("bn%d.y", i)}},
			&onnx.NodeProto{Name: fmt.Sprintf("relu%d", i), OpType: "Relu", Input: []string{fmt.Sprintf("bn%d.y", i)}, Output: []string{fmt.Sprintf("relu%d.y", i)}})
		x, cin = fmt.Sprintf("relu%d.y", i), cout
	}
	nodes = append(nodes,
		&onnx.NodeProto{Name: "gap", OpType: "GlobalAveragePool", Input: []string{x}, Output: []string{"gap.y"}},
		&onnx.NodeProto{Name: "flat", OpType: "Flatten", Input: []string{"gap.y"}, Output: []string{"features"}},
		&onnx.NodeProto{Name: "fc", OpType: "Gemm", Input: []string{"features", param("fc.w", []int{5, 6}, 0.3, 0), param("fc.b", []int{5}, 0.1, 0)},
			Output: []string{"logits"}, Attribute: []*onnx.AttributeProto{{Name: "transB", Type: onnx.AttrInt, I: 1}}})
	vi := func(name string, dims ...int64) *onnx.ValueInfoProto {
		var ds []*onnx.TensorShapeDimension
		for i, d := range dims {
			if i == 0 {
				ds = append(ds, &onnx.TensorShapeDimension{Value: &onnx.DimParam{DimParam: "N"}})
			} else {
				ds = append(ds, &onnx.TensorShapeDimension{Value: &onnx.DimValue{DimValue: d}})
			}
		}
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeTensor{TensorType: &onnx.TypeProtoTensor{ElemType: 1, Shape: &onnx.TensorShapeProto{Dim: ds}}}}}
	}
	mp := &onnx.ModelProto{IrVersion: 8, ProducerName: "graft test", OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}},
		Graph: &onnx.GraphProto{Name: "bnnet", Node: nodes, Initializer: inits, Input: []*onnx.ValueInfoProto{vi("input", 0, 3, 8, 8)}, Output: []*onnx.ValueInfoProto{vi("logits", 0, 5)}}}
	if err := onnx.WriteFile(path, mp, true); err != nil {
		t.Fatal(err)
	}
}

func colorImages(t *testing.T, dir string, perClass int) { onnxtest.ColorImages(t, dir, perClass, 8) }

func initializers(t *testing.T, path string) map[string]*onnx.TensorProto {
	t.Helper()
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Initializers()
}

// TestFinetuneExport fine-tunes the last layers of a model with BN nodes,
// with frozen and with training BatchNormalization, and checks what the
// exported file holds: frozen weights bit-identical, trained ones and (in
// train mode) the trained layers' running statistics changed, and ONNX
// Runtime computing what graft computes.
func TestFinetuneExport(t *testing.T) {
	ort := onnxtest.ORT(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "bn.onnx")
	bnModel(t, model)
	data := filepath.Join(dir, "data")
	colorImages(t, data, 8)
	before := initializers(t, model)
	for _, bn := range []BNMode{BNFrozen, BNTrain} {
		t.Run(string(bn), func(t *testing.T) {
			out := filepath.Join(dir, string(bn)+".onnx")
			res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: out, Epochs: 3, FinetuneEpochs: 3, UnfreezeLast: 2, BN: bn, Batch: 4})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExportMaxDiff > 1e-4 {
				t.Fatalf("re-import differs by %g", res.ExportMaxDiff)
			}
			after := initializers(t, out)
			same := func(name string) bool { return bytes.Equal(before[name].RawData, after[name].RawData) }
			for _, frozen := range []string{"conv0.w", "conv0.b", "bn0.scale", "bn0.bias", "bn0.mean", "bn0.var"} {
				if !same(frozen) {
					t.Errorf("frozen %s changed", frozen)
				}
			}
			for _, trained := range []string{"conv1.w", "conv1.b", "bn1.scale", "bn1.bias"} {
				if same(trained) {
					t.Errorf("trainable %s did not change", trained)
				}
			}
			statsMoved := !same("bn1.mean") && !same("bn1.var")
			if statsMoved != (bn == "train") {
				t.Errorf("--bn %s: running statistics of the trained layer moved: %v", bn, statsMoved)
			}
			// ONNX Runtime on the written file, on the test images
			m, err := onnx.ReadFile(out, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			prep, _ := dataset.PreprocessFor(m, dataset.Overrides{})
			ds, _ := dataset.LoadDataset(dataset.DataConfig{Dir: data})
			x, kept, _, err := dataset.LoadTensors(ds.Test, prep, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			in := onnx.NewFloat(prep.Shape(len(kept)), x)
			want, err := ort.Run(out, map[string]*onnx.Tensor{"input": in})
			if err != nil {
				t.Fatal(err)
			}
			gm, err := graph.Build(m, graph.Options{Batch: len(kept)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := gm.Run(map[string]*onnx.Tensor{"input": in})
			if err != nil {
				t.Fatal(err)
			}
			name := m.Proto.Graph.Output[0].Name
			onnxtest.AssertClose(t, "fine-tuned model vs ONNX Runtime", got[name], want[name], 1e-4)
		})
	}
	if _, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, FinetuneEpochs: 1, UnfreezeLast: 2, BN: BNTrain, Batch: 1}); err == nil {
		t.Error("--bn train at batch size 1 accepted")
	}
}

// TestFinetuneHeapFlat runs many fine-tuning steps and checks the live
// heap does not grow with them.
func TestFinetuneHeapFlat(t *testing.T) {
	model, _, _ := sample(t)
	src, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	layers := surgery.Layers(src.Proto, "")
	trainable, err := surgery.SelectTrainable(layers, "", 4)
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNet(src, "input", src.Proto.Graph.Output[0].Name, trainable, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := onnx.NewFloat([]int{16, 3, 32, 32}, nil)
	for i := range x.F {
		x.F[i] = float32(i%17) / 17
	}
	ex := &Examples{X: x.F, Shape: []int{3, 32, 32}, Labels: make([]int, 16)}
	opt := NewAdam(0, false)
	sched, _ := NewSchedule("constant", 1e-4, 1000, 0, 0, 0)
	heap := func(epochs int) uint64 {
		if _, err := Run(context.Background(), net, Config{Epochs: epochs, Batch: 16, Optimizer: opt, Schedule: sched, Classes: 6}, ex, nil); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	heap(10) // warm up: graphs built, optimizer state allocated
	h1 := heap(10)
	h2 := heap(150)
	t.Logf("live heap after 20 steps %.1f MiB, after 170 steps %.1f MiB", float64(h1)/(1<<20), float64(h2)/(1<<20))
	if h2 > h1+2<<20 {
		t.Fatalf("live heap grew by %.1f MiB over 150 steps", float64(h2-h1)/(1<<20))
	}
}

// TestFrozenPrefixEquivalent: training from the frozen prefix's output
// gives bit-identical weights to training the whole network.
func TestFrozenPrefixEquivalent(t *testing.T) {
	model, data, _ := sample(t)
	src, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	prep, _ := dataset.PreprocessFor(src, dataset.Overrides{})
	ds, err := dataset.LoadDataset(dataset.DataConfig{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	x, kept, _, err := dataset.LoadTensors(ds.Train, prep, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	images := &Examples{X: x, Shape: prep.Shape(1)[1:]}
	for _, s := range kept {
		images.Labels = append(images.Labels, s.Label)
	}
	trainable, _ := surgery.SelectTrainable(surgery.Layers(src.Proto, ""), "", 3)
	logits := src.Proto.Graph.Output[0].Name
	train := func(net *Net, ex *Examples) map[string][]float32 {
		sched, _ := NewSchedule("constant", 1e-3, 100, 0, 0, 0)
		if _, err := Run(context.Background(), net, Config{Epochs: 2, Batch: 16, Optimizer: NewAdam(0, false), Schedule: sched, Classes: 6, Seed: 3}, ex, nil); err != nil {
			t.Fatal(err)
		}
		out := map[string][]float32{}
		for _, p := range trainable {
			out[p] = net.Weights[p].F
		}
		return out
	}
	full, err := NewNet(src, "input", logits, trainable, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := train(full, images)

	pre, sub, err := frozenPrefix(src, "input", logits, trainable, 16, append([]int{1}, images.Shape...))
	if err != nil || pre == nil {
		t.Fatalf("no frozen prefix: %v", err)
	}
	f, err := pre.Run(context.Background(), images.X, images.Len(), images.Shape)
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNet(sub, pre.Features, logits, trainable, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := train(net, &Examples{X: f, Shape: pre.shape, Labels: images.Labels})
	for _, p := range trainable {
		for i := range want[p] {
			if got[p][i] != want[p][i] {
				t.Fatalf("weight %q[%d]: %g from the prefix, %g from the whole network", p, i, got[p][i], want[p][i])
			}
		}
	}
}
