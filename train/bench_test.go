package train

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// fashionMNIST reads the first n images of Debian's dataset-fashion-mnist
// test split (IDX format) as gray images.
func fashionMNIST(b *testing.B, n int) ([]image.Image, []int) {
	b.Helper()
	dir := "/usr/share/datasets/fashion-mnist"
	open := func(name string) io.Reader {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			b.Skipf("Fashion-MNIST not installed (Debian package dataset-fashion-mnist): %v", err)
		}
		b.Cleanup(func() { f.Close() })
		z, err := gzip.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		return z
	}
	imgs := open("t10k-images-idx3-ubyte.gz")
	var hdr [4]uint32
	if err := binary.Read(imgs, binary.BigEndian, &hdr); err != nil {
		b.Fatal(err)
	}
	labels := open("t10k-labels-idx1-ubyte.gz")
	var lh [2]uint32
	if err := binary.Read(labels, binary.BigEndian, &lh); err != nil {
		b.Fatal(err)
	}
	var out []image.Image
	var ys []int
	for i := 0; i < n; i++ {
		g := image.NewGray(image.Rect(0, 0, 28, 28))
		if _, err := io.ReadFull(imgs, g.Pix); err != nil {
			b.Fatal(err)
		}
		var y [1]byte
		if _, err := io.ReadFull(labels, y[:]); err != nil {
			b.Fatal(err)
		}
		out = append(out, g)
		ys = append(ys, int(y[0]))
	}
	return out, ys
}

// BenchmarkHeadEpochs measures the README target "100 head epochs on 1,000
// cached samples of real backbone features in under 2 s": features of the
// shipped backbone over 1,000 Fashion-MNIST images, a linear head with the
// default settings.
func BenchmarkHeadEpochs(b *testing.B) {
	model, _, _ := sampleB(b)
	src, err := onnx.ReadFile(model, onnx.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	prep, err := PreprocessFor(src, Overrides{})
	if err != nil {
		b.Fatal(err)
	}
	imgs, ys := fashionMNIST(b, 1000)
	x := make([]float32, len(imgs)*prep.Size())
	for i, im := range imgs {
		if err := prep.Tensor(im, x[i*prep.Size():(i+1)*prep.Size()]); err != nil {
			b.Fatal(err)
		}
	}
	cut, err := graph.FindCut(src)
	if err != nil {
		b.Fatal(err)
	}
	shape, _ := mustShape(b, src, cut.Tensor)
	adapted := graph.CloneProto(src.Proto)
	if err := graph.CutAt(adapted, cut.Tensor); err != nil {
		b.Fatal(err)
	}
	head, err := graph.AttachHead(adapted, cut.Tensor, shape, graph.HeadSpec{Classes: 10})
	if err != nil {
		b.Fatal(err)
	}
	ext := &Extractor{Src: &onnx.Model{Proto: adapted}, Input: src.Inputs()[0].Name, Features: head.Features, Batch: 64, Dim: head.FeatureDim}
	f, err := ext.Run(x, len(imgs), prep.Shape(1)[1:])
	if err != nil {
		b.Fatal(err)
	}
	train := &Examples{X: f, Shape: []int{head.FeatureDim}, Labels: ys}
	sub, err := graph.SubModel(adapted, head.Features, []int{1, head.FeatureDim}, head.Logits)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		net, err := NewNet(&onnx.Model{Proto: sub}, head.Features, head.Logits, head.Params, 0)
		if err != nil {
			b.Fatal(err)
		}
		opt, _ := NewOptimizer(DefaultOptimizer, 0, 0, false)
		steps := (train.Len() + DefaultBatch - 1) / DefaultBatch
		sched, _ := NewSchedule(DefaultSchedule, DefaultLR, steps*100, 0, 0, 0)
		fit, err := Run(net, Config{Epochs: 100, Batch: DefaultBatch, Optimizer: opt, Schedule: sched, Classes: 10}, train, nil)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(fit.History[99].TrainAcc, "train-acc")
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/100-epochs")
}

// BenchmarkAdaptSample is the README's first command: the default adapt
// run on the shipped sample, features and all.
func BenchmarkAdaptSample(b *testing.B) {
	model, data, dir := sampleB(b)
	for i := 0; i < b.N; i++ {
		res, err := Adapt(AdaptConfig{Model: model, Data: data, Out: filepath.Join(dir, fmt.Sprintf("o%d.onnx", i))})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(res.Test.Accuracy, "test-acc")
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
}

func sampleB(b *testing.B) (model, data, dir string) {
	b.Helper()
	dir = b.TempDir()
	model, data, err := extractSample(dir)
	if err != nil {
		b.Fatal(err)
	}
	return model, data, dir
}

func mustShape(b *testing.B, src *onnx.Model, name string) ([]int, bool) {
	m, err := graph.Build(src, graph.Options{Freeze: true, Outputs: []string{name}})
	if err != nil {
		b.Fatal(err)
	}
	return m.Shape(name)
}
