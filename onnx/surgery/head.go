package surgery

import (
	"fmt"
	"math"
	"math/rand"
	"slices"

	"github.com/graftml/graft/onnx"
)

// HeadSpec describes a new classifier head.
type HeadSpec struct {
	Classes int     `json:"classes"`
	Hidden  []int   `json:"hidden,omitempty"`  // hidden layer sizes of an MLP head; none for linear
	Dropout float32 `json:"dropout,omitempty"` // dropout before each Gemm after the first (MLP only)
	Softmax bool    `json:"softmax,omitempty"` // append Softmax so the model outputs probabilities
	Seed    int64   `json:"seed"`
}

// Validate checks the spec.
func (s HeadSpec) Validate() error {
	if s.Classes < 2 {
		return fmt.Errorf("a head needs at least 2 classes, got %d", s.Classes)
	}
	for _, h := range s.Hidden {
		if h < 1 {
			return fmt.Errorf("hidden layer size %d must be positive", h)
		}
	}
	if s.Dropout < 0 || s.Dropout >= 1 {
		return fmt.Errorf("dropout %g must be in [0, 1)", s.Dropout)
	}
	return nil
}

// Head is what AttachHead added to a model.
type Head struct {
	Features   string   // the 2-D features tensor the first Gemm reads
	FeatureDim int      // its second dimension
	Logits     string   // the head's logits tensor
	Output     string   // the model's new output (Logits, or probabilities)
	Params     []string // the head's initializers
	NumParams  int
}

