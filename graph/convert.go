package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/graftml/graft/onnx"
)

// Version is graft's version, recorded in the models it writes.
const Version = "0.1.0"

// ConvertConfig is what `graft convert` asks for.
type ConvertConfig struct {
	Model string
	Out   string
	// Cut is "" (keep the whole model), "auto" (the input of the final
	// classifier) or a tensor name: write the graph up to that tensor.
	Cut string
	// Head, when not nil, replaces the classifier with a fresh head; it
	// implies Cut "auto" when Cut is empty.
	Head   *HeadSpec
	Labels []string
	// Batch is "" (keep), "dynamic" or a positive number.
	Batch  string
	Force  bool
	Limits onnx.Limits
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
}

// Convert performs the model surgery of `graft convert` and writes the
// result atomically.
func Convert(cfg ConvertConfig) (*ConvertResult, error) {
	if cfg.Head != nil {
		if err := cfg.Head.Validate(); err != nil {
			return nil, fmt.Errorf("--head: %v", err)
		}
		if len(cfg.Labels) > 0 && len(cfg.Labels) != cfg.Head.Classes {
			return nil, fmt.Errorf("--labels: %d labels for a head of %d classes", len(cfg.Labels), cfg.Head.Classes)
		}
		if cfg.Cut == "" {
			cfg.Cut = "auto"
		}
	} else if len(cfg.Labels) > 0 {
		return nil, fmt.Errorf("--labels needs --head")
	}
	if err := CheckOutPath(cfg.Model, cfg.Out, cfg.Force); err != nil {
		return nil, err
	}
	src, err := onnx.ReadFile(cfg.Model, cfg.Limits)
	if err != nil {
		return nil, err
	}
	mp := CloneProto(src.Proto)
	before := len(mp.Graph.Node)
	res := &ConvertResult{Out: cfg.Out}

	if cfg.Batch != "" {
		if err := SetBatch(mp, cfg.Batch); err != nil {
			return nil, fmt.Errorf("%s: --batch: %v", cfg.Model, err)
		}
	}
	var head *Head
	var frozen int64
	if cfg.Cut != "" {
		cut, err := ResolveCut(src, cfg.Cut)
		if err != nil {
			return nil, err
		}
		res.Cut = cut
		shape, err := tensorShape(src, cut)
		if err != nil {
			return nil, err
		}
		if err := CutAt(mp, cut); err != nil {
			return nil, fmt.Errorf("%s: %v", cfg.Model, err)
		}
		frozen = countParams(mp)
		if cfg.Head != nil {
			head, err = AttachHead(mp, cut, shape, *cfg.Head)
		} else if len(shape) == 4 {
			head, err = poolFeatures(mp, cut, shape)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", cfg.Model, err)
		}
	}
	if cfg.Cut != "" || cfg.Batch != "" || !outputsHaveShapes(mp) {
		if err := SetOutputs(mp, src.Path); err != nil {
			return nil, err
		}
	}
	if len(cfg.Labels) > 0 {
		b, _ := json.Marshal(cfg.Labels)
		SetMetadata(mp, onnx.KeyLabels, string(b))
	} else if head != nil && cfg.Head != nil {
		// the old labels describe the old classifier
		removeMetadata(mp, onnx.KeyLabels)
	}
	info := onnx.GraftInfo{Version: Version, BaseSHA256: sha256Hex(src.Raw), Cut: res.Cut, FrozenParams: countParams(mp)}
	if cfg.Head != nil {
		info.Head, _ = json.Marshal(cfg.Head)
		info.TrainableParams = int64(head.NumParams)
		info.FrozenParams = frozen
	}
	b, _ := json.Marshal(info)
	SetMetadata(mp, onnx.KeyGraft, string(b))
	if err := onnx.WriteFile(cfg.Out, mp, true); err != nil {
		return nil, err
	}
	for _, in := range mp.Graph.Input {
		res.Inputs = append(res.Inputs, describe(in))
	}
	for _, out := range mp.Graph.Output {
		res.Outputs = append(res.Outputs, describe(out))
	}
	res.Nodes = len(mp.Graph.Node)
	if head != nil {
		res.Added = len(mp.Graph.Node) - (before - len(Downstream(src, res.Cut)))
	}
	res.Removed = before - (len(mp.Graph.Node) - res.Added)
	return res, nil
}

// poolFeatures turns a 4-D cut into 2-D features (GlobalAveragePool and
// Flatten) for a feature extractor.
func poolFeatures(mp *onnx.ModelProto, cut string, shape []int) (*Head, error) {
	names := usedNames(mp.Graph)
	pooled, feat := uniqueName(names, "graft/pooled"), uniqueName(names, "features")
	mp.Graph.Node = append(mp.Graph.Node,
		&onnx.NodeProto{Name: uniqueName(names, "graft/GlobalAveragePool"), OpType: "GlobalAveragePool", Input: []string{cut}, Output: []string{pooled}},
		&onnx.NodeProto{Name: uniqueName(names, "graft/Flatten"), OpType: "Flatten", Input: []string{pooled}, Output: []string{feat},
			Attribute: []*onnx.AttributeProto{intAttr("axis", 1)}})
	mp.Graph.Output = []*onnx.ValueInfoProto{{Name: feat}}
	return &Head{Features: feat, FeatureDim: shape[1], Output: feat}, nil
}

func uniqueName(names map[string]bool, base string) string {
	name := base
	for i := 1; names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	names[name] = true
	return name
}

