package batch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx/onnxtest"
)

// BenchmarkBatchJobs times one batch (four real exports through --cut auto
// --batch-dim dynamic) run as two one-thread jobs at once and as one
// two-thread job at a time, in the same run, for the default of --jobs:
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
	for _, c := range []struct{ jobs, threads int }{{2, 1}, {1, 2}} {
		b.Run(fmt.Sprintf("jobs%d_threads%d", c.jobs, c.threads), func(b *testing.B) {
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
