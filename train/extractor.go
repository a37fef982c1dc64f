package train

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// DefaultInferBatch is how many images a frozen forward pass takes at
// once by default (feature extraction, eval, predict). Peak memory grows
// with it: one of mobilenet_v2's activations at 224x224 is 38 MB for 8
// images and 154 MB for 32, and a few are alive at once. Throughput hardly
// does: each image is its own matrix multiply of 12,544 columns at the
// first layers. Results do not depend on it (an image's outputs are the
// same in any batch).
const DefaultInferBatch = 8

// Extractor runs a model from its input up to a features tensor, in
// batches, with the model's weights frozen. Graphs are built per batch
// size and kept.
type Extractor struct {
	Src      *onnx.Model
	Input    string // the model input the images go to
	Features string // the tensor to compute
	Batch    int    // images per forward pass; 0 means DefaultInferBatch
	// Dim is the number of features per image.
	Dim int
	// Progress, when set, is called after every batch of Run with the
	// number of images done in that call.
	Progress func(done int)
	models   map[int]*graph.Model
	shape    []int     // the features' shape per image, when known
	pad      []float32 // a partial batch padded to a full one
}

// batchSize is e.Batch, or DefaultInferBatch when it is not set.
func (e *Extractor) batchSize() int {
	if e.Batch <= 0 {
		return DefaultInferBatch
	}
	return e.Batch
}

// graphBatch is the batch of the graph b images (at most a batch) go
// through: a full batch's, padded with zeros, once that graph exists,
// rather than a graph built for their number (a build and first run cost
// about 0.25 s for mobilenet_v2 at batch 8; an image's features do not
// depend on the batch).
func (e *Extractor) graphBatch(b int) int {
	if full := e.batchSize(); b < full && e.models[full] != nil {
		return full
	}
	return b
}

// release drops the graphs built so far; the next run builds what it
// needs again.
func (e *Extractor) release() { e.models, e.pad = nil, nil }

// Run computes features for n images of the given shape, stored one
// after another in x. It checks ctx between batches.
func (e *Extractor) Run(ctx context.Context, x []float32, n int, shape []int) ([]float32, error) {
	size := onnx.NumElems(shape)
	var out []float32
	batch := e.batchSize()
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("features of image %d of %d: %w", start+1, n, err)
		}
		b := min(batch, n-start)
		in := x[start*size : (start+b)*size]
		if gb := e.graphBatch(b); gb > b {
			if cap(e.pad) < gb*size {
				e.pad = make([]float32, gb*size)
			}
			pad := e.pad[:gb*size]
			copy(pad, in)
			clear(pad[len(in):])
			in, b = pad, gb
		}
		m, err := e.model(b, shape)
		if err != nil {
			return nil, err
		}
		res, err := m.Run(map[string]*onnx.Tensor{e.Input: onnx.NewFloat(append([]int{b}, shape...), in)})
		if err != nil {
			return nil, err
		}
		f := res[e.Features]
		if f.Len() != b*e.Dim {
			return nil, fmt.Errorf("features %q have shape %v, expected %d per image", e.Features, f.Shape, e.Dim)
		}
		kept := min(b, n-start)
		out = append(out, f.F[:kept*e.Dim]...)
		if e.Progress != nil {
			e.Progress(start + kept)
		}
	}
	return out, nil
}

// model returns the graph for batches of b images of the given shape,
// building it the first time.
func (e *Extractor) model(b int, shape []int) (*graph.Model, error) {
	if e.models == nil {
		e.models = map[int]*graph.Model{}
	}
	if m, ok := e.models[b]; ok {
		return m, nil
	}
	m, err := graph.Build(e.Src, graph.Options{Shapes: map[string][]int{e.Input: append([]int{b}, shape...)}, Outputs: []string{e.Features}, Freeze: true})
	if err != nil {
		return nil, err
	}
	e.models[b] = m
	return m, nil
}

// buildAhead builds, on a goroutine of its own, the graph a run over n
// images of the given shape starts with, so that the build overlaps
// whatever the caller does first (decoding the first images); the
// function it returns waits for it. Run must not be called before.
func (e *Extractor) buildAhead(n int, shape []int) (wait func() error) {
	b := e.graphBatch(min(n, e.batchSize()))
	if e.models[b] != nil || n == 0 {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.model(b, shape)
		done <- err
	}()
	var err error
	var once sync.Once
	return func() error {
		once.Do(func() { err = <-done })
		return err
	}
}

