package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/graftml/graft/train/dataset"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// FeatureCache stores backbone features on disk, one file per image,
// under a folder keyed by the model's hash, the cut tensor and the
// preprocessing. An image's entry is keyed by the SHA-256 of its bytes, so
// a renamed image still hits and a changed one misses.
type FeatureCache struct {
	dir string
}

// OpenFeatureCache returns the cache for one backbone and preprocessing
// under root (created when missing).
func OpenFeatureCache(root, modelSHA, cut string, p *dataset.Preprocess) (*FeatureCache, error) {
	pj, _ := json.Marshal(p)
	h := sha256.Sum256([]byte(modelSHA + "\x00" + cut + "\x00" + string(pj)))
	dir := filepath.Join(root, hex.EncodeToString(h[:12]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--cache: %w", err)
	}
	return &FeatureCache{dir: dir}, nil
}

func (c *FeatureCache) path(fileHash string) string {
	return filepath.Join(c.dir, fileHash+".f32")
}

// Get returns the cached features of an image, if present and of dim
// floats.
func (c *FeatureCache) Get(fileHash string, dim int) ([]float32, bool) {
	b, err := os.ReadFile(c.path(fileHash))
	if err != nil || len(b) != 4*dim {
		return nil, false
	}
	f := make([]float32, dim)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f, true
}

// Put stores an image's features (atomically).
func (c *FeatureCache) Put(fileHash string, f []float32) error {
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return onnx.WriteAtomic(c.path(fileHash), b, true)
}

// FileHash is the SHA-256 of a file's bytes, in hex.
func FileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// Extractor runs a backbone up to its features tensor, in batches.
type Extractor struct {
	Src      *onnx.Model
	Input    string
	Features string
	Batch    int
	models   map[int]*graph.Model
	// Dim is the number of features per image.
	Dim   int
	shape []int // the features' shape per image, when known
}

// Run computes features for images [n, ...] given as rows of x.
func (e *Extractor) Run(x []float32, n int, shape []int) ([]float32, error) {
	if e.models == nil {
		e.models = map[int]*graph.Model{}
	}
	size := onnx.NumElems(shape)
	var out []float32
	for start := 0; start < n; start += e.Batch {
		b := min(e.Batch, n-start)
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

// CacheStats counts feature-cache hits and misses.
type CacheStats struct {
	Hits, Misses int
}

// Features returns the backbone features of samples, reading and filling
// cache when it is not nil. Images that do not decode are skipped (and
// returned), or fail the call when strict.
func Features(e *Extractor, samples []dataset.Sample, p *dataset.Preprocess, cache *FeatureCache, strict bool, stats *CacheStats) (*Examples, []dataset.Skipped, error) {
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
		data, kept, sk, err := dataset.LoadTensors(ms, p, 0, strict)
		if err != nil {
			return nil, nil, err
		}
		skipped = sk
		f, err := e.Run(data, len(kept), p.Shape(1)[1:])
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

// FileHashBytes is the SHA-256 of b, in hex.
func FileHashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
