package train

import (
	"bytes"
	"cmp"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRowBuilderSpills: rows beyond the budget go to a file (with those
// already in memory), read back bit for bit by batch and rows, the
// memory is given back, and nothing is left in the folder.
func TestRowBuilderSpills(t *testing.T) {
	dir := t.TempDir()
	const size = 5
	b := &budget{left: 4 * size * 3, dir: dir} // three rows fit
	small, big := newRowBuilder(b, size), newRowBuilder(b, size)
	var want []float32
	for i := range 7 * size {
		want = append(want, float32(i)*0.25-3)
	}
	want[11] = float32(math.Inf(-1))
	want[12] = float32(math.Copysign(0, -1))
	if err := small.add(want[:2*size]); err != nil { // fits: stays in memory
		t.Fatal(err)
	}
	if err := big.add(want[:size]); err != nil {
		t.Fatal(err)
	}
	if err := big.add(want[size:]); err != nil { // does not fit: all of big spills
		t.Fatal(err)
	}
	if b.left != 4*size || b.spilled != 4*int64(len(want)) {
		t.Fatalf("left %d spilled %d: want one row of budget left and %d bytes spilled", b.left, b.spilled, 4*len(want))
	}
	var inMem, onDisk Examples
	small.fill(&inMem)
	big.fill(&onDisk)
	inMem.Shape, onDisk.Shape = []int{size}, []int{size}
	inMem.Labels, onDisk.Labels = make([]int, 2), make([]int, 7)
	if inMem.spill != nil || onDisk.spill == nil || onDisk.X != nil {
		t.Fatalf("in memory %v/%v, spilled %v/%v", inMem.X != nil, inMem.spill, onDisk.X != nil, onDisk.spill)
	}
	idx := []int{6, 0, 2, 2}
	got, err := onDisk.batch(idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for r, i := range idx {
		if !bitsEqual(got.F[r*size:(r+1)*size], want[i*size:(i+1)*size]) {
			t.Errorf("batch row %d (example %d): %v, want %v", r, i, got.F[r*size:(r+1)*size], want[i*size:(i+1)*size])
		}
	}
	rows, err := onDisk.rows(2, 3, nil)
	if err != nil || !bitsEqual(rows, want[2*size:5*size]) {
		t.Errorf("rows 2..4: %v %v", rows, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the spill file is visible in the folder: %v", left)
	}
	b.release(&inMem)
	b.close()
	if b.left != 4*size*3 {
		t.Errorf("after release: %d bytes left, want all %d", b.left, 4*size*3)
	}
	if _, err := onDisk.batch(idx, nil); err == nil {
		t.Error("a closed spill file still reads")
	}
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestFinetuneMemoryBudget: fine-tuning with a budget too small for
// anything (every frozen-layer output, or every decoded image when the
// trainable layers read them, on disk) writes the same model, byte for
// byte, as with the default budget, says what it spilled, and leaves
// nothing in the cache folder but the cache.
func TestFinetuneMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "bn.onnx")
	bnModel(t, model)
	data := filepath.Join(dir, "data")
	colorImages(t, data, 8)
	for _, c := range []struct {
		name    string
		unfree  int
		what    string
		noCache bool // the default budget then decodes the images once for both stages
	}{{"prefix", 2, "outputs of", false}, {"prefix without cache", 2, "outputs of", true}, {"images", 4, "decoded images", false}} {
		t.Run(c.name, func(t *testing.T) {
			var outs [][]byte
			for _, mb := range []int64{0, 1} {
				out := filepath.Join(dir, c.name+string(rune('a'+mb))+".onnx")
				cache, spillDir := filepath.Join(dir, "cache"+c.name+string(rune('a'+mb))), ""
				if c.noCache {
					cache, spillDir = "", os.TempDir()
				}
				rep := &noteRecorder{}
				_, err := Adapt(context.Background(), AdaptConfig{Model: model, Data: data, Out: out, Epochs: 2, FinetuneEpochs: 2,
					UnfreezeLast: c.unfree, Batch: 4, MemoryBudget: mb, CacheDir: cache, Reporter: rep})
				if err != nil {
					t.Fatal(err)
				}
				spilled := rep.has("spilled to a temporary file in " + cmp.Or(cache, spillDir))
				if spilled != (mb == 1) || mb == 1 && !rep.has(c.what) {
					t.Errorf("budget %d: spill note %v, want %v, naming %q: %q", mb, spilled, mb == 1, c.what, rep.notes)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, b)
				left, _ := filepath.Glob(filepath.Join(cmp.Or(cache, spillDir), "graft-spill-*"))
				if len(left) != 0 {
					t.Errorf("spill files left: %v", left)
				}
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Error("the model fine-tuned from spilled tensors differs from the one trained in memory")
			}
		})
	}
}