// FeatureOptions are the optional settings of Features; the zero value
// means no cache, skipping unreadable images, and no statistics.
type FeatureOptions struct {
	// Cache, when not nil, is read first and filled with what is
	// computed.
	Cache *FeatureCache
	// Strict makes an image that does not decode an error instead of
	// skipping it.
	Strict bool
	// Stats, when not nil, has the cache's hits and misses added to it.
	Stats *CacheStats
	// Progress, when set, is called with the number of samples done
	// (found in the cache, computed or skipped) after the cache lookup
	// and after every chunk.
	Progress func(done int)
}

// featureChunk is how many images Features decodes and runs at once: the
// data set's tensors are never all in memory, and an interrupted
// extraction keeps every chunk it finished in the cache.
const featureChunk = 64

// Features returns the features e computes for samples, preprocessed by
// p. Images that do not decode are skipped (and returned), or fail the
// call with opt.Strict. It is a pipeline: the next chunk of images is
// decoded (in parallel) while the backbone runs on the current one, and
// each chunk's features go to the cache as soon as they are computed. A
// damaged cache entry is counted in opt.Stats, recomputed and rewritten.
// It checks ctx between batches.
func Features(ctx context.Context, e *Extractor, samples []dataset.Sample, p *dataset.Preprocess, opt FeatureOptions) (*Examples, []dataset.Skipped, error) {
	stats := opt.Stats
	if stats == nil {
		stats = &CacheStats{}
	}
	hashes, feats, miss, err := cacheLookup(opt.Cache, e.Dim, samples, stats)
	if err != nil {
		return nil, nil, err
	}
	if opt.Progress != nil {
		opt.Progress(len(samples) - len(miss))
	}
	skipped, err := e.extractMisses(ctx, samples, miss, hashes, feats, p, opt, stats)
	if err != nil {
		return nil, nil, err
	}
	ex := &Examples{Shape: []int{e.Dim}}
	for i, s := range samples {
		if feats[i] == nil {
			continue // skipped
		}
		ex.X = append(ex.X, feats[i]...)
		ex.Labels = append(ex.Labels, s.Label)
		ex.Paths = append(ex.Paths, s.Path)
	}
	return ex, skipped, nil
}

// cacheLookup hashes every sample's bytes and takes what the cache holds;
// it returns the hashes, the features found (nil where missing) and the
// indices still to compute.
func cacheLookup(cache *FeatureCache, dim int, samples []dataset.Sample, stats *CacheStats) (hashes []string, feats [][]float32, miss []int, err error) {
	feats = make([][]float32, len(samples))
	if cache == nil {
		for i := range samples {
			miss = append(miss, i)
		}
		return nil, feats, miss, nil
	}
	hashes = make([]string, len(samples))
	for i, s := range samples {
		h, err := FileHash(s.Path)
		if err != nil {
			return nil, nil, nil, err
		}
		hashes[i] = h
		f, ok, err := cache.Get(h, dim)
		switch {
		case errors.Is(err, ErrCorrupt):
			stats.Corrupt++
			if stats.FirstCorrupt == "" {
				stats.FirstCorrupt = cache.path(h)
			}
		case err != nil:
			return nil, nil, nil, err
		case ok:
			feats[i] = f
			stats.Hits++
			continue
		}
		miss = append(miss, i)
	}
	return hashes, feats, miss, nil
}

// extractMisses runs the backbone on the samples at indices miss, a chunk
// at a time, decoding the next chunk while the current one computes, and
// stores each result in feats (and the cache).
func (e *Extractor) extractMisses(ctx context.Context, samples []dataset.Sample, miss []int, hashes []string, feats [][]float32, p *dataset.Preprocess, opt FeatureOptions, stats *CacheStats) ([]dataset.Skipped, error) {
	ms := make([]dataset.Sample, len(miss))
	for j, i := range miss {
		ms[j] = samples[i]
	}
	var skipped []dataset.Skipped
	built := e.buildAhead(len(ms), p.Shape(1)[1:])
	// the build's error is the first chunk's; this waits for it in any case
	defer built()
	err := decodeAhead(ctx, ms, p, opt.Strict, "features of", func(c decoded) error {
		if err := built(); err != nil {
			return err
		}
		skipped = append(skipped, c.skipped...)
		f, err := e.Run(ctx, c.data, len(c.kept), p.Shape(1)[1:])
		if err != nil {
			return err
		}
		// kept is the chunk's samples minus the skipped images, in order
		k := 0
		for _, i := range miss[c.start:c.end] {
			if k == len(c.kept) || c.kept[k].Path != samples[i].Path {
				continue
			}
			feats[i] = f[k*e.Dim : (k+1)*e.Dim]
			k++
			if opt.Cache != nil {
				if err := opt.Cache.Put(hashes[i], feats[i]); err != nil {
					return err
				}
			}
		}
		stats.Misses += len(c.kept)
		if opt.Progress != nil {
			opt.Progress(len(samples) - len(miss) + c.end)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return skipped, nil
}
