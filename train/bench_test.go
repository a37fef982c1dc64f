package train

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graftml/graft/train/dataset"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
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
	prep, err := dataset.PreprocessFor(src, dataset.Overrides{})
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
	cut, err := surgery.FindCut(src)
	if err != nil {
		b.Fatal(err)
	}
	shape, _ := mustShape(b, src, cut.Tensor)
	adapted := surgery.CloneProto(src.Proto)
	if err := surgery.CutAt(adapted, cut.Tensor); err != nil {
		b.Fatal(err)
	}
	head, err := surgery.AttachHead(adapted, cut.Tensor, shape, surgery.HeadSpec{Classes: 10})
	if err != nil {
		b.Fatal(err)
	}
	ext := &Extractor{Src: &onnx.Model{Proto: adapted}, Input: src.Inputs()[0].Name, Features: head.Features, Batch: 64, Dim: head.FeatureDim}
	f, err := ext.Run(context.Background(), x, len(imgs), prep.Shape(1)[1:])
	if err != nil {
		b.Fatal(err)
	}
	train := &Examples{X: f, Shape: []int{head.FeatureDim}, Labels: ys}
	sub, err := surgery.SubModel(adapted, head.Features, []int{1, head.FeatureDim}, head.Logits)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		net, err := NewNet(&onnx.Model{Proto: sub}, head.Features, head.Logits, head.Params, 0)
		if err != nil {
			b.Fatal(err)
		}
		opt, _ := NewOptimizer(OptimizerConfig{Kind: DefaultOptimizer})
		steps := (train.Len() + DefaultBatch - 1) / DefaultBatch
		sched, _ := NewSchedule(DefaultSchedule, DefaultLR, steps*100, 0, 0, 0)
		fit, err := Run(context.Background(), net, Config{Epochs: 100, Batch: DefaultBatch, Optimizer: opt, Schedule: sched, Classes: 10}, train, nil)
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
		res, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: filepath.Join(dir, fmt.Sprintf("o%d.onnx", i))})
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

// torchStep times one fine-tuning step of torchvision's mobilenet_v2 with
// BatchNorm replaced by identity (graft's import has it folded into the
// convolutions), training features.16, features.17 and the classifier
// with Adam at batch 16, 224x224, on as many threads as graft's
// GOMAXPROCS (Debian's torch starts with one here). It prints the median
// step in ms and the process's peak RSS in MiB.
const torchStep = `
import statistics, sys, time, torch, torchvision
torch.manual_seed(0)
n = int(sys.argv[1])
torch.set_num_threads(int(sys.argv[2]))
m = torchvision.models.mobilenet_v2(weights=None)
def strip(mod):
    for name, ch in mod.named_children():
        if isinstance(ch, torch.nn.BatchNorm2d):
            setattr(mod, name, torch.nn.Identity())
        else:
            strip(ch)
strip(m)
m.classifier = m.classifier[1]  # the Linear; dropout is identity in eval exports
for p in m.parameters():
    p.requires_grad = False
params = []
for mod in (m.features[16], m.features[17], m.classifier):
    for p in mod.parameters():
        p.requires_grad = True
        params.append(p)
opt = torch.optim.Adam(params, lr=1e-4)
x = torch.randn(16, 3, 224, 224)
y = torch.randint(0, 1000, (16,))
times = []
for i in range(n + 2):
    t0 = time.perf_counter()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    if i >= 2:
        times.append((time.perf_counter() - t0) * 1000)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
# process across exec, VmHWM starts afresh.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(statistics.median(times), int(hwm) / 1024)
`

// BenchmarkFinetuneStep is the fine-tuning target: one training step of
// mobilenet_v2 (the generated export) with its last two inverted-residual
// blocks and classifier trainable, batch 16 at 224x224, in graft and in
// PyTorch in the same run. It reports both medians, their ratio and peak
// memory (graft: the process's peak RSS, which includes the test binary).
func BenchmarkFinetuneStep(b *testing.B) {
	dir := onnxtest.GeneratedDir(b)
	src, err := onnx.ReadFile(filepath.Join(dir, "mobilenet_v2_op13", "model.onnx"), onnx.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	trainable, err := surgery.SelectTrainable(surgery.Layers(src.Proto, ""), `features\.1[67]/|classifier`, 0)
	if err != nil {
		b.Fatal(err)
	}
	net, err := NewNet(src, "input", src.Proto.Graph.Output[0].Name, trainable, 0)
	if err != nil {
		b.Fatal(err)
	}
	x := randExamples(16, []int{3, 224, 224})
	opt := NewAdam(0, false)
	sched, _ := NewSchedule("constant", 1e-4, 1<<30, 0, 0, 0)
	cfg := Config{Epochs: 1, Batch: 16, Optimizer: opt, Schedule: sched, Classes: 1000}
	if _, err := Run(context.Background(), net, cfg, x, nil); err != nil { // build and warm up
		b.Fatal(err)
	}
	var steps []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := Run(context.Background(), net, cfg, x, nil); err != nil {
			b.Fatal(err)
		}
		steps = append(steps, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	graftMS := float64(steps[len(steps)/2].Microseconds()) / 1000
	b.ReportMetric(graftMS, "graft-ms")
	b.ReportMetric(peakRSSMiB(), "graft-peak-MiB")
	out, err := exec.Command("/usr/bin/python3", "-c", torchStep, "5", strconv.Itoa(runtime.GOMAXPROCS(0))).Output()
	if err != nil {
		onnxtest.Need(b, "PyTorch reference unavailable (Debian python3-torch): %v", err)
		return
	}
	var torchMS, torchMiB float64
	if _, err := fmt.Sscan(string(out), &torchMS, &torchMiB); err != nil {
		b.Fatalf("PyTorch printed %q", out)
	}
	b.ReportMetric(torchMS, "torch-ms")
	b.ReportMetric(torchMiB, "torch-peak-MiB")
	b.ReportMetric(graftMS/torchMS, "graft/torch")
}

func randExamples(n int, shape []int) *Examples {
	r := rand.New(rand.NewSource(1))
	ex := &Examples{Shape: shape, Labels: make([]int, n)}
	ex.X = make([]float32, n*onnx.NumElems(shape))
	for i := range ex.X {
		ex.X[i] = float32(r.NormFloat64())
	}
	for i := range ex.Labels {
		ex.Labels[i] = r.Intn(1000)
	}
	return ex
}

// peakRSSMiB reads the process's peak resident set (VmHWM) on Linux.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}
