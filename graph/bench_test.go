package graph

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// The forward-pass benchmarks of the README: graft and ONNX Runtime on
// the same models and inputs, in the same run. Run them with
//
//	go test ./graph -run XXX -bench Forward -benchtime 5x
//
// Each reports images/s; BenchmarkForwardORT times ONNX Runtime inside
// its own process (onnxtest.Runtime.Time), so tensor shipping is not
// counted against it.

var benchModels = []string{"resnet18_op13", "mobilenet_v2_op13", "efficientnet_b0_op13"}

// dynamicCopy writes a copy of a generated model with a symbolic batch.
func dynamicCopy(b *testing.B, name string) string {
	b.Helper()
	c := onnxtest.Generated(b, name)
	out := filepath.Join(b.TempDir(), name+"_dyn.onnx")
	if _, err := Convert(context.Background(), ConvertConfig{Model: c.ModelPath, Out: out, Batch: "dynamic"}); err != nil {
		b.Fatal(err)
	}
	return out
}

func BenchmarkForward(b *testing.B) {
	for _, name := range benchModels {
		path := dynamicCopy(b, name)
		src, err := onnx.ReadFile(path, onnx.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range []int{1, 8} {
			b.Run(name+"/batch"+itoa(batch), func(b *testing.B) {
				m, err := Build(src, Options{Batch: batch, Freeze: true})
				if err != nil {
					b.Fatal(err)
				}
				in := randInput(1, []int{batch, 3, 224, 224})
				feeds := map[string]*onnx.Tensor{m.Inputs[0].Name: in}
				if _, err := m.Run(feeds); err != nil { // warm up
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := m.Run(feeds); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}

func BenchmarkForwardORT(b *testing.B) {
	ort := onnxtest.ORT(b)
	for _, name := range benchModels {
		path := dynamicCopy(b, name)
		for _, batch := range []int{1, 8} {
			b.Run(name+"/batch"+itoa(batch), func(b *testing.B) {
				in := randInput(1, []int{batch, 3, 224, 224})
				src, err := onnx.ReadFile(path, onnx.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				times, err := ort.Time(path, map[string]*onnx.Tensor{src.Inputs()[0].Name: in}, b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				var total time.Duration
				for _, d := range times {
					total += d
				}
				sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
				b.ReportMetric(float64(batch*len(times))/total.Seconds(), "images/s")
				b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			})
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
