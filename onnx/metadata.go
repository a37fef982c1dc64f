package onnx

import (
	"encoding/json"
	"fmt"
)

// Metadata keys graft writes into metadata_props, each a JSON value.
const (
	KeyLabels        = "labels"        // JSON array of class names, in output order
	KeyPreprocessing = "preprocessing" // JSON object, see Preprocessing
	KeyGraft         = "graft"         // JSON object, see GraftInfo
)

// Preprocessing records how images become the model's input tensor.
type Preprocessing struct {
	Layout     string    `json:"layout"`      // "NCHW" or "NHWC"
	Channels   int       `json:"channels"`    // 1 or 3
	ColorOrder string    `json:"color_order"` // "RGB" or "BGR" (3 channels)
	Height     int       `json:"height"`
	Width      int       `json:"width"`
	Resize     int       `json:"resize"` // shorter side resized to this, then center crop
	Crop       string    `json:"crop"`   // "center"
	Scale      float64   `json:"scale"`  // multiplies 8-bit pixel values (1/255 for [0,1])
	Mean       []float64 `json:"mean"`   // per channel, after scaling
	Std        []float64 `json:"std"`
}

// GraftInfo records what graft did to a model.
type GraftInfo struct {
	Version         string          `json:"version"`
	BaseSHA256      string          `json:"base_sha256"`
	Cut             string          `json:"cut,omitempty"`
	Head            json.RawMessage `json:"head,omitempty"`
	FrozenParams    int64           `json:"frozen_params"`
	TrainableParams int64           `json:"trainable_params"`
	Training        json.RawMessage `json:"training,omitempty"`
}

// Labels returns the model's class labels, if it records them.
func (m *Model) Labels() ([]string, error) {
	s, ok := m.Metadata(KeyLabels)
	if !ok {
		return nil, nil
	}
	var labels []string
	if err := json.Unmarshal([]byte(s), &labels); err != nil {
		return nil, fmt.Errorf("%s: metadata %q is not a JSON array of strings: %w", m.Path, KeyLabels, err)
	}
	return labels, nil
}

// Preprocessing returns the model's recorded preprocessing, or nil.
func (m *Model) Preprocessing() (*Preprocessing, error) {
	s, ok := m.Metadata(KeyPreprocessing)
	if !ok {
		return nil, nil
	}
	p := &Preprocessing{}
	if err := json.Unmarshal([]byte(s), p); err != nil {
		return nil, fmt.Errorf("%s: metadata %q is not a preprocessing object: %w", m.Path, KeyPreprocessing, err)
	}
	return p, nil
}

// Graft returns what graft recorded of its own work on the model, or nil.
func (m *Model) Graft() (*GraftInfo, error) {
	s, ok := m.Metadata(KeyGraft)
	if !ok {
		return nil, nil
	}
	g := &GraftInfo{}
	if err := json.Unmarshal([]byte(s), g); err != nil {
		return nil, fmt.Errorf("%s: metadata %q is not a graft object: %w", m.Path, KeyGraft, err)
	}
	return g, nil
}
