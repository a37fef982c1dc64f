package train

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/graftml/graft/onnx"
)

func TestParseShard(t *testing.T) {
	for s, want := range map[string]Shard{"0/1": {0, 1}, "2/3": {2, 3}, " 1 / 4 ": {1, 4}} {
		got, err := ParseShard(s)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"3/3", "0/0", "-1/2", "1", "a/b", "1/-2", "", "1/2/3"} {
		if got, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) = %v, want an error", s, got)
		}
	}
	if got := (Shard{1, 3}).OutPath("/x/emb.npy"); got != "/x/emb.shard-1-of-3.npy" {
		t.Errorf("OutPath: %s", got)
	}
	if got := (Shard{}).OutPath("/x/emb.npy"); got != "/x/emb.npy" {
		t.Errorf("OutPath of the whole folder: %s", got)
	}
	if got := LabelsPath("/x/emb.shard-1-of-3.npy"); got != "/x/emb.shard-1-of-3.labels.txt" {
		t.Errorf("LabelsPath: %s", got)
	}
}

// TestShardOfStable: the shard of a path is FNV-1a 64 of its slash form
// mod n (pinned, so that a change of hash, which would reshuffle every
// cluster's shards, fails here), and depends on nothing else.
func TestShardOfStable(t *testing.T) {
	// FNV-1a 64 of "train/Bag/001.png" is 0x152530de46b70335
	const path = "train/Bag/001.png"
	h := uint64(14695981039346656037)
	for _, c := range []byte(path) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	for _, n := range []int{1, 2, 3, 7, 100} {
		if got := ShardOf(path, n); got != int(h%uint64(n)) {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", path, n, got, h%uint64(n))
		}
		if got := ShardOf(filepath.FromSlash(path), n); got != ShardOf(path, n) {
			t.Errorf("ShardOf depends on the separator")
		}
	}
	if got, want := ShardOf(path, 1000003), 425491; got != want {
		t.Errorf("ShardOf(%q, 1000003) = %d; it was %d: the shard hash changed", path, got, want)
	}
}

// TestShardsPartition: shards 0..n-1 hold every image exactly once, and
// the images are spread over them.
func TestShardsPartition(t *testing.T) {
	_, data, _ := sample(t)
	var rels []string
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(data, p)
			rels = append(rels, filepath.ToSlash(r))
		}
		return nil
	})
	const n = 3
	count := make([]int, n)
	for _, r := range rels {
		held := 0
		for i := range n {
			if (Shard{i, n}).Holds(r) {
				held++
				count[i]++
			}
		}
		if held != 1 {
			t.Fatalf("%s is in %d shards", r, held)
		}
	}
	for i, c := range count {
		if c < len(rels)/n/2 {
			t.Errorf("shard %d/%d holds %d of %d images", i, n, c, len(rels))
		}
	}
}

