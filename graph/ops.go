package graph

import (
	"slices"
	"strings"
)

// opDef is everything graft knows about one ONNX op: how to build it, in
// which opsets, and the roles other code asks about. Adding an op means
// adding one opDef to its family's table, its kernel and its tests.
type opDef struct {
	// build adds the node to the graph being built (reading attributes,
	// checking shapes, making the kernel).
	build func(*nodeCtx) error
	// train replaces build in training builds (BuildTraining); nil means
	// build serves both. Dropout draws random masks only here.
	train func(*nodeCtx) error
	// since and until bound the default-domain opsets in which graft
	// reads the op; zero means MinOpset and MaxOpset.
	since, until int
	// grad says whether its data-carrying kernels have gradients.
	grad bool
	// weights lists the inputs that hold a layer's weights (Conv's W and
	// B): package onnx/surgery lists these ops as layers for freezing.
	weights []int
	// passThrough marks ops that may follow a classifier without changing
	// which class wins: onnx/surgery's FindCut looks through them.
	passThrough bool
	// optionalOutputs lists outputs graft may leave uncomputed
	// (training-only outputs such as Dropout's mask).
	optionalOutputs []int
	// family is the file the op lives in; zero means the family table's.
	family string
}

// builder returns the function that builds the op in a training build
// (training true) or an inference build.
func (d opDef) builder(training bool) func(*nodeCtx) error {
	if training && d.train != nil {
		return d.train
	}
	return d.build
}

// reads reports whether graft reads the op in a model of the given
// opset. Opsets above MaxOpset count as read: Build rejects such models
// whole, with a clearer error than one per node.
func (d opDef) reads(opset int) bool {
	return opset >= d.since && (opset <= d.until || opset > MaxOpset)
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
	"index":       indexOps,
	"resize":      resizeOps,
	"logic":       logicOps,
	"instnorm":    instNormOps,
	"quant":       quantOps,
	"scan":        scanOps,
})

func mergeOps(families map[string]map[string]opDef) map[string]opDef {
	t := map[string]opDef{}
	for fam, f := range families {
		for k, v := range f {
			if v.since == 0 {
				v.since = MinOpset
			}
			if v.until == 0 {
				v.until = MaxOpset
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
		out = append(out, OpInfo{Op: name, Family: d.family, MinOpset: d.since, MaxOpset: d.until, Gradient: d.grad})
	}
	slices.SortFunc(out, func(a, b OpInfo) int {
		if c := strings.Compare(a.Family, b.Family); c != 0 {
			return c
		}
		return strings.Compare(a.Op, b.Op)
	})
	return out
}
