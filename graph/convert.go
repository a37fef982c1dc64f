package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
)

// ConvertConfig configures Convert. Model and Out are required; the zero
// value of every other field leaves that part of the model as it is.
type ConvertConfig struct {
	Model string
	Out   string
	// Cut is "" (keep the whole model), "auto" (the input of the final
	// classifier) or a tensor name: write the graph up to that tensor.
	Cut string
	// Head, when not nil, replaces the classifier with a fresh head; it
	// implies Cut "auto" when Cut is empty.
	Head *surgery.HeadSpec
	// Labels name the new head's classes, in output order. Without them a
	// new head's model has no labels: the base model's describe the
	// classifier the head replaced.
	Labels []string
	// Batch is the written model's batch dimension (the first input
	// dimension): "" (keep), "dynamic" or a positive number.
	Batch string
	// Softmax appends Softmax to a classifier without a new head (a new
	// head has HeadSpec.Softmax), so that it outputs probabilities. A
	// feature extractor (Cut without Head) takes none.
	Softmax bool
	// OutputName names the written model's output. By default a feature
	// extractor's is "features", a new head's "logits" (or
	// "probabilities"), and a whole model keeps its own.
	OutputName string
	// Shapes binds the symbolic dimensions of named inputs (an image
	// input [N, 3, H, W]) for the build that computes shapes; the written
	// model keeps them symbolic. Without it, the preprocessing metadata
	// binds the image size, if recorded.
	Shapes map[string][]int
	// FoldBN folds inference-mode BatchNormalization into the Conv or
	// Gemm before it (surgery.FoldBatchNorm).
	FoldBN bool
	// Strip removes Dropout and Identity nodes (surgery.StripInference).
	Strip bool
	// RenameInputs and RenameOutputs map old graph input and output names
	// to new ones, applied after the other edits.
	RenameInputs, RenameOutputs map[string]string
	Force                       bool
	Limits                      onnx.Limits
}

// ConvertResult describes the written model.
type ConvertResult struct {
	Out     string       `json:"out"`
	Cut     string       `json:"cut,omitempty"`
	Inputs  []TensorInfo `json:"inputs"`
	Outputs []TensorInfo `json:"outputs"`
	Nodes   int          `json:"nodes"`
	Removed int          `json:"removed_nodes"`
	Added   int          `json:"added_nodes"`
	// NodesBefore is the source model's node count.
	NodesBefore int `json:"nodes_before"`
	// FoldedBN and Stripped count the BatchNormalization nodes folded and
	// the Dropout and Identity nodes removed.
	FoldedBN int `json:"folded_bn,omitempty"`
	Stripped int `json:"stripped,omitempty"`
	// Params is the written model's parameter count.
	Params int64 `json:"params"`
}

// Convert performs the model surgery of `graft convert` and writes the
// result atomically. Bad options are *onnx.OptionError; a model graft
// cannot read or build gives *onnx.FormatError, *UnsupportedOpsError or
// *NodeError. It checks ctx before each stage that reads, builds or
// writes a model.
func Convert(ctx context.Context, cfg ConvertConfig) (*ConvertResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Softmax && cfg.Head == nil && cfg.Cut != "" {
		return nil, onnx.OptionErrorf("ConvertConfig.Softmax", "applies to a classifier; ConvertConfig.Cut without ConvertConfig.Head writes a feature extractor")
	}
	if cfg.Softmax && cfg.Head != nil {
		cfg.Head.Softmax = true
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("converting %s: %w", cfg.Model, err)
	}
	if err := onnx.CheckOutPath(cfg.Model, cfg.Out, cfg.Force); err != nil {
		return nil, err
	}
	src, err := onnx.ReadFile(cfg.Model, cfg.Limits)
	if err != nil {
		return nil, err
	}
	mp, res, err := ConvertModel(ctx, src, cfg)
	if err != nil {
		return nil, err
	}
	if err := onnx.WriteFile(cfg.Out, mp, true); err != nil {
		return nil, err
	}
	return res, nil
}

// Validate checks the options that do not depend on the model.
func (cfg *ConvertConfig) Validate() error {
	if cfg.Head != nil {
		if err := cfg.Head.Validate(); err != nil {
			return &onnx.OptionError{Option: "ConvertConfig.Head", Err: err}
		}
		if len(cfg.Labels) > 0 && len(cfg.Labels) != cfg.Head.Classes {
			return onnx.OptionErrorf("ConvertConfig.Labels", "%d labels for a head of %d classes", len(cfg.Labels), cfg.Head.Classes)
		}
	} else if len(cfg.Labels) > 0 {
		return onnx.OptionErrorf("ConvertConfig.Labels", "labels name a new head's classes; give ConvertConfig.Head")
	}
	for _, m := range []struct {
		opt string
		m   map[string]string
	}{{"ConvertConfig.RenameInputs", cfg.RenameInputs}, {"ConvertConfig.RenameOutputs", cfg.RenameOutputs}} {
		seen := map[string]string{}
		for old, nw := range m.m {
			if old == "" || nw == "" {
				return onnx.OptionErrorf(m.opt, "%q=%q: both names must be given", old, nw)
			}
			if prev, ok := seen[nw]; ok {
				return onnx.OptionErrorf(m.opt, "%q and %q would both be named %q", prev, old, nw)
			}
			seen[nw] = old
		}
	}
	return nil
}

