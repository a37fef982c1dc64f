package batch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/train"
)

// BenchmarkBatchJobs times one batch run as two one-thread jobs at once
// and as one two-thread job at a time, in the same run, for the default
// of --jobs: "convert" is four real exports through --cut auto
// --batch-dim dynamic (reading, surgery, writing, a parity run), "adapt"
// a leaderboard of two real backbones on one small folder (mostly the
// backbones' forward passes):
//
//	go test ./train/batch -run XXX -bench BatchJobs -benchtime 2x
//
// Each job's kernels keep to Threads goroutines (graph.SetThreads), so
// "jobs2_threads1" is two one-core jobs side by side and "jobs1_threads2"
// one job at a time using both cores.
func BenchmarkBatchJobs(b *testing.B) {
	names := []string{"squeezenet1_1", "mobilenet_v2", "resnet18", "efficientnet_b0"}
	var models []string
	for _, n := range names {
		models = append(models, onnxtest.Generated(b, n).ModelPath)
	}
	data := filepath.Join(b.TempDir(), "data")
	onnxtest.ColorImages(b, data, 16, 64)
	for _, c := range []struct{ jobs, threads int }{{2, 1}, {1, 2}} {
		b.Run(fmt.Sprintf("adapt_jobs%d_threads%d", c.jobs, c.threads), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				os.MkdirAll(dir, 0o755)
				var jobs []Job
				for k, name := range []string{"squeezenet1_1", "resnet18"} {
					jobs = append(jobs, Job{Name: name, Kind: KindAdapt,
						Adapt: train.AdaptConfig{Model: models[[]int{0, 2}[k]], Data: data, Out: filepath.Join(dir, name+".onnx"), Epochs: 20, ValSplit: 0.25}})
				}
				res, err := Run(context.Background(), Config{Jobs: jobs, Parallel: c.jobs, Threads: c.threads})
				if err != nil || !res.Succeeded() {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
		b.Run(fmt.Sprintf("convert_jobs%d_threads%d", c.jobs, c.threads), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				os.MkdirAll(dir, 0o755)
				var jobs []Job
				for k, m := range models {
					jobs = append(jobs, Job{Name: names[k], Kind: KindConvert,
						Convert: graph.ConvertConfig{Model: m, Out: filepath.Join(dir, names[k]+".onnx"), Cut: "auto", Batch: "dynamic"}})
				}
				res, err := Run(context.Background(), Config{Jobs: jobs, Parallel: c.jobs, Threads: c.threads})
				if err != nil || !res.Succeeded() {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
	}
}
