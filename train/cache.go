package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// FeatureCache stores backbone features on disk, one file per image, so
// that a later run (or another machine: entries are keyed by content, not
// by paths or times) skips the backbone.
//
// Entries live in a folder named after everything that could change the
// numbers: the model's content hash, the cut tensor, the preprocessing,
// graft's version and its kernel variant (CacheKey). Inside it, an image's
// entry is named after the SHA-256 of the image's bytes, so a renamed image
// still hits and a changed one misses. Each entry is one atomic file (two
// processes filling one cache at once cannot tear it) holding a header
// with the key it was written for, the payload and a SHA-256 of both: an
// entry that is truncated, has flipped bytes or was copied under another
// image's name is reported as corrupt, never used, and rewritten.
type FeatureCache struct {
	dir string
	key string
}

// CacheKey is what a cache folder is named after: the producers of the
// numbers it holds.
type CacheKey struct {
	ModelSHA256 string              `json:"model_sha256"`
	Cut         string              `json:"cut"`
	Preprocess  *dataset.Preprocess `json:"preprocess"`
	Version     string              `json:"graft_version"`
	Kernels     string              `json:"kernels"`
}

// OpenFeatureCache returns the cache of one backbone, cut and
// preprocessing under root (created when missing).
func OpenFeatureCache(root, modelSHA, cut string, p *dataset.Preprocess) (*FeatureCache, error) {
	key, err := json.Marshal(CacheKey{ModelSHA256: modelSHA, Cut: cut, Preprocess: p, Version: onnx.GraftVersion(), Kernels: graph.KernelVariant()})
	if err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	h := sha256.Sum256(key)
	dir := filepath.Join(root, hex.EncodeToString(h[:12]))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	return &FeatureCache{dir: dir, key: hex.EncodeToString(h[:])}, nil
}

// Dir is the cache folder of this key.
func (c *FeatureCache) Dir() string { return c.dir }

func (c *FeatureCache) path(fileHash string) string {
	return filepath.Join(c.dir, fileHash+".f32")
}

// ErrCorrupt marks a cache entry that exists but cannot be trusted.
var ErrCorrupt = errors.New("corrupt feature-cache entry")

// entry layout: magic, entry key (SHA-256 of the folder key and the image
// hash), feature count, float32 features (little endian), SHA-256 of all
// that precedes it.
const cacheMagic = "graftfc2"

func (c *FeatureCache) entryKey(fileHash string) [32]byte {
	return sha256.Sum256([]byte(c.key + "\x00" + fileHash))
}

// Get returns the cached features of an image: ok when a valid entry of
// dim floats exists; an error wrapping ErrCorrupt when an entry exists but
// is damaged, stale or another image's; (nil, false, nil) when there is
// none.
func (c *FeatureCache) Get(fileHash string, dim int) ([]float32, bool, error) {
	path := c.path(fileHash)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	head := len(cacheMagic) + 32 + 4
	want := head + 4*dim + 32
	switch {
	case len(b) != want:
		return nil, false, fmt.Errorf("%s: %w: %d bytes, want %d", path, ErrCorrupt, len(b), want)
	case string(b[:len(cacheMagic)]) != cacheMagic:
		return nil, false, fmt.Errorf("%s: %w: not a graft cache entry", path, ErrCorrupt)
	}
	if sum := sha256.Sum256(b[:want-32]); !bytes.Equal(sum[:], b[want-32:]) {
		return nil, false, fmt.Errorf("%s: %w: checksum mismatch", path, ErrCorrupt)
	}
	if k := c.entryKey(fileHash); !bytes.Equal(k[:], b[len(cacheMagic):len(cacheMagic)+32]) {
		return nil, false, fmt.Errorf("%s: %w: written for another image or cache", path, ErrCorrupt)
	}
	if n := binary.LittleEndian.Uint32(b[head-4:]); int(n) != dim {
		return nil, false, fmt.Errorf("%s: %w: %d features, want %d", path, ErrCorrupt, n, dim)
	}
	f := make([]float32, dim)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[head+4*i:]))
	}
	return f, true, nil
}

// Put stores an image's features as one atomic file.
func (c *FeatureCache) Put(fileHash string, f []float32) error {
	b := make([]byte, 0, len(cacheMagic)+32+4+4*len(f)+32)
	b = append(b, cacheMagic...)
	k := c.entryKey(fileHash)
	b = append(b, k[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
	for _, v := range f {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	return onnx.WriteAtomic(c.path(fileHash), b, true)
}

// FileHash is the SHA-256 of a file's bytes, in hex.
func FileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return FileHashBytes(b), nil
}

// CacheStats counts feature-cache hits, misses and corrupt entries (which
// were recomputed and rewritten; FirstCorrupt names one).
type CacheStats struct {
	Hits         int    `json:"hits"`
	Misses       int    `json:"misses"`
	Corrupt      int    `json:"corrupt"`
	FirstCorrupt string `json:"first_corrupt,omitempty"`
}

// FileHashBytes is the SHA-256 of b, in hex.
func FileHashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