// copyTree copies the files under src into dst, as `cp -r src/. dst`.
func copyTree(t *testing.T, src, dst string) (files int) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, r)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(to); err == nil && !bytes.Equal(old, b) {
			return fmt.Errorf("%s: two shards wrote different entries under one name", r)
		}
		files++
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestShardedCacheMerge: three shards fill three cache folders; copied
// together they are the cache of the whole folder, from which Adapt
// trains bit-identical weights to a run without a cache, with every image
// a hit. The shards' .npy files together are the whole folder's.
func TestShardedCacheMerge(t *testing.T) {
	model, data, dir := sample(t)
	ctx := context.Background()
	merged := filepath.Join(dir, "merged")
	entries := 0
	rows := map[string][]float32{}
	total := 0
	for i := range 3 {
		cache := filepath.Join(dir, fmt.Sprintf("cache%d", i))
		res, err := ExtractFeatures(ctx, FeaturesConfig{Model: model, Data: data, CacheDir: cache, Shard: Shard{i, 3}, Out: filepath.Join(dir, "emb.npy")})
		if err != nil {
			t.Fatal(err)
		}
		if res.Cache.Misses != res.Extracted || res.Images == 0 || res.Images == res.Total {
			t.Fatalf("shard %d: %+v", i, res)
		}
		total = res.Total
		entries += copyTree(t, cache, merged)
		x, err := onnx.ReadNpyFile(res.Out)
		if err != nil {
			t.Fatal(err)
		}
		lines, _ := os.ReadFile(res.Labels)
		ls := strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n")
		if len(ls) != res.Extracted || x.Shape[0] != res.Extracted || x.Shape[1] != res.Dim {
			t.Fatalf("shard %d: %d labels, features %v, %d extracted", i, len(ls), x.Shape, res.Extracted)
		}
		for k, l := range ls {
			class, path, ok := strings.Cut(l, "\t")
			if !ok || !strings.HasSuffix(path, ".png") || !strings.Contains(path, "/"+class+"/") {
				t.Fatalf("labels line %q", l)
			}
			rows[path] = x.F[k*res.Dim : (k+1)*res.Dim]
		}
	}
	if entries != total || len(rows) != total {
		t.Fatalf("%d cache entries and %d rows for %d images", entries, len(rows), total)
	}

	whole, err := ExtractFeatures(ctx, FeaturesConfig{Model: model, Data: data, Out: filepath.Join(dir, "whole.npy")})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := onnx.ReadNpyFile(whole.Out)
	lines, _ := os.ReadFile(whole.Labels)
	for k, l := range strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n") {
		_, path, _ := strings.Cut(l, "\t")
		if fmt.Sprint(rows[path]) != fmt.Sprint(x.F[k*whole.Dim:(k+1)*whole.Dim]) {
			t.Fatalf("%s: the shard's features differ from the whole run's", path)
		}
	}

	cfg := AdaptConfig{Model: model, Data: data, Epochs: 5, ValSplit: 0.2, Out: filepath.Join(dir, "cached.onnx")}
	cfg.CacheDir = merged
	res, err := Adapt(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cache.Misses != 0 || res.Cache.Hits != total || res.Cache.Corrupt != 0 {
		t.Fatalf("adapt from the merged cache: %+v, want %d hits", res.Cache, total)
	}
	cfg.CacheDir, cfg.Out = "", filepath.Join(dir, "plain.onnx")
	if _, err := Adapt(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	w1, w2 := readWeights(t, filepath.Join(dir, "cached.onnx")), readWeights(t, cfg.Out)
	for name, b := range w2 {
		if !bytes.Equal(b, w1[name]) {
			t.Errorf("weight %q differs between the merged-cache and the single-process run", name)
		}
	}
}

// TestEmptyShard: a shard that holds no image says so and succeeds.
func TestEmptyShard(t *testing.T) {
	model, data, dir := sample(t)
	var rep noteRecorder
	res, err := ExtractFeatures(context.Background(), FeaturesConfig{Model: model, Data: data, CacheDir: filepath.Join(dir, "c"), Shard: Shard{999, 100000},
		Out: filepath.Join(dir, "e.npy"), Reporter: &rep})
	if err != nil {
		t.Fatal(err)
	}
	if res.Images != 0 || !rep.has("holds none of the") {
		t.Fatalf("%+v, notes %q", res, rep.notes)
	}
	x, err := onnx.ReadNpyFile(res.Out)
	if err != nil || x.Shape[0] != 0 || x.Shape[1] != res.Dim {
		t.Fatalf("empty shard's file: %v %v", x, err)
	}
}

func TestFeaturesConfigChecks(t *testing.T) {
	model, data, dir := sample(t)
	os.WriteFile(filepath.Join(dir, "taken.npy"), nil, 0o644)
	for _, cfg := range []FeaturesConfig{
		{Data: data, CacheDir: dir},
		{Model: model, CacheDir: dir},
		{Model: model, Data: data},
		{Model: model, Data: data, CacheDir: dir, Shard: Shard{3, 3}},
		{Model: model, Data: data, Out: filepath.Join(dir, "x.csv")},
		{Model: model, Data: data, Out: filepath.Join(dir, "taken.npy")},
	} {
		if _, err := ExtractFeatures(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

type noteRecorder struct {
	NopReporter
	mu    sync.Mutex
	notes []string
}

func (r *noteRecorder) Note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, s)
}

func (r *noteRecorder) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// TestAdaptCacheNotes: adapt says when --augment bypasses the cache and
// when fine-tuning needs more than it holds.
func TestAdaptCacheNotes(t *testing.T) {
	model, data, dir := sample(t)
	for _, tc := range []struct {
		cfg  AdaptConfig
		want string
	}{
		{AdaptConfig{Augment: true}, "is not used: with AdaptConfig.Augment"},
		{AdaptConfig{FinetuneEpochs: 1, UnfreezeLast: 1}, "serves the head stage only"},
	} {
		var rep noteRecorder
		cfg := tc.cfg
		cfg.Model, cfg.Data, cfg.CacheDir, cfg.Epochs, cfg.Reporter = model, data, filepath.Join(dir, "cache"), 1, &rep
		if _, err := Adapt(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if !rep.has(tc.want) {
			t.Errorf("notes %q lack %q", rep.notes, tc.want)
		}
	}
}
