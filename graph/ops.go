package graph

import (
	"slices"
	"strings"
)

// opDef describes how graft builds one ONNX op.
type opDef struct {
	build  func(*nodeCtx) error
	since  int  // first default-domain opset in which graft reads the op
	grad   bool // whether its data-carrying kernels have gradients
	family string
}

// opTable is the op table: every ONNX op graft reads, grouped by family.
// A node whose op is missing here is reported by CheckOps before anything
// is built.
var opTable = mergeOps(map[string]map[string]opDef{
	"elementwise": elementwiseOps,
	"activation":  activationOps,
	"conv":        convOps,
	"pool":        poolOps,
	"norm":        normOps,
	"linalg":      linalgOps,
	"shape":       shapeOps,
	"reduce":      reduceOps,
})

func mergeOps(families map[string]map[string]opDef) map[string]opDef {
	t := map[string]opDef{}
	for fam, f := range families {
		for k, v := range f {
			if v.since == 0 {
				v.since = MinOpset
			}
			if v.family == "" {
				v.family = fam
			}
			t[k] = v
		}
	}
	return t
}

// OpInfo describes one supported op for `graft ops`.
type OpInfo struct {
	Op       string `json:"op"`
	Family   string `json:"family"`
	MinOpset int    `json:"min_opset"`
	MaxOpset int    `json:"max_opset"`
	Gradient bool   `json:"gradient"`
}

// Ops lists every op graft reads, sorted by family and name.
func Ops() []OpInfo {
	var out []OpInfo
	for name, d := range opTable {
		out = append(out, OpInfo{Op: name, Family: d.family, MinOpset: d.since, MaxOpset: MaxOpset, Gradient: d.grad})
	}
	slices.SortFunc(out, func(a, b OpInfo) int {
		if c := strings.Compare(a.Family, b.Family); c != 0 {
			return c
		}
		return strings.Compare(a.Op, b.Op)
	})
	return out
}
