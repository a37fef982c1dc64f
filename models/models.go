package models

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/graftml/graft/onnx"
)

//go:embed backbone.onnx baseline.json sample
var files embed.FS

// Backbone is the file name of the shipped pretrained model.
const Backbone = "backbone.onnx"

// Baseline holds the PyTorch reference results the recipe measured on the
// sample task (baseline.json).
type Baseline struct {
	Source struct {
		Classes      []string `json:"classes"`
		TestAccuracy float64  `json:"test_accuracy"`
	} `json:"source"`
	Sample struct {
		Classes       []string `json:"classes"`
		TrainPerClass int      `json:"train_per_class"`
		TestPerClass  int      `json:"test_per_class"`
	} `json:"sample"`
	HeadOnly Result `json:"head_only"`
	TwoStage Result `json:"two_stage"`
}

// Result is a baseline measured over several seeds.
type Result struct {
	Settings     map[string]any `json:"settings"`
	Seeds        []int64        `json:"seeds"`
	TestAccuracy []float64      `json:"test_accuracy"`
	Mean         float64        `json:"mean"`
	Std          float64        `json:"std"`
}

// LoadBaseline parses the embedded baseline.json.
func LoadBaseline() (*Baseline, error) {
	b, err := files.ReadFile("baseline.json")
	if err != nil {
		return nil, err
	}
	var bl Baseline
	if err := json.Unmarshal(b, &bl); err != nil {
		return nil, fmt.Errorf("models/baseline.json: %w", err)
	}
	return &bl, nil
}

// Extract writes the backbone and the sample folder (sample/train,
// sample/test) into dir, which must exist, and returns the model's path
// and the data folder's path.
func Extract(dir string) (model, data string, err error) {
	err = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		return onnx.WriteAtomic(dst, b, true)
	})
	if err != nil {
		return "", "", fmt.Errorf("extracting the shipped sample: %w", err)
	}
	return filepath.Join(dir, Backbone), filepath.Join(dir, "sample"), nil
}
