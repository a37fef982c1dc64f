package surgery

import (
	"fmt"
	"math"
	"slices"

	"github.com/graftml/graft/onnx"
)

// FoldBatchNorm folds every inference-mode BatchNormalization whose input
// is the output of a Conv (any group) or a Gemm (transB 0 or 1) that
// feeds only it, with weights, bias and the BN's four tensors all float32
// initializers, into that Conv or Gemm:
//
//	s  = scale / sqrt(var + epsilon)
//	W' = W * s           (per output channel: Conv's first axis, Gemm's column of op(B))
//	b' = (b - mean) * s + beta
//
// The folded node takes the BatchNormalization's output name, so tensors
// downstream keep their names; the producer's old output name disappears.
// A weight shared with another node is copied rather than changed in
// place. BatchNormalizations it cannot fold (training mode, spatial=0,
// another producer, weights that are graph inputs) stay as they are. It
// returns the number folded.
func FoldBatchNorm(mp *onnx.ModelProto) (int, error) {
	g := mp.Graph
	inits := map[string]int{}
	for i, t := range g.Initializer {
		inits[t.Name] = i
	}
	consumers := map[string]int{}
	for _, n := range g.Node {
		for _, in := range n.Input {
			consumers[in]++
		}
	}
	outputs := map[string]bool{}
	for _, o := range g.Output {
		outputs[o.Name] = true
	}
	producer := map[string]*onnx.NodeProto{}
	for _, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	names := usedNames(g)
	floatInit := func(name string) (*onnx.Tensor, bool) {
		i, ok := inits[name]
		if !ok {
			return nil, false
		}
		t, err := onnx.TensorFromProto(g.Initializer[i])
		if err != nil || t.DType != onnx.Float32 || g.Initializer[i].DataType != 1 {
			return nil, false
		}
		return t, true
	}
	// setInit replaces initializer name with t for node n's input slot,
	// copying it under a new name when another node also reads it.
	setInit := func(n *onnx.NodeProto, slot int, t *onnx.Tensor) {
		name := n.Input[slot]
		if consumers[name] > 1 {
			name = uniqueName(names, name+"_bnfolded")
			names[name] = true
			consumers[n.Input[slot]]--
			consumers[name] = 1
			n.Input[slot] = name
			t.Name = name
			g.Initializer = append(g.Initializer, t.ToProto())
			inits[name] = len(g.Initializer) - 1
			return
		}
		t.Name = name
		np := t.ToProto()
		np.DocString = g.Initializer[inits[name]].DocString
		g.Initializer[inits[name]] = np
	}
	folded := 0
	removed := map[*onnx.NodeProto]bool{}
	for _, bn := range g.Node {
		if bn.OpType != "BatchNormalization" || len(bn.Input) != 5 || len(bn.Output) == 0 {
			continue
		}
		if attrInt(bn, "training_mode", 0) != 0 || attrInt(bn, "spatial", 1) == 0 {
			continue
		}
		extraUsed := false
		for _, o := range bn.Output[1:] {
			if o != "" && (consumers[o] > 0 || outputs[o]) {
				extraUsed = true
			}
		}
		if extraUsed {
			continue
		}
		x := bn.Input[0]
		p := producer[x]
		if p == nil || removed[p] || consumers[x] != 1 || outputs[x] || len(p.Output) != 1 {
			continue
		}
		var bnT [4]*onnx.Tensor
		ok := true
		for i := range bnT {
			if bnT[i], ok = floatInit(bn.Input[i+1]); !ok {
				break
			}
		}
		if !ok {
			continue
		}
		eps := float64(attrFloat(bn, "epsilon", 1e-5))
		c := len(bnT[0].F)
		if len(bnT[1].F) != c || len(bnT[2].F) != c || len(bnT[3].F) != c {
			continue
		}
		s := make([]float64, c)
		for i := range s {
			s[i] = float64(bnT[0].F[i]) / math.Sqrt(float64(bnT[3].F[i])+eps)
		}
		// bias'[i] = (bias[i] - mean[i]) * s[i] + beta[i]
		newBias := func(bias []float32) *onnx.Tensor {
			b := onnx.NewFloat([]int{c}, nil)
			for i := range b.F {
				v := 0.0
				if bias != nil {
					v = float64(bias[i])
				}
				b.F[i] = float32((v-float64(bnT[2].F[i]))*s[i] + float64(bnT[1].F[i]))
			}
			return b
		}
		switch p.OpType {
		case "Conv":
			if len(p.Input) < 2 {
				continue
			}
			w, ok := floatInit(p.Input[1])
			if !ok || len(w.Shape) < 3 || w.Shape[0] != c {
				continue
			}
			var bias []float32
			if len(p.Input) > 2 && p.Input[2] != "" {
				b, ok := floatInit(p.Input[2])
				if !ok || len(b.F) != c {
					continue
				}
				bias = b.F
			}
			per := len(w.F) / c
			nw := w.Clone()
			for oc := 0; oc < c; oc++ {
				for j := range per {
					nw.F[oc*per+j] = float32(float64(w.F[oc*per+j]) * s[oc])
				}
			}
			setInit(p, 1, nw)
			nb := newBias(bias)
			if len(p.Input) > 2 && p.Input[2] != "" {
				setInit(p, 2, nb)
			} else {
				name := uniqueName(names, p.Output[0]+"_bias")
				names[name] = true
				nb.Name = name
				g.Initializer = append(g.Initializer, nb.ToProto())
				inits[name] = len(g.Initializer) - 1
				consumers[name] = 1
				p.Input = append(p.Input[:2], name)
			}
		case "Gemm":
			if len(p.Input) < 2 || attrInt(p, "transA", 0) > 1 {
				continue
			}
			transB := attrInt(p, "transB", 0) != 0
			w, ok := floatInit(p.Input[1])
			if !ok || len(w.Shape) != 2 {
				continue
			}
			k, n := w.Shape[0], w.Shape[1]
			if transB {
				n, k = k, n
			}
			if n != c {
				continue
			}
			// The bias C must broadcast per output column: [N], [1,N] or a scalar.
			beta := float64(attrFloat(p, "beta", 1))
			var bias []float32
			if len(p.Input) > 2 && p.Input[2] != "" {
				b, ok := floatInit(p.Input[2])
				if !ok {
					continue
				}
				switch {
				case len(b.F) == c && (len(b.Shape) == 1 || len(b.Shape) == 2 && b.Shape[0] == 1):
					bias = make([]float32, c)
					for i, v := range b.F {
						bias[i] = float32(beta * float64(v))
					}
				case len(b.F) == 1:
					bias = make([]float32, c)
					for i := range bias {
						bias[i] = float32(beta * float64(b.F[0]))
					}
				default:
					continue
				}
			}
			nw := w.Clone()
			for r := 0; r < w.Shape[0]; r++ {
				for col := 0; col < w.Shape[1]; col++ {
					oc := col
					if transB {
						oc = r
					}
					i := r*w.Shape[1] + col
					nw.F[i] = float32(float64(w.F[i]) * s[oc])
				}
			}
			setInit(p, 1, nw)
			nb := newBias(bias)
			if len(p.Input) > 2 && p.Input[2] != "" && consumers[p.Input[2]] == 1 {
				// replace in place, keeping the name, with the folded shape [N]
				nb.Name = p.Input[2]
				np := nb.ToProto()
				g.Initializer[inits[p.Input[2]]] = np
			} else {
				if len(p.Input) > 2 && p.Input[2] != "" {
					consumers[p.Input[2]]--
				}
				name := uniqueName(names, p.Output[0]+"_bias")
				names[name] = true
				nb.Name = name
				g.Initializer = append(g.Initializer, nb.ToProto())
				inits[name] = len(g.Initializer) - 1
				consumers[name] = 1
				p.Input = append(p.Input[:2], name)
			}
			setAttrFloat(p, "beta", 1)
		default:
			continue
		}
		p.Output[0] = bn.Output[0]
		producer[bn.Output[0]] = p
		delete(producer, x)
		removed[bn] = true
		for _, in := range bn.Input {
			consumers[in]--
		}
		folded++
	}
	if folded == 0 {
		return 0, nil
	}
	g.Node = slices.DeleteFunc(g.Node, func(n *onnx.NodeProto) bool { return removed[n] })
	dropUnusedInitializers(mp)
	// value_info of the old producer outputs describe tensors that are gone
	var kvi []*onnx.ValueInfoProto
	defined := map[string]bool{}
	for _, n := range g.Node {
		for _, o := range n.Output {
			defined[o] = true
		}
	}
	for _, vi := range g.ValueInfo {
		if defined[vi.Name] {
			kvi = append(kvi, vi)
		}
	}
	g.ValueInfo = kvi
	if err := checkDefined(g); err != nil {
		return 0, fmt.Errorf("folding BatchNormalization: %w", err)
	}
	return folded, nil
}