// AttachHead appends a freshly initialised head that reads tensor cut of
// shape cutShape (batch first), and makes its output the only graph
// output. A 4-D cut gets GlobalAveragePool and Flatten first, so features
// and heads are 2-D. Weights are initialised as PyTorch's nn.Linear does:
// weight and bias uniform in ±1/sqrt(fan_in), from spec.Seed. The
// model's labels metadata, which named the old classes, is removed.
func AttachHead(mp *onnx.ModelProto, cut string, cutShape []int, spec HeadSpec) (*Head, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	// the old labels name the old classifier's classes
	RemoveMetadata(mp, onnx.KeyLabels)
	g := mp.Graph
	opset := onnx.OpsetOf(mp)
	names := usedNames(g)
	fresh := func(base string) string {
		name := base
		for i := 1; names[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		names[name] = true
		return name
	}
	h := &Head{}
	elem := FloatType(mp, cut) // a float16 model gets a float16 head
	feat, dim := cut, 0
	switch len(cutShape) {
	case 2:
		dim = cutShape[1]
	case 4:
		pooled := fresh("graft_head/pooled")
		flat := fresh("graft_head/features")
		g.Node = append(g.Node,
			&onnx.NodeProto{Name: fresh("graft_head/GlobalAveragePool"), OpType: "GlobalAveragePool", Input: []string{cut}, Output: []string{pooled}},
			&onnx.NodeProto{Name: fresh("graft_head/Flatten"), OpType: "Flatten", Input: []string{pooled}, Output: []string{flat},
				Attribute: []*onnx.AttributeProto{onnx.IntAttr("axis", 1)}})
		feat, dim = flat, cutShape[1]
	default:
		return nil, fmt.Errorf("cut tensor %q has shape %v; a head needs a 2-D [N, features] or 4-D [N, C, H, W] tensor", cut, cutShape)
	}
	h.Features, h.FeatureDim = feat, dim
	r := rand.New(rand.NewSource(spec.Seed))
	sizes := append(slices.Clone(spec.Hidden), spec.Classes)
	x, in := feat, dim
	for li, out := range sizes {
		if li > 0 {
			if spec.Dropout > 0 {
				d := fresh(fmt.Sprintf("graft_head/dropout%d", li))
				node := &onnx.NodeProto{Name: fresh(fmt.Sprintf("graft_head/Dropout%d", li)), OpType: "Dropout", Input: []string{x}, Output: []string{d}}
				if opset < 12 {
					node.Attribute = []*onnx.AttributeProto{{Name: "ratio", Type: onnx.AttrFloat, F: spec.Dropout}}
				} else {
					ratio := fresh(fmt.Sprintf("graft_head.%d.dropout_ratio", li))
					t := onnx.NewFloat(nil, []float32{spec.Dropout})
					t.Name = ratio
					g.Initializer = append(g.Initializer, t.ToProtoAs(elem))
					node.Input = append(node.Input, ratio)
				}
				g.Node = append(g.Node, node)
				x = d
			}
		}
		bound := 1 / math.Sqrt(float64(in))
		w := onnx.NewFloat([]int{out, in}, nil)
		for i := range w.F {
			w.F[i] = float32((2*r.Float64() - 1) * bound)
		}
		b := onnx.NewFloat([]int{out}, nil)
		for i := range b.F {
			b.F[i] = float32((2*r.Float64() - 1) * bound)
		}
		w.Name = fresh(fmt.Sprintf("graft_head.%d.weight", li))
		b.Name = fresh(fmt.Sprintf("graft_head.%d.bias", li))
		g.Initializer = append(g.Initializer, w.ToProtoAs(elem), b.ToProtoAs(elem))
		h.Params = append(h.Params, w.Name, b.Name)
		h.NumParams += len(w.F) + len(b.F)
		y := fresh(fmt.Sprintf("graft_head/linear%d", li))
		if li == len(sizes)-1 {
			y = fresh("logits")
		}
		g.Node = append(g.Node, &onnx.NodeProto{Name: fresh(fmt.Sprintf("graft_head/Gemm%d", li)), OpType: "Gemm",
			Input: []string{x, w.Name, b.Name}, Output: []string{y}, Attribute: []*onnx.AttributeProto{onnx.IntAttr("transB", 1)}})
		x, in = y, out
		if li < len(sizes)-1 {
			a := fresh(fmt.Sprintf("graft_head/relu%d", li))
			g.Node = append(g.Node, &onnx.NodeProto{Name: fresh(fmt.Sprintf("graft_head/Relu%d", li)), OpType: "Relu", Input: []string{x}, Output: []string{a}})
			x = a
		}
	}
	h.Logits, h.Output = x, x
	if spec.Softmax {
		p := fresh("probabilities")
		g.Node = append(g.Node, &onnx.NodeProto{Name: fresh("graft_head/Softmax"), OpType: "Softmax", Input: []string{x}, Output: []string{p},
			Attribute: []*onnx.AttributeProto{onnx.IntAttr("axis", 1)}})
		h.Output = p
	}
	g.Output = []*onnx.ValueInfoProto{{Name: h.Output}}
	return h, nil
}

// usedNames collects every tensor and node name in a graph.
func usedNames(g *onnx.GraphProto) map[string]bool {
	names := map[string]bool{}
	for _, in := range g.Input {
		names[in.Name] = true
	}
	for _, t := range g.Initializer {
		names[t.Name] = true
	}
	for _, n := range g.Node {
		names[n.Name] = true
		for _, o := range n.Output {
			names[o] = true
		}
	}
	return names
}

// PoolFeatures turns a 4-D cut into 2-D features (GlobalAveragePool and
// Flatten) for a feature extractor.
func PoolFeatures(mp *onnx.ModelProto, cut string, shape []int) (*Head, error) {
	names := usedNames(mp.Graph)
	pooled, feat := uniqueName(names, "graft/pooled"), uniqueName(names, "features")
	mp.Graph.Node = append(mp.Graph.Node,
		&onnx.NodeProto{Name: uniqueName(names, "graft/GlobalAveragePool"), OpType: "GlobalAveragePool", Input: []string{cut}, Output: []string{pooled}},
		&onnx.NodeProto{Name: uniqueName(names, "graft/Flatten"), OpType: "Flatten", Input: []string{pooled}, Output: []string{feat},
			Attribute: []*onnx.AttributeProto{onnx.IntAttr("axis", 1)}})
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
