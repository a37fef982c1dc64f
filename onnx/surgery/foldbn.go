package surgery

import (
	"fmt"
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
	"google.golang.org/protobuf/proto"
)

// FoldBatchNorm folds each inference-mode BatchNormalization whose input
// comes straight from a Conv or a Gemm into that node's weights and
// bias, for frozen inference. With s = scale/sqrt(var+eps) per output
// channel:
//
//	W' = W*s    b' = (b-mean)*s + B
//
// The Conv or Gemm then writes the BatchNormalization's output tensor and
// the BatchNormalization node goes away. A pair is folded only when the
// tensor between them has no other reader, is not a graph output and is
// not named in keep, and when every weight and statistic is an
// initializer or a Constant node's value (not a graph input). A weight
// that other nodes also read is left alone and the folded copy gets a
// new name; initializers and Constants nothing reads any more are
// removed.
//
// It changes mp's graph, but never a TensorProto or NodeProto it holds:
// changed ones are replaced by new objects, so a shallow copy of the
// graph (new Node and Initializer slices) can be folded while the
// original model stays as it was. It returns the number of folds.
func FoldBatchNorm(mp *onnx.ModelProto, keep ...string) (int, error) {
	g := mp.GetGraph()
	if g == nil {
		return 0, nil
	}
	f := &folder{g: g, uses: map[string]int{}, inits: map[string]int{}, consts: map[string]int{}, inputs: map[string]bool{}, freed: map[string]bool{}}
	for _, in := range g.Input {
		f.inputs[in.Name] = true
	}
	for _, name := range keep {
		f.uses[name]++
	}
	for _, o := range g.Output {
		f.uses[o.Name]++
	}
	for i, t := range g.Initializer {
		f.inits[t.Name] = i
	}
	producer := map[string]int{}
	for i, n := range g.Node {
		for _, in := range n.Input {
			f.uses[in]++
		}
		for _, o := range n.Output {
			producer[o] = i
		}
		if n.OpType == "Constant" && len(n.Output) == 1 && len(n.Attribute) == 1 && n.Attribute[0].Name == "value" && n.Attribute[0].T != nil {
			f.consts[n.Output[0]] = i
		}
	}
	drop := map[int]bool{} // BatchNormalization nodes folded away
	folded := 0
	for i, bn := range g.Node {
		if bn.OpType != "BatchNormalization" || len(bn.Input) != 5 || slices.ContainsFunc(bn.Output[1:], func(s string) bool { return s != "" }) {
			continue
		}
		if attrInt(bn, "training_mode", 0) != 0 || attrInt(bn, "spatial", 1) != 1 {
			continue
		}
		x := bn.Input[0]
		p, ok := producer[x]
		if !ok || f.uses[x] != 1 || drop[p] {
			continue
		}
		layer := g.Node[p]
		if (layer.OpType != "Conv" && layer.OpType != "Gemm") || len(layer.Output) != 1 || layer.Domain != "" {
			continue
		}
		ok, err := f.fold(layer, p, bn)
		if err != nil {
			return folded, fmt.Errorf("folding %s into %s: %w", onnx.NodeLabel(bn, i), onnx.NodeLabel(layer, p), err)
		}
		if ok {
			drop[i] = true
			folded++
		}
	}
	if folded == 0 {
		return 0, nil
	}
	nodes := g.Node[:0:0]
	for i, n := range g.Node {
		if drop[i] {
			continue
		}
		if len(n.Output) == 1 && n.OpType == "Constant" && f.freed[n.Output[0]] && f.uses[n.Output[0]] == 0 {
			continue
		}
		nodes = append(nodes, n)
	}
	g.Node = nodes
	inits := g.Initializer[:0:0]
	for _, t := range g.Initializer {
		if !f.freed[t.Name] || f.uses[t.Name] > 0 || f.inputs[t.Name] {
			inits = append(inits, t)
		}
	}
	g.Initializer = append(inits, f.added...)
	return folded, nil
}

type folder struct {
	g      *onnx.GraphProto
	uses   map[string]int // readers of each tensor (nodes, graph outputs, keep)
	inits  map[string]int // initializer index by name
	consts map[string]int // Constant node index by output
	inputs map[string]bool
	added  []*onnx.TensorProto
	freed  map[string]bool // tensors whose last reader a fold removed
}

// tensor returns the float value of a weight: an initializer or a
// Constant's, never a graph input (a caller could feed another value).
func (f *folder) tensor(name string) (*onnx.Tensor, bool, error) {
	if name == "" || f.inputs[name] {
		return nil, false, nil
	}
	var tp *onnx.TensorProto
	if i, ok := f.inits[name]; ok {
		tp = f.g.Initializer[i]
	} else if i, ok := f.consts[name]; ok {
		tp = f.g.Node[i].Attribute[0].T
	} else {
		return nil, false, nil
	}
	t, err := onnx.TensorFromProto(tp)
	if err != nil {
		return nil, false, fmt.Errorf("tensor %q: %w", name, err)
	}
	if t.DType != onnx.Float32 {
		return nil, false, nil
	}
	return t, true, nil
}

