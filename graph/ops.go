package graph

// opDef describes how graft builds one ONNX op.
type opDef struct {
	conv   func(*nodeCtx) error
	since  int  // first default-domain opset in which graft reads the op
	grad   bool // whether its data-carrying kernels have gradients
	family string
}

// opTable is the op table: every ONNX op graft reads, grouped by family.
// A node whose op is missing here is reported by CheckOps before anything
// is built.
var opTable = mergeOps(elementwiseOps, activationOps, convOps, poolOps, normOps, linalgOps, shapeOps, reduceOps)

func mergeOps(families ...map[string]opDef) map[string]opDef {
	t := map[string]opDef{}
	for _, f := range families {
		for k, v := range f {
			if v.since == 0 {
				v.since = MinOpset
			}
			t[k] = v
		}
	}
	return t
}
