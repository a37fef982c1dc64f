package onnx

import (
	"fmt"
	"strconv"
	"strings"
)

// checkStructure enforces the structural limits of lim on the graph and
// its subgraphs: node count, subgraph depth, attribute list sizes and
// string lengths. It walks the message without allocating in proportion
// to it (beyond the recursion, which the depth limit bounds).
func checkStructure(g *GraphProto, file string, lim Limits) error {
	s := structure{
		file:     file,
		maxNodes: orDefault(lim.MaxNodes, DefaultMaxNodes),
		maxDepth: orDefault(lim.MaxDepth, DefaultMaxDepth),
		maxElems: orDefault(lim.MaxAttrElems, DefaultMaxAttrElems),
		maxStr:   orDefault(lim.MaxStringLen, DefaultMaxStringLen),
	}
	return s.graph(g, "", 1)
}

type structure struct {
	file                                 string
	maxNodes, maxDepth, maxElems, maxStr int
	nodes                                int
}

func (s *structure) over(elem, format string, args ...any) error {
	return &FormatError{File: s.file, Elem: elem, Err: ErrOverLimit, Msg: fmt.Sprintf(format, args...)}
}

func (s *structure) str(elem, what string, v []byte) error {
	if len(v) > s.maxStr {
		return s.over(elem, "%s is %d bytes long, above the %d-byte limit", what, len(v), s.maxStr)
	}
	return nil
}

func (s *structure) strs(elem, what string, vs []string) error {
	if len(vs) > s.maxElems {
		return s.over(elem, "has %d %s, above the limit of %d", len(vs), what, s.maxElems)
	}
	for _, v := range vs {
		if len(v) > s.maxStr {
			return s.over(elem, "one of its %s is %d bytes long, above the %d-byte limit", what, len(v), s.maxStr)
		}
	}
	return nil
}

// graph checks g, a subgraph at the given depth when elem names the
// attribute holding it.
func (s *structure) graph(g *GraphProto, elem string, depth int) error {
	if depth > s.maxDepth {
		return s.over(elem, "subgraphs nest %d deep, above the limit of %d", depth, s.maxDepth)
	}
	s.nodes += len(g.Node)
	if s.nodes > s.maxNodes {
		return s.over(elem, "the model has more than %d nodes (with its subgraphs), above the limit of %d", s.nodes-1, s.maxNodes)
	}
	for _, list := range [][]*ValueInfoProto{g.Input, g.Output, g.ValueInfo} {
		for _, v := range list {
			if err := s.str(elem, "a value name", []byte(v.Name)); err != nil {
				return err
			}
		}
	}
	for _, t := range g.Initializer {
		if err := s.str(elem, "an initializer name", []byte(t.Name)); err != nil {
			return err
		}
	}
	for i, n := range g.Node {
		label := fmt.Sprintf("node #%d", i)
		if len(n.Name) <= s.maxStr && len(n.OpType) <= s.maxStr {
			label = NodeLabel(n, i)
		}
		if elem != "" {
			label = elem + ": " + label
		}
		for _, f := range []struct {
			what string
			v    string
		}{{"its name", n.Name}, {"its op type", n.OpType}, {"its domain", n.Domain}} {
			if err := s.str(label, f.what, []byte(f.v)); err != nil {
				return err
			}
		}
		if err := s.strs(label, "inputs", n.Input); err != nil {
			return err
		}
		if err := s.strs(label, "outputs", n.Output); err != nil {
			return err
		}
		if len(n.Attribute) > s.maxElems {
			return s.over(label, "has %d attributes, above the limit of %d", len(n.Attribute), s.maxElems)
		}
		for _, a := range n.Attribute {
			if err := s.attr(label, a, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *structure) attr(label string, a *AttributeProto, depth int) error {
	if err := s.str(label, "an attribute name", []byte(a.Name)); err != nil {
		return err
	}
	elem := fmt.Sprintf("%s attribute %q", label, a.Name)
	if err := s.str(elem, "its value", a.S); err != nil {
		return err
	}
	for _, n := range []int{len(a.Ints), len(a.Floats), len(a.Strings), len(a.Tensors), len(a.Graphs), len(a.SparseTensors), len(a.TypeProtos)} {
		if n > s.maxElems {
			return s.over(elem, "holds %d values, above the limit of %d", n, s.maxElems)
		}
	}
	for _, v := range a.Strings {
		if err := s.str(elem, "one of its strings", v); err != nil {
			return err
		}
	}
	if a.G != nil {
		if err := s.graph(a.G, elem, depth+1); err != nil {
			return err
		}
	}
	for _, g := range a.Graphs {
		if err := s.graph(g, elem, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// ParseSize reads a size in bytes written like 4GiB, 512MiB, 100MB or
// 100000 (KiB, MiB, GiB, TiB: powers of 1024; KB, MB, GB, TB: of 1000).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 4GiB)", s)
	}
	return int64(v * float64(mult)), nil
}