func removeMetadata(mp *onnx.ModelProto, key string) {
	var keep []*onnx.StringStringEntryProto
	for _, p := range mp.MetadataProps {
		if p.Key != key {
			keep = append(keep, p)
		}
	}
	mp.MetadataProps = keep
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func countParams(mp *onnx.ModelProto) int64 {
	var n int64
	for _, t := range mp.Graph.Initializer {
		if t.DataType != 1 && t.DataType != 10 && t.DataType != 11 {
			continue
		}
		c := int64(1)
		for _, d := range t.Dims {
			c *= d
		}
		n += c
	}
	return n
}

// ResolveCut turns "auto" or a tensor name into a cut tensor, with an
// error listing candidates when it names nothing.
func ResolveCut(src *onnx.Model, cut string) (string, error) {
	if cut == "auto" {
		c, err := FindCut(src)
		if err != nil {
			return "", err
		}
		return c.Tensor, nil
	}
	if !definesTensor(src.Proto.Graph, cut) {
		return "", fmt.Errorf("%s: no tensor named %q to cut at; candidates: %s", src.Path, cut, strings.Join(CutCandidates(src), ", "))
	}
	return cut, nil
}

// tensorShape builds the model at batch 1 to learn a tensor's shape.
func tensorShape(src *onnx.Model, name string) ([]int, error) {
	m, err := Build(src, Options{Freeze: true, Outputs: []string{name}})
	if err != nil {
		return nil, err
	}
	s, _ := m.Shape(name)
	return s, nil
}

// CheckOutPath refuses an output path in a missing folder, and the input
// path itself unless force is set.
func CheckOutPath(in, out string, force bool) error {
	if out == "" {
		return fmt.Errorf("--out is required")
	}
	dir := filepath.Dir(out)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: folder %s does not exist", out, dir)
	}
	if st, err := os.Stat(out); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s: is a folder", out)
		}
		if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) && !force {
			return fmt.Errorf("%s: is the input model; refusing to overwrite it (use --force)", out)
		}
		if !force {
			return fmt.Errorf("%s: file exists (use --force to overwrite it)", out)
		}
	}
	return nil
}

// SetBatch makes the batch dimension of every graph input symbolic
// ("dynamic") or fixed (a number). Reshape shape constants that hard-code
// the old fixed batch size get 0 (copy the input's dimension) instead, and
// intermediate value_infos, which record the old batch, are dropped.
func SetBatch(mp *onnx.ModelProto, batch string) error {
	dynamic := batch == "dynamic"
	n := 0
	if !dynamic {
		v, err := strconv.Atoi(batch)
		if err != nil || v < 1 {
			return fmt.Errorf("%q is neither \"dynamic\" nor a positive number", batch)
		}
		n = v
	}
	inits := map[string]*onnx.TensorProto{}
	for _, t := range mp.Graph.Initializer {
		inits[t.Name] = t
	}
	oldBatch := 0
	for _, in := range mp.Graph.Input {
		if _, ok := inits[in.Name]; ok {
			continue
		}
		dims := in.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 {
			continue
		}
		if v := dims[0].GetDimValue(); v > 0 {
			oldBatch = int(v)
		}
		if dynamic {
			dims[0].Value = &onnx.DimParam{DimParam: "N"}
		} else {
			dims[0].Value = &onnx.DimValue{DimValue: int64(n)}
		}
	}
	if oldBatch > 0 {
		fixReshapes(mp, inits, oldBatch)
	}
	mp.Graph.ValueInfo = nil
	return nil
}

// fixReshapes rewrites Reshape target shapes whose first entry is the old
// fixed batch size to 0, which copies the batch dimension of the input.
func fixReshapes(mp *onnx.ModelProto, inits map[string]*onnx.TensorProto, oldBatch int) {
	consts := map[string]*onnx.AttributeProto{}
	for _, n := range mp.Graph.Node {
		if n.OpType == "Constant" && len(n.Output) == 1 {
			for _, a := range n.Attribute {
				if a.Name == "value" && a.T != nil {
					consts[n.Output[0]] = a
				}
			}
		}
	}
	for _, n := range mp.Graph.Node {
		if n.OpType != "Reshape" || len(n.Input) < 2 {
			continue
		}
		allowZero := false
		for _, a := range n.Attribute {
			if a.Name == "allowzero" && a.I != 0 {
				allowZero = true
			}
		}
		if allowZero {
			continue
		}
		var tp *onnx.TensorProto
		if t, ok := inits[n.Input[1]]; ok {
			tp = t
		} else if a, ok := consts[n.Input[1]]; ok {
			tp = a.T
		}
		if tp == nil {
			continue
		}
		t, err := onnx.TensorFromProto(tp)
		if err != nil || t.DType != onnx.Int64 || len(t.I) < 2 || int(t.I[0]) != oldBatch {
			continue
		}
		t.I[0] = 0
		np := t.ToProto()
		tp.RawData, tp.Int64Data, tp.DataType = np.RawData, nil, np.DataType
	}
}

func outputsHaveShapes(mp *onnx.ModelProto) bool {
	for _, o := range mp.Graph.Output {
		if o.GetType().GetTensorType().GetShape() == nil {
			return false
		}
	}
	return true
}

// SetOutputs builds mp at batch 1 and declares every graph output with its
// full shape and type; a symbolic batch on an input stays symbolic on the
// outputs.
func SetOutputs(mp *onnx.ModelProto, file string) error {
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
	m, err := Build(&onnx.Model{Proto: mp, Path: file}, Options{Freeze: true})
	if err != nil {
		return fmt.Errorf("the converted model does not build: %v", err)
	}
	for i, out := range mp.Graph.Output {
		p := m.Outputs[i]
		et := int32(1)
		if p.DType == onnx.Int64 {
			et = 7
		}
		bp := batchParam
		if len(p.Shape) == 0 {
			bp = ""
		}
		mp.Graph.Output[i] = valueInfo(out.Name, p.Shape, et, bp)
		mp.Graph.Output[i].DocString = out.DocString
	}
	return nil
}
