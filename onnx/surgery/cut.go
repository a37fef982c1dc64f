package surgery

import (
	"fmt"
	"strings"

	"github.com/graftml/graft/onnx"
)

// Cut is where a backbone ends and its classifier begins.
type Cut struct {
	// Tensor is the features tensor: the input of the final classifier.
	Tensor string `json:"tensor"`
	// Classifier names the node that does the classification (a Gemm, a
	// MatMul, or the 1x1 Conv before global pooling).
	Classifier string `json:"classifier"`
	// Kind is "gemm", "matmul" or "conv".
	Kind string `json:"kind"`
	// Removed lists the nodes a new head replaces: every node computed
	// from Tensor (by name, or "#index" for unnamed nodes).
	Removed []string `json:"removed"`
}

// passThrough ops may follow a classifier without changing which class
// wins: probabilities, reshapes, identity.
var passThrough = map[string]bool{
	"Softmax": true, "LogSoftmax": true, "Identity": true, "Dropout": true,
	"Flatten": true, "Reshape": true, "Squeeze": true, "Relu": true,
	// the fake quantization of a quantized model's logits
	"QuantizeLinear": true, "DequantizeLinear": true,
}

// FindCut finds the final classifier of an image model: the last Gemm, or
// MatMul (with an Add of a bias), or a 1x1 Conv followed by global pooling
// as in SqueezeNet. The cut tensor is the classifier's data input.
func FindCut(src *onnx.Model) (*Cut, error) {
	g := src.Proto.Graph
	producer := map[string]int{}
	for i, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = i
		}
	}
	inits := weightTensors(src.Proto)
	isWeight := func(name string) bool { _, ok := inits[name]; return ok }
	cand := func() string {
		if c := CutCandidates(src); len(c) > 0 {
			return "one of: " + strings.Join(c, ", ")
		}
		return "any tensor the model computes (it has no pooling, flattening or Gemm nodes)"
	}
	if len(g.Output) == 0 {
		return nil, fmt.Errorf("%s: the model has no outputs", src.Path)
	}
	cur := g.Output[0].Name
	pooled := false
	for steps := 0; steps < len(g.Node)+1; steps++ {
		i, ok := producer[cur]
		if !ok {
			break
		}
		n := g.Node[i]
		switch {
		case n.OpType == "Gemm" && len(n.Input) >= 2 && isWeight(n.Input[1]):
			return newCut(src, n.Input[0], i, "gemm"), nil
		case n.OpType == "MatMul" && len(n.Input) == 2 && isWeight(n.Input[1]):
			return newCut(src, n.Input[0], i, "matmul"), nil
		case n.OpType == "Add" && len(n.Input) == 2 && (isWeight(n.Input[0]) || isWeight(n.Input[1])):
			other := n.Input[0]
			if isWeight(other) {
				other = n.Input[1]
			}
			cur = other
			continue
		case n.OpType == "GlobalAveragePool" || n.OpType == "ReduceMean" || n.OpType == "AveragePool":
			pooled = true
			cur = n.Input[0]
			continue
		case n.OpType == "Conv" && pooled && len(n.Input) >= 2 && isWeight(n.Input[1]):
			w := inits[n.Input[1]]
			if len(w.Dims) == 4 && w.Dims[2] == 1 && w.Dims[3] == 1 {
				return newCut(src, n.Input[0], i, "conv"), nil
			}
		case passThrough[n.OpType] && len(n.Input) > 0:
			cur = n.Input[0]
			continue
		}
		break
	}
	return nil, fmt.Errorf("%s: no final classifier found (a Gemm, MatMul, or 1x1 Conv before global pooling); name a cut tensor, %s", src.Path, cand())
}

func newCut(src *onnx.Model, tensor string, classifier int, kind string) *Cut {
	g := src.Proto.Graph
	c := &Cut{Tensor: tensor, Kind: kind, Classifier: nodeName(g.Node[classifier], classifier)}
	for _, i := range Downstream(src, tensor) {
		c.Removed = append(c.Removed, nodeName(g.Node[i], i))
	}
	return c
}

func nodeName(n *onnx.NodeProto, i int) string {
	if n.Name != "" {
		return n.Name
	}
	return fmt.Sprintf("#%d", i)
}

// Downstream returns the indices of the nodes computed, directly or not,
// from tensor.
func Downstream(src *onnx.Model, tensor string) []int {
	tainted := map[string]bool{tensor: true}
	var out []int
	for i, n := range src.Proto.Graph.Node {
		hit := false
		for _, in := range n.Input {
			if tainted[in] {
				hit = true
			}
		}
		if hit {
			out = append(out, i)
			for _, o := range n.Output {
				tainted[o] = true
			}
		}
	}
	return out
}

// CutCandidates lists tensors that make sensible cut points: outputs of
// pooling, flattening and reshaping nodes, and the data inputs of Gemm and
// MatMul nodes, in graph order.
func CutCandidates(src *onnx.Model) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range src.Proto.Graph.Node {
		switch n.OpType {
		case "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "ReduceMean", "AveragePool":
			if len(n.Output) > 0 {
				add(n.Output[0])
			}
		case "Gemm", "MatMul":
			if len(n.Input) > 0 {
				add(n.Input[0])
			}
		}
	}
	return out
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
