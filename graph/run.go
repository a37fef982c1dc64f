package graph

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/graftml/graft/onnx"
)

// RunConfig configures RunFiles.
type RunConfig struct {
	Model string
	// Inputs are "NAME=FILE" or "FILE"; a FILE without a name binds to the
	// first model input not yet bound. FILE is a serialized TensorProto
	// (.pb) or a NumPy array (.npy).
	Inputs []string
	// OutDir, when set, receives one OUTPUT.pb per output.
	OutDir string
	Limits onnx.Limits
	// Shapes gives float inputs' shapes by name (--input-shape). A given
	// input file must have that shape; a float input with a shape and no
	// file gets standard normal values drawn from Seed (a smoke test of a
	// model, e.g. one whose image size is free).
	Shapes map[string][]int
	Seed   int64
}

// RunResult holds the outputs, in graph order, and the files written.
type RunResult struct {
	Outputs []*onnx.Tensor
	Files   []string
}

// RunFiles reads a model and input files, runs the model and writes its
// outputs. It checks ctx before building the model and before running
// it.
func RunFiles(ctx context.Context, cfg RunConfig) (*RunResult, error) {
	src, err := onnx.ReadFile(cfg.Model, cfg.Limits)
	if err != nil {
		return nil, err
	}
	if err := CheckOps(src); err != nil {
		return nil, err
	}
	if err := CheckShapes(src, cfg.Shapes); err != nil {
		return nil, err
	}
	ins := src.Inputs()
	bound := map[string]*onnx.Tensor{}
	for _, spec := range cfg.Inputs {
		name, file := "", spec
		if i := strings.Index(spec, "="); i > 0 && !strings.ContainsAny(spec[:i], `/\`) {
			name, file = spec[:i], spec[i+1:]
		}
		t, err := readTensorFile(file)
		if err != nil {
			return nil, err
		}
		if name == "" {
			for _, in := range ins {
				if bound[in.Name] == nil {
					name = in.Name
					break
				}
			}
			if name == "" {
				return nil, fmt.Errorf("%s: the model has no input left to bind it to (inputs: %s)", file, viNames(ins))
			}
		}
		idx := slices.IndexFunc(ins, func(v *onnx.ValueInfoProto) bool { return v.Name == name })
		if idx < 0 {
			return nil, fmt.Errorf("%s: the model has no input %q (inputs: %s)", file, name, viNames(ins))
		}
		if err := checkInput(ins[idx], t); err != nil {
			return nil, fmt.Errorf("%s: input %q: %w", file, name, err)
		}
		if s, ok := cfg.Shapes[name]; ok && !slices.Equal(s, t.Shape) {
			return nil, onnx.OptionErrorf("RunConfig.Shapes", "%s: input %q has shape %v, not the %v given for it", file, name, t.Shape, s)
		}
		bound[name] = t
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	for _, in := range ins { // in graph order, so the values depend on the seed only
		if s, ok := cfg.Shapes[in.Name]; ok && bound[in.Name] == nil && isFloatElem(in.GetType().GetTensorType().GetElemType()) {
			t := onnx.NewFloat(s, nil)
			for i := range t.F {
				t.F[i] = float32(rng.NormFloat64())
			}
			bound[in.Name] = t
		}
	}
	opt := Options{Shapes: map[string][]int{}, Values: map[string]*onnx.Tensor{}}
	feed := map[string]*onnx.Tensor{}
	for _, in := range ins {
		t, ok := bound[in.Name]
		if !ok {
			return nil, onnx.OptionErrorf("RunConfig.Inputs", "%s: input %q has no value; give it with RunConfig.Inputs %s=FILE", cfg.Model, in.Name, in.Name)
		}
		if t.DType == onnx.Int64 {
			opt.Values[in.Name] = t
		} else {
			opt.Shapes[in.Name] = t.Shape
			feed[in.Name] = t
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("running %s: %w", cfg.Model, err)
	}
	m, err := Build(src, opt)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("running %s: %w", cfg.Model, err)
	}
	outs, err := m.Run(feed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Model, err)
	}
	res := &RunResult{}
	used := map[string]bool{}
	for _, p := range m.Outputs {
		t := outs[p.Name]
		res.Outputs = append(res.Outputs, t)
		if cfg.OutDir == "" {
			continue
		}
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return nil, err
		}
		base := onnx.SafeFileName(p.Name)
		for i := 2; used[base]; i++ {
			base = fmt.Sprintf("%s_%d", onnx.SafeFileName(p.Name), i)
		}
		used[base] = true
		path := filepath.Join(cfg.OutDir, base+".pb")
		if err := onnx.WriteTensorFile(path, t); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, path)
	}
	return res, nil
}

func readTensorFile(path string) (*onnx.Tensor, error) {
	if strings.HasSuffix(strings.ToLower(path), ".npy") {
		return onnx.ReadNpyFile(path)
	}
	return onnx.ReadTensorFile(path)
}

// checkInput compares a tensor with an input's declared type and shape.
func checkInput(vi *onnx.ValueInfoProto, t *onnx.Tensor) error {
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.ElemType == 0 {
		return nil // the model declares nothing to check against
	}
	want := onnx.Float32
	switch tt.GetElemType() {
	case 1, 10, 11, 16:
	default:
		want = onnx.Int64
	}
	if t.DType != want {
		return fmt.Errorf("the model wants %s data, the file holds %s", elemTypeName(tt.GetElemType()), t.DType)
	}
	dims := tt.GetShape().GetDim()
	if tt.GetShape() == nil {
		return nil
	}
	if len(dims) != len(t.Shape) {
		return fmt.Errorf("the model wants rank %d (%v), the file holds shape %v", len(dims), describe(vi).Shape, t.Shape)
	}
	for i, d := range dims {
		if v := d.GetDimValue(); v > 0 && int(v) != t.Shape[i] {
			return fmt.Errorf("the model wants shape %v, the file holds %v", describe(vi).Shape, t.Shape)
		}
	}
	return nil
}

func viNames(vs []*onnx.ValueInfoProto) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}
