package train

import (
	"context"
	"fmt"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// Extractor runs a model from its input up to a features tensor, in
// batches, with the model's weights frozen. Graphs are built per batch
// size and kept.
type Extractor struct {
	Src      *onnx.Model
	Input    string // the model input the images go to
	Features string // the tensor to compute
	Batch    int    // images per forward pass; 0 means 32
	// Dim is the number of features per image.
	Dim    int
	models map[int]*graph.Model
	shape  []int // the features' shape per image, when known
}

// Run computes features for n images of the given shape, stored one
// after another in x. It checks ctx between batches.
func (e *Extractor) Run(ctx context.Context, x []float32, n int, shape []int) ([]float32, error) {
	if e.models == nil {
		e.models = map[int]*graph.Model{}
	}
	size := onnx.NumElems(shape)
	var out []float32
	batch := e.Batch
	if batch <= 0 {
		batch = 32
	}
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("features of image %d of %d: %w", start+1, n, err)
		}
		b := min(batch, n-start)
		m, ok := e.models[b]
		if !ok {
			var err error
			m, err = graph.Build(e.Src, graph.Options{Shapes: map[string][]int{e.Input: append([]int{b}, shape...)}, Outputs: []string{e.Features}, Freeze: true})
			if err != nil {
				return nil, err
			}
			e.models[b] = m
		}
		in := onnx.NewFloat(append([]int{b}, shape...), x[start*size:(start+b)*size])
		res, err := m.Run(map[string]*onnx.Tensor{e.Input: in})
		if err != nil {
			return nil, err
		}
		f := res[e.Features]
		if f.Len() != b*e.Dim {
			return nil, fmt.Errorf("features %q have shape %v, expected %d per image", e.Features, f.Shape, e.Dim)
		}
		out = append(out, f.F...)
	}
	return out, nil
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
}

// Features returns the features e computes for samples, preprocessed by
// p. Images that do not decode are skipped (and returned), or fail the
// call with opt.Strict. It checks ctx between batches.
func Features(ctx context.Context, e *Extractor, samples []dataset.Sample, p *dataset.Preprocess, opt FeatureOptions) (*Examples, []dataset.Skipped, error) {
	cache, stats := opt.Cache, opt.Stats
	if stats == nil {
		stats = &CacheStats{}
	}
	ex := &Examples{}
	var hashes []string
	feats := make([][]float32, len(samples))
	var miss []int
	for i, s := range samples {
		if cache != nil {
			h, err := FileHash(s.Path)
			if err != nil {
				return nil, nil, err
			}
			hashes = append(hashes, h)
			if f, ok := cache.Get(h, e.Dim); ok {
				feats[i] = f
				stats.Hits++
				continue
			}
		}
		miss = append(miss, i)
	}
	var skipped []dataset.Skipped
	if len(miss) > 0 {
		ms := make([]dataset.Sample, len(miss))
		for j, i := range miss {
			ms[j] = samples[i]
		}
		data, kept, sk, err := dataset.LoadTensors(ms, p, 0, opt.Strict)
		if err != nil {
			return nil, nil, err
		}
		skipped = sk
		f, err := e.Run(ctx, data, len(kept), p.Shape(1)[1:])
		if err != nil {
			return nil, nil, err
		}
		// map kept samples back to their positions
		pos := map[string][]int{}
		for _, i := range miss {
			pos[samples[i].Path] = append(pos[samples[i].Path], i)
		}
		for k, s := range kept {
			i := pos[s.Path][0]
			pos[s.Path] = pos[s.Path][1:]
			feats[i] = f[k*e.Dim : (k+1)*e.Dim]
			if cache != nil {
				if err := cache.Put(hashes[i], feats[i]); err != nil {
					return nil, nil, err
				}
			}
		}
		stats.Misses += len(kept)
	}
	for i, s := range samples {
		if feats[i] == nil {
			continue // skipped
		}
		ex.X = append(ex.X, feats[i]...)
		ex.Labels = append(ex.Labels, s.Label)
	}
	ex.Shape = []int{e.Dim}
	return ex, skipped, nil
}
