package graph

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/onnx/surgery"
)

// TestPerImageDeterminism: an image's output is bit-for-bit the same
// whatever batch it is computed in, at whatever position, and whatever
// the number of goroutines, so feature caches, shards and resumed runs
// agree with a single run. It checks every fixture and, when present,
// two generated ImageNet-size models.
func TestPerImageDeterminism(t *testing.T) {
	names := []string{"conv_bn_pool_fc", "mobile_block_op13", "se_act_op14", "fire", "dense_bnkeep", "softmax_head_op13"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			checkDeterminism(t, onnxtest.Fixture(t, name).ModelPath, 7)
		})
	}
	if testing.Short() {
		return
	}
	for _, name := range []string{"mobilenet_v2_op13", "resnet18_op13"} {
		t.Run(name, func(t *testing.T) {
			checkDeterminism(t, onnxtest.Generated(t, name).ModelPath, 3)
		})
	}
}

// checkDeterminism runs n images one at a time on 1 goroutine, then all
// n at once in reverse order on GOMAXPROCS goroutines, then in batches of
// 2, then all at once again with SetThreads(1) (--threads 1), and compares
// each image's outputs bit for bit.
func checkDeterminism(t *testing.T, path string, n int) {
	src, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// a symbolic batch, with Reshape constants that hard-code batch 1 mended
	mp := surgery.CloneProto(src.Proto)
	if err := surgery.SetBatch(mp, "dynamic"); err != nil {
		t.Fatal(err)
	}
	src = &onnx.Model{Proto: mp, Path: path}
	m1, err := Build(src, Options{Batch: 1, Freeze: true})
	if err != nil {
		t.Fatal(err)
	}
	in := m1.Inputs[0]
	imgs := make([]*onnx.Tensor, n)
	for i := range imgs {
		imgs[i] = randInput(int64(100+i), in.Shape)
	}
	// one image at a time, on one goroutine
	prev := runtime.GOMAXPROCS(1)
	single := make([]map[string]*onnx.Tensor, n)
	for i, x := range imgs {
		if single[i], err = m1.Run(map[string]*onnx.Tensor{in.Name: x}); err != nil {
			runtime.GOMAXPROCS(prev)
			t.Fatal(err)
		}
	}
	runtime.GOMAXPROCS(max(prev, 2))
	defer runtime.GOMAXPROCS(prev)
	order := make([]int, n)
	for i := range order {
		order[i] = n - 1 - i
	}
	defer SetThreads(0)
	for _, run := range []struct{ batch, threads int }{{n, 0}, {2, 0}, {n, 1}} {
		batch := run.batch
		SetThreads(run.threads)
		mb, err := Build(src, Options{Batch: batch, Freeze: true})
		if err != nil {
			t.Fatal(err)
		}
		for start := 0; start < n; start += batch {
			idx := order[start:min(start+batch, n)]
			x := onnx.NewFloat(withBatch(in.Shape, batch), nil)
			size := onnx.NumElems(in.Shape)
			for j, i := range idx {
				copy(x.F[j*size:], imgs[i].F)
			}
			out, err := mb.Run(map[string]*onnx.Tensor{in.Name: x})
			if err != nil {
				t.Fatal(err)
			}
			for name, o := range out {
				per := o.Len() / batch
				for j, i := range idx {
					want := single[i][name].F
					got := o.F[j*per : (j+1)*per]
					if k := firstBitDiff(got, want); k >= 0 {
						t.Fatalf("batch %d, threads %d, image %d at position %d, output %s[%d]: %v, alone %v", batch, Threads(), i, j, name, k, got[k], want[k])
					}
				}
			}
		}
	}
}

func firstBitDiff(a, b []float32) int {
	if len(a) != len(b) {
		panic(fmt.Sprintf("lengths %d and %d", len(a), len(b)))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}
