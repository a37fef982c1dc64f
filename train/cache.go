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
		return nil, fmt.Errorf("feature cache: %w", err)
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

// CacheStats counts feature-cache hits and misses.
type CacheStats struct {
	Hits   int `json:"hits"`
	Misses int `json:"misses"`
}

// FileHashBytes is the SHA-256 of b, in hex.
func FileHashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