// ConvertModel performs Convert's surgery on src in memory and returns
// the converted ModelProto without writing it; cfg.Model and cfg.Out only
// name the files in messages. The batch runner uses it to check a model
// before it commits the file.
func ConvertModel(ctx context.Context, src *onnx.Model, cfg ConvertConfig) (*onnx.ModelProto, *ConvertResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if cfg.Head != nil && cfg.Cut == "" {
		cfg.Cut = "auto"
	}
	mp := surgery.CloneProto(src.Proto)
	before := len(mp.Graph.Node)
	res := &ConvertResult{Out: cfg.Out, NodesBefore: before}

	if cfg.Batch != "" {
		if err := surgery.SetBatch(mp, cfg.Batch); err != nil {
			return nil, nil, onnx.OptionErrorf("ConvertConfig.Batch", "%s: %w", cfg.Model, err)
		}
	}
	var head *surgery.Head
	var frozen int64
	if cfg.Cut != "" {
		cut, err := surgery.ResolveCut(src, cfg.Cut)
		if err != nil {
			return nil, nil, err
		}
		res.Cut = cut
		shape, err := tensorShape(src, cut, cfg.Shapes)
		if err != nil {
			return nil, nil, err
		}
		if err := surgery.CutAt(mp, cut); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Model, err)
		}
		frozen = surgery.CountParams(mp)
		if cfg.Head != nil {
			head, err = surgery.AttachHead(mp, cut, shape, *cfg.Head)
		} else if len(shape) == 4 {
			head, err = surgery.PoolFeatures(mp, cut, shape)
		} else if cfg.OutputName == "" && !usesName(mp, "features") {
			// the same output name whatever the model called the tensor
			err = surgery.NameOutput(mp, "features")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Model, err)
		}
	} else if cfg.Softmax {
		if _, err := surgery.AppendSoftmax(mp); err != nil {
			return nil, nil, onnx.OptionErrorf("ConvertConfig.Softmax", "%s: %w", cfg.Model, err)
		}
	}
	added := 0
	if head != nil {
		added = len(mp.Graph.Node) - (before - len(surgery.Downstream(src, res.Cut)))
	}
	if cfg.Strip {
		res.Stripped = surgery.StripInference(mp)
	}
	if cfg.FoldBN {
		n, err := surgery.FoldBatchNorm(mp)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Model, err)
		}
		res.FoldedBN = n
	}
	for _, old := range sortedKeys(cfg.RenameInputs) {
		if err := surgery.RenameInput(mp, old, cfg.RenameInputs[old]); err != nil {
			return nil, nil, onnx.OptionErrorf("ConvertConfig.RenameInputs", "%s: %w", cfg.Model, err)
		}
	}
	for _, old := range sortedKeys(cfg.RenameOutputs) {
		if err := surgery.RenameOutput(mp, old, cfg.RenameOutputs[old]); err != nil {
			return nil, nil, onnx.OptionErrorf("ConvertConfig.RenameOutputs", "%s: %w", cfg.Model, err)
		}
	}
	if cfg.OutputName != "" {
		if err := surgery.NameOutput(mp, cfg.OutputName); err != nil {
			return nil, nil, onnx.OptionErrorf("ConvertConfig.OutputName", "%s: %w", cfg.Model, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("converting %s: %w", cfg.Model, err)
	}
	if cfg.Cut != "" || cfg.Batch != "" || cfg.Softmax || cfg.OutputName != "" || cfg.FoldBN || cfg.Strip || len(cfg.RenameOutputs) > 0 || !surgery.OutputsHaveShapes(mp) {
		if err := SetOutputsFor(mp, src.Path, cfg.Shapes); err != nil {
			return nil, nil, err
		}
	}
	if len(cfg.Labels) > 0 {
		b, _ := json.Marshal(cfg.Labels)
		surgery.SetMetadata(mp, onnx.KeyLabels, string(b))
	} else if cfg.Cut != "" {
		// the old labels describe the classifier the cut removed
		surgery.RemoveMetadata(mp, onnx.KeyLabels)
	}
	info := onnx.GraftInfo{Version: onnx.GraftVersion(), BaseSHA256: sha256Hex(src.Raw), Cut: res.Cut, FrozenParams: surgery.CountParams(mp)}
	if cfg.Head != nil {
		info.Head, _ = json.Marshal(cfg.Head)
		info.TrainableParams = int64(head.NumParams)
		info.FrozenParams = frozen
	}
	b, _ := json.Marshal(info)
	surgery.SetMetadata(mp, onnx.KeyGraft, string(b))
	for _, in := range mp.Graph.Input {
		res.Inputs = append(res.Inputs, describe(in))
	}
	for _, out := range mp.Graph.Output {
		res.Outputs = append(res.Outputs, describe(out))
	}
	res.Nodes = len(mp.Graph.Node)
	res.Added = added
	res.Removed = before - (len(mp.Graph.Node) - res.Added)
	res.Params = surgery.CountParams(mp)
	return mp, res, nil
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// usesName reports whether a tensor, input or node of mp is called name.
func usesName(mp *onnx.ModelProto, name string) bool {
	g := mp.Graph
	for _, in := range g.Input {
		if in.Name == name {
			return true
		}
	}
	for _, t := range g.Initializer {
		if t.Name == name {
			return true
		}
	}
	for _, n := range g.Node {
		if n.Name == name || slices.Contains(n.Output, name) {
			return true
		}
	}
	return false
}

// tensorShape builds the model at batch 1 to learn a tensor's shape.
func tensorShape(src *onnx.Model, name string, shapes map[string][]int) ([]int, error) {
	m, err := Build(src, Options{Freeze: true, Outputs: []string{name}, Shapes: shapes})
	if err != nil {
		return nil, err
	}
	s, _ := m.Shape(name)
	return s, nil
}

// SetOutputs builds mp at batch 1 and declares every graph output with its
// full shape and type; a symbolic batch on an input stays symbolic on the
// outputs.
func SetOutputs(mp *onnx.ModelProto, file string) error {
	return SetOutputsFor(mp, file, nil)
}

// SetOutputsFor is SetOutputs with the shapes of named inputs given (see
// ConvertConfig.Shapes). When an input has symbolic dimensions besides
// the batch, it builds mp a second time with those dimensions doubled:
// output dimensions that follow them are declared symbolic too.
func SetOutputsFor(mp *onnx.ModelProto, file string, shapes map[string][]int) error {
	batchParam := ""
	for _, in := range mp.Graph.Input {
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) > 0 && dims[0].GetDimValue() <= 0 {
			batchParam = dims[0].GetDimParam()
			if batchParam == "" {
				batchParam = "N"
			}
			break
		}
	}
	src := &onnx.Model{Proto: mp, Path: file}
	m, err := Build(src, Options{Freeze: true, Shapes: shapes})
	if err != nil {
		return fmt.Errorf("the converted model does not build: %w", err)
	}
	var varying map[int][]bool // output -> dims that follow a symbolic input dim
	if alt := doubledShapes(src, m); alt != nil {
		if m2, err := Build(src, Options{Freeze: true, Shapes: alt}); err == nil {
			varying = map[int][]bool{}
			for i, p := range m2.Outputs {
				v := make([]bool, len(p.Shape))
				for d := range p.Shape {
					v[d] = d < len(m.Outputs[i].Shape) && p.Shape[d] != m.Outputs[i].Shape[d]
				}
				varying[i] = v
			}
		}
	}
	for i, out := range mp.Graph.Output {
		p := m.Outputs[i]
		et := surgery.FloatType(mp, out.Name) // a float16 model's outputs stay float16
		if p.DType == onnx.Int64 {
			et = 7
		}
		bp := batchParam
		if len(p.Shape) == 0 {
			bp = ""
		}
		vi := onnx.ValueInfo(out.Name, p.Shape, et, bp)
		for d, v := range varying[i] {
			if v && d > 0 {
				vi.Type.GetTensorType().Shape.Dim[d].Value = &onnx.DimParam{DimParam: fmt.Sprintf("%s_dim%d", out.Name, d)}
			}
		}
		mp.Graph.Output[i] = vi
		mp.Graph.Output[i].DocString = out.DocString
	}
	return nil
}

// doubledShapes returns the input shapes of m with every symbolic
// dimension but the batch doubled, or nil when no input has one.
func doubledShapes(src *onnx.Model, m *Model) map[string][]int {
	var out map[string][]int
	for _, in := range src.Inputs() {
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		idx := slices.IndexFunc(m.Inputs, func(p Port) bool { return p.Name == in.Name })
		if idx < 0 {
			continue
		}
		s := slices.Clone(m.Inputs[idx].Shape)
		changed := false
		for d := 1; d < len(dims) && d < len(s); d++ {
			if dims[d].GetDimValue() <= 0 {
				s[d] *= 2
				changed = true
			}
		}
		if changed {
			if out == nil {
				out = map[string][]int{}
				for _, p := range m.Inputs {
					out[p.Name] = p.Shape
				}
			}
			out[in.Name] = s
		}
	}
	return out
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
