package graph

import (
	"sort"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
)

// Report describes a model for `graft inspect`.
type Report struct {
	File        string         `json:"file"`
	Producer    string         `json:"producer"`
	IRVersion   int64          `json:"ir_version"`
	Opsets      map[string]int `json:"opsets"`
	Inputs      []TensorInfo   `json:"inputs"`
	Outputs     []TensorInfo   `json:"outputs"`
	Ops         map[string]int `json:"ops"`
	Params      int64          `json:"params"`
	ParamBytes  int64          `json:"param_bytes"`
	Nodes       []NodeInfo     `json:"nodes"`
	Unsupported []string       `json:"unsupported,omitempty"`
	// Cut is the suggested cut point: the tensor that feeds the final
	// classifier, and the classifier's nodes.
	Cut      *surgery.Cut      `json:"cut,omitempty"`
	CutError string            `json:"cut_error,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// BuildError says why shapes could not be computed, when they could not.
	BuildError string `json:"build_error,omitempty"`
	// ShapesAt gives the input shapes the node shapes were computed for
	// (symbolic dimensions bound), when they were.
	ShapesAt map[string][]int `json:"shapes_at,omitempty"`
}

// TensorInfo is a named tensor with its declared shape ("N" for a
// symbolic dim) and element type.
type TensorInfo struct {
	Name  string   `json:"name"`
	Shape []string `json:"shape"`
	Type  string   `json:"type"`
}

// NodeInfo is one row of the per-node table.
type NodeInfo struct {
	Name   string `json:"name"`
	Op     string `json:"op"`
	Output string `json:"output"`
	Shape  []int  `json:"shape,omitempty"` // at Report.ShapesAt; empty when unknown
	Params int64  `json:"params"`
}

// elemTypeName names an ONNX element type; "" when the type is not set.
func elemTypeName(t int32) string {
	if t == 0 {
		return ""
	}
	return onnx.ElemTypeName(t)
}

func describe(vi *onnx.ValueInfoProto) TensorInfo {
	ti := TensorInfo{Name: vi.Name}
	tt := vi.GetType().GetTensorType()
	ti.Type = elemTypeName(tt.GetElemType())
	ti.Shape = onnx.DimNames(tt.GetShape())
	return ti
}

// Inspect summarizes a model. It builds the graph (at opt.Batch, 1 when
// zero, with opt.Shapes binding symbolic input dimensions) to learn every
// node's output shape; when that fails (an unsupported op, an image size
// nothing binds) the report says why and leaves shapes out. Inputs and
// outputs are shown as declared, symbols included.
func Inspect(src *onnx.Model, opt Options) *Report {
	mp := src.Proto
	g := mp.Graph
	r := &Report{File: src.Path, Producer: mp.ProducerName, IRVersion: mp.IrVersion, Opsets: map[string]int{}, Ops: map[string]int{}}
	if mp.ProducerVersion != "" {
		r.Producer += " " + mp.ProducerVersion
	}
	for _, o := range mp.OpsetImport {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		r.Opsets[d] = int(o.Version)
	}
	for _, in := range src.Inputs() {
		r.Inputs = append(r.Inputs, describe(in))
	}
	for _, out := range g.Output {
		r.Outputs = append(r.Outputs, describe(out))
	}
	if len(mp.MetadataProps) > 0 {
		r.Metadata = map[string]string{}
		for _, p := range mp.MetadataProps {
			r.Metadata[p.Key] = p.Value
		}
	}
	sizes := map[string]int64{}
	for _, t := range g.Initializer {
		n := int64(1)
		for _, d := range t.Dims {
			n *= d
		}
		sizes[t.Name] = n
		r.Params += n
		r.ParamBytes += int64(len(t.RawData))
		if len(t.RawData) == 0 {
			r.ParamBytes += 4*int64(len(t.FloatData)+len(t.Int32Data)) + 8*int64(len(t.Int64Data)+len(t.DoubleData))
		}
	}
	// Weights stored as Constant nodes (paddle2onnx, tf2onnx) count like
	// initializers.
	for name, c := range surgery.ConstantWeights(mp) {
		if _, ok := sizes[name]; ok {
			continue
		}
		n := int64(1)
		for _, d := range c.Tensor.Dims {
			n *= d
		}
		sizes[name] = n
		r.Params += n
		r.ParamBytes += 4 * n
	}
	if err := CheckOps(src); err != nil {
		if ue, ok := err.(*UnsupportedOpsError); ok {
			r.Unsupported = ue.Nodes
		}
	}
	built, err := Build(src, Options{Freeze: true, Batch: opt.Batch, Shapes: opt.Shapes})
	if err != nil {
		r.BuildError = err.Error()
	} else {
		r.ShapesAt = map[string][]int{}
		for _, in := range built.Inputs {
			r.ShapesAt[in.Name] = in.Shape
		}
	}
	for _, n := range g.Node {
		r.Ops[n.OpType]++
		ni := NodeInfo{Name: n.Name, Op: n.OpType}
		if len(n.Output) > 0 {
			ni.Output = n.Output[0]
			if built != nil {
				ni.Shape, _ = built.Shape(n.Output[0])
			}
		}
		for _, in := range n.Input {
			ni.Params += sizes[in]
		}
		r.Nodes = append(r.Nodes, ni)
	}
	if cut, err := surgery.FindCut(src); err == nil {
		r.Cut = cut
	} else {
		r.CutError = err.Error()
	}
	return r
}

// OpNames returns the ops of a histogram in descending count order.
func OpNames(h map[string]int) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if h[names[i]] != h[names[j]] {
			return h[names[i]] > h[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}