// fold folds bn into layer (node p) when it can.
func (f *folder) fold(layer *onnx.NodeProto, p int, bn *onnx.NodeProto) (bool, error) {
	var ps [4][]float32 // scale, B, mean, var
	for j := range ps {
		t, ok, err := f.tensor(bn.Input[1+j])
		if err != nil || !ok {
			return false, err
		}
		ps[j] = t.F
	}
	c := len(ps[0])
	for _, v := range ps[1:] {
		if len(v) != c {
			return false, nil
		}
	}
	w, ok, err := f.tensor(layer.Input[1])
	if err != nil || !ok {
		return false, err
	}
	eps := float64(attrFloat(bn, "epsilon", 1e-5))
	s := make([]float64, c)
	shift := make([]float64, c) // B - mean*s
	for ch := range s {
		s[ch] = float64(ps[0][ch]) / math.Sqrt(float64(ps[3][ch])+eps)
		shift[ch] = float64(ps[1][ch]) - float64(ps[2][ch])*s[ch]
	}
	var bias *onnx.Tensor // the layer's, or nil
	if len(layer.Input) > 2 && layer.Input[2] != "" {
		if bias, ok, err = f.tensor(layer.Input[2]); err != nil || !ok {
			return false, err
		}
	}
	nb := make([]float32, c)
	nw := w.Clone()
	switch layer.OpType {
	case "Conv":
		if len(w.Shape) < 3 || w.Shape[0] != c || (bias != nil && len(bias.F) != c) {
			return false, nil
		}
		per := len(w.F) / c
		for ch := 0; ch < c; ch++ {
			for j := ch * per; j < (ch+1)*per; j++ {
				nw.F[j] = float32(float64(w.F[j]) * s[ch])
			}
			b := 0.0
			if bias != nil {
				b = float64(bias.F[ch])
			}
			nb[ch] = float32(b*s[ch] + shift[ch])
		}
	case "Gemm":
		// Y = alpha*A*B + beta*C: scale B's output columns, and make
		// beta*C' = s*beta*C + shift.
		beta := float64(attrFloat(layer, "beta", 1))
		// C: one value per output column ([N] or [1,N]), or one for all
		if len(w.Shape) != 2 || beta == 0 || (bias != nil && len(bias.F) != c && len(bias.F) != 1) {
			return false, nil
		}
		if bias != nil && len(bias.F) == c && !(len(bias.Shape) == 1 || (len(bias.Shape) == 2 && bias.Shape[0] == 1)) {
			return false, nil
		}
		transB := attrInt(layer, "transB", 0) != 0
		rows, cols := w.Shape[0], w.Shape[1]
		if (transB && rows != c) || (!transB && cols != c) {
			return false, nil
		}
		for r := 0; r < rows; r++ {
			for q := 0; q < cols; q++ {
				ch := q
				if transB {
					ch = r
				}
				nw.F[r*cols+q] = float32(float64(w.F[r*cols+q]) * s[ch])
			}
		}
		for ch := range nb {
			b := 0.0
			switch {
			case bias != nil && len(bias.F) == 1:
				b = float64(bias.F[0])
			case bias != nil:
				b = float64(bias.F[ch])
			}
			nb[ch] = float32(b*s[ch] + shift[ch]/beta)
		}
	default:
		return false, nil
	}
	nl := proto.Clone(layer).(*onnx.NodeProto)
	nl.Input = slices.Clone(layer.Input)
	for len(nl.Input) < 3 {
		nl.Input = append(nl.Input, "")
	}
	nl.Input[1] = f.put(layer.Input[1], nw)
	biasName := bn.Output[0] + "_bias"
	if bias != nil {
		biasName = layer.Input[2]
	}
	nl.Input[2] = f.put(biasName, &onnx.Tensor{DType: onnx.Float32, Shape: []int{c}, F: nb})
	nl.Output = []string{bn.Output[0]}
	f.g.Node[p] = nl
	for _, in := range append(slices.Clone(layer.Input), bn.Input...) {
		if f.uses[in]--; f.uses[in] == 0 {
			f.freed[in] = true
		}
	}
	for _, in := range nl.Input {
		f.uses[in]++
	}
	return true, nil
}

// put stores the folded value of tensor old (a weight the layer read,
// or the name to base a new bias on) and returns its name: old itself
// when only the layer reads it and it is an initializer, else a new name.
func (f *folder) put(old string, t *onnx.Tensor) string {
	if i, ok := f.inits[old]; ok && i >= 0 && f.uses[old] == 1 {
		tp := t.ToProto()
		tp.Name = old
		f.g.Initializer[i] = tp
		return old
	}
	name := old
	if f.taken(name) {
		name = old + "_bnfold"
	}
	for k := 2; f.taken(name); k++ {
		name = fmt.Sprintf("%s_bnfold%d", old, k)
	}
	tp := t.ToProto()
	tp.Name = name
	f.added = append(f.added, tp)
	f.inits[name] = -1 // taken (added at the end)
	return name
}

func (f *folder) taken(name string) bool {
	if _, ok := f.inits[name]; ok {
		return true
	}
	if f.uses[name] > 0 || f.inputs[name] {
		return true
	}
	for _, n := range f.g.Node {
		if slices.Contains(n.Output, name) {
			return true
		}
	}
	return false
}

func attrInt(n *onnx.NodeProto, name string, def int64) int64 {
	for _, a := range n.Attribute {
		if a.Name == name && a.Type == onnx.AttrInt {
			return a.I
		}
	}
	return def
}

func attrFloat(n *onnx.NodeProto, name string, def float32) float32 {
	for _, a := range n.Attribute {
		if a.Name == name && a.Type == onnx.AttrFloat {
			return a.F
		}
	}
	return def
}