// dropUnusedInitializers removes initializers no node reads (and, for old
// IR versions, their graph inputs).
func dropUnusedInitializers(mp *onnx.ModelProto) {
	g := mp.Graph
	used := map[string]bool{}
	for _, n := range g.Node {
		for _, in := range n.Input {
			used[in] = true
		}
	}
	for _, o := range g.Output {
		used[o.Name] = true
	}
	dropped := map[string]bool{}
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnx.TensorProto) bool {
		if !used[t.Name] {
			dropped[t.Name] = true
			return true
		}
		return false
	})
	g.Input = slices.DeleteFunc(g.Input, func(vi *onnx.ValueInfoProto) bool { return dropped[vi.Name] })
}

// checkDefined checks that every node input and graph output names a
// graph input, an initializer or an earlier node's output.
func checkDefined(g *onnx.GraphProto) error {
	have := map[string]bool{"": true}
	for _, in := range g.Input {
		have[in.Name] = true
	}
	for _, t := range g.Initializer {
		have[t.Name] = true
	}
	for i, n := range g.Node {
		for _, in := range n.Input {
			if !have[in] {
				return fmt.Errorf("node %s reads %q, which nothing defines before it", onnx.NodeLabel(n, i), in)
			}
		}
		for _, o := range n.Output {
			have[o] = true
		}
	}
	for _, o := range g.Output {
		if !have[o.Name] {
			return fmt.Errorf("graph output %q is not defined", o.Name)
		}
	}
	return nil
}

func attrInt(n *onnx.NodeProto, name string, def int64) int64 {
	for _, a := range n.Attribute {
		if a.Name == name {
			return a.I
		}
	}
	return def
}

func attrFloat(n *onnx.NodeProto, name string, def float32) float32 {
	for _, a := range n.Attribute {
		if a.Name == name {
			return a.F
		}
	}
	return def
}

func setAttrFloat(n *onnx.NodeProto, name string, v float32) {
	for _, a := range n.Attribute {
		if a.Name == name {
			a.F = v
			return
		}
	}
	n.Attribute = append(n.Attribute, &onnx.AttributeProto{Name: name, Type: onnx.AttrFloat, F: v})
}
