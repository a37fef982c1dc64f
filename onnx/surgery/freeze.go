package surgery

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/graftml/graft/onnx"
)

// weightedOps are the ops whose initializer inputs count as a layer's
// weights for freezing selectors.
var weightedOps = map[string]bool{
	"Conv": true, "Gemm": true, "MatMul": true, "BatchNormalization": true,
	"LayerNormalization": true, "PRelu": true, "ConvTranspose": true,
	"InstanceNormalization": true, "GroupNormalization": true,
}

// Layer is a node with weights.
type Layer struct {
	Node      string   `json:"node"`
	Op        string   `json:"op"`
	Params    []string `json:"params"`
	NumParams int64    `json:"num_params"`
}

// Layers lists the layers of mp that compute cut (all layers when cut is
// empty), in topological order. A layer's weights are its float
// initializers and Constant weights (see ConstantWeights); the bias or
// scale of an Add or Mul right after a MatMul, Gemm or Conv joins that
// node's layer. Integer initializers (shapes) are not weights.
func Layers(mp *onnx.ModelProto, cut string) []Layer {
	g := mp.Graph
	weights := weightTensors(mp)
	constW := ConstantWeights(mp)
	upstream := map[int]bool{}
	if cut != "" {
		need := map[string]bool{cut: true}
		for i := len(g.Node) - 1; i >= 0; i-- {
			n := g.Node[i]
			for _, o := range n.Output {
				if need[o] {
					upstream[i] = true
				}
			}
			if upstream[i] {
				for _, in := range n.Input {
					need[in] = true
				}
			}
		}
	}
	quant := QuantizedWeights(mp)
	isWeight := func(name string) (*onnx.TensorProto, bool) {
		t, ok := weights[name]
		_, q := quant[name]
		return t, ok && (isFloatType(t.DataType) || q)
	}
	var out []Layer
	layerOf := map[string]int{} // output of a layer's node -> index in out
	producer := map[string]string{}
	for i, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n.OpType
		}
		if cut != "" && !upstream[i] {
			continue
		}
		if (n.OpType == "Add" || n.OpType == "Mul") && len(n.Input) == 2 {
			for j, in := range n.Input {
				t, ok := isWeight(in)
				other := n.Input[1-j]
				if !ok || !biasAfter[producer[other]] {
					continue
				}
				if _, isConst := constW[in]; !isConst {
					if _, layered := layerOf[other]; !layered {
						continue // an initializer bias after a node without weights is not a layer (as before)
					}
				}
				li, ok := layerOf[other]
				if !ok {
					out = append(out, Layer{Node: nodeName(n, i), Op: n.OpType})
					li = len(out) - 1
				}
				out[li].Params = append(out[li].Params, in)
				out[li].NumParams += numElems(t)
				if len(n.Output) > 0 {
					layerOf[n.Output[0]] = li
				}
			}
			continue
		}
		if !weightedOps[n.OpType] {
			continue
		}
		l := Layer{Node: nodeName(n, i), Op: n.OpType}
		inputs := n.Input
		if n.OpType == "BatchNormalization" && len(inputs) > 3 {
			// the running mean and var are statistics, not weights
			inputs = inputs[:3]
		}
		for _, in := range inputs {
			t, ok := isWeight(in)
			if !ok {
				continue
			}
			l.Params = append(l.Params, in)
			l.NumParams += numElems(t)
		}
		if len(l.Params) > 0 {
			out = append(out, l)
			if len(n.Output) > 0 {
				layerOf[n.Output[0]] = len(out) - 1
			}
		}
	}
	return out
}

func numElems(t *onnx.TensorProto) int64 {
	c := int64(1)
	for _, d := range t.Dims {
		c *= d
	}
	return c
}

// SelectTrainable returns the backbone weights made trainable by a regular
// expression over initializer or node names and by unfreezing the last k
// layers. A selector that selects nothing is an error.
func SelectTrainable(layers []Layer, pattern string, lastK int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if lastK < 0 {
		return nil, fmt.Errorf("unfreezing the last %d layers: the count must not be negative", lastK)
	}
	if lastK > len(layers) {
		return nil, fmt.Errorf("unfreezing the last %d layers: the backbone has only %d layers with weights before the cut", lastK, len(layers))
	}
	if pattern != "" {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("trainable pattern: %w", err)
		}
		n := len(out)
		for _, l := range layers {
			nodeHit := re.MatchString(l.Node)
			for _, p := range l.Params {
				if nodeHit || re.MatchString(p) {
					add(p)
				}
			}
		}
		if len(out) == n {
			var names []string
			for i, l := range layers {
				if i >= 5 {
					break
				}
				names = append(names, fmt.Sprintf("%s (%s)", l.Node, strings.Join(l.Params, ", ")))
			}
			return nil, fmt.Errorf("trainable pattern %q selects no weight; layers are named like: %s", pattern, strings.Join(names, "; "))
		}
	}
	for _, l := range layers[len(layers)-lastK:] {
		for _, p := range l.Params {
			add(p)
		}
	}
	return out, nil
}

// Frontier returns the tensors where the frozen part of a model ends for
// the given trainable weights: the tensors computed from the model's
// inputs by frozen layers only that a node depending on a trainable
// weight reads. When nothing before them trains and no augmentation
// changes the inputs, their values are fixed per image, so training can
// start from them.
func Frontier(mp *onnx.ModelProto, trainable []string) []string {
	g := mp.Graph
	inits := map[string]bool{}
	for _, t := range g.Initializer {
		inits[t.Name] = true
	}
	dyn := map[string]bool{}
	for _, in := range g.Input {
		if !inits[in.Name] {
			dyn[in.Name] = true
		}
	}
	tainted := map[string]bool{}
	for _, p := range trainable {
		tainted[p] = true
	}
	var front []string
	seen := map[string]bool{}
	for _, n := range g.Node {
		isT, isD := false, false
		for _, in := range n.Input {
			isT = isT || tainted[in]
			isD = isD || dyn[in]
		}
		if isT {
			for _, in := range n.Input {
				if in != "" && dyn[in] && !tainted[in] && !seen[in] {
					seen[in] = true
					front = append(front, in)
				}
			}
		}
		for _, o := range n.Output {
			tainted[o] = tainted[o] || isT
			dyn[o] = dyn[o] || isD
		}
	}
	return front
}
