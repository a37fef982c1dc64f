package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graftml/graft/train/dataset"
)

// TestCacheEntryDamage: an entry with flipped bytes, a truncated one and
// one copied under another image's name are each reported as corrupt,
// never returned, and a Put repairs them.
func TestCacheEntryDamage(t *testing.T) {
	c, err := OpenFeatureCache(t.TempDir(), "model", "cut", &dataset.Preprocess{Channels: 3, Height: 4, Width: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, b := []float32{1, 2, 3, 4}, []float32{5, 6, 7, 8}
	if err := c.Put("aaaa", a); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("bbbb", b); err != nil {
		t.Fatal(err)
	}
	if f, ok, err := c.Get("aaaa", 4); !ok || err != nil || !slices.Equal(f, a) {
		t.Fatalf("clean entry: %v %v %v", f, ok, err)
	}
	if _, ok, err := c.Get("cccc", 4); ok || err != nil {
		t.Fatalf("missing entry: %v %v", ok, err)
	}
	if _, ok, err := c.Get("aaaa", 5); ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("entry of another dimension: %v %v", ok, err)
	}
	pa, pb := c.path("aaaa"), c.path("bbbb")
	raw, _ := os.ReadFile(pa)
	damage := map[string]func() []byte{
		"flipped payload byte": func() []byte { d := slices.Clone(raw); d[len(d)-40] ^= 0x10; return d },
		"flipped checksum":     func() []byte { d := slices.Clone(raw); d[len(d)-1] ^= 1; return d },
		"truncated":            func() []byte { return raw[:len(raw)-3] },
		"empty":                func() []byte { return nil },
		"another image's entry": func() []byte {
			d, _ := os.ReadFile(pb)
			return d
		},
	}
	for what, f := range damage {
		if err := os.WriteFile(pa, f(), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := c.Get("aaaa", 4); ok || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, ok %v, err %v; want ErrCorrupt", what, got, ok, err)
		}
		if err := c.Put("aaaa", a); err != nil {
			t.Fatal(err)
		}
		if f, ok, err := c.Get("aaaa", 4); !ok || err != nil || !slices.Equal(f, a) {
			t.Errorf("%s: not repaired by Put: %v %v %v", what, f, ok, err)
		}
	}
}

// TestFeatureCacheRepairs: damaging entries of a filled cache (flipped
// bytes, truncation, two entries swapped) makes the next run count and
// name them, recompute them, and train exactly as a clean run does.
func TestFeatureCacheRepairs(t *testing.T) {
	model, data, dir := sample(t)
	cache := filepath.Join(dir, "cache")
	cfg := AdaptConfig{Model: model, Data: data, CacheDir: cache, Epochs: 5}
	clean, err := Adapt(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := filepath.Glob(filepath.Join(cache, "*", "*.f32"))
	if err != nil || len(entries) < 4 {
		t.Fatalf("cache entries: %v %v", entries, err)
	}
	slices.Sort(entries)
	flip, _ := os.ReadFile(entries[0])
	flip[len(flip)/2] ^= 0xff
	os.WriteFile(entries[0], flip, 0o644)
	trunc, _ := os.ReadFile(entries[1])
	os.WriteFile(entries[1], trunc[:len(trunc)/2], 0o644)
	x, _ := os.ReadFile(entries[2])
	y, _ := os.ReadFile(entries[3])
	os.WriteFile(entries[2], y, 0o644)
	os.WriteFile(entries[3], x, 0o644)

	r, err := Adapt(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cache.Corrupt != 4 || r.Cache.Misses != 4 || r.Cache.Hits != clean.Cache.Misses-4 {
		t.Fatalf("damaged cache: %+v, want 4 corrupt, 4 misses", r.Cache)
	}
	if !slices.Contains(entries[:4], r.Cache.FirstCorrupt) {
		t.Fatalf("first corrupt entry %q is none of the damaged ones", r.Cache.FirstCorrupt)
	}
	if r.Test.Accuracy != clean.Test.Accuracy || r.History[4].TrainLoss != clean.History[4].TrainLoss {
		t.Fatalf("a repaired cache trains differently: %+v vs %+v", r.History[4], clean.History[4])
	}
	again, err := Adapt(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Cache.Corrupt != 0 || again.Cache.Misses != 0 {
		t.Fatalf("the damaged entries were not rewritten: %+v", again.Cache)
	}
}
