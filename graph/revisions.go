package graph

// onnxRevisions records, for every op graft reads, the default-domain
// opsets after 17 (up to MaxOpset) at which ONNX revised the op's
// definition, as onnx/defs/operator_sets.h lists them; nil means no
// revision. It is the audit behind MaxOpset: an op's entry in the op
// table reads the op up to its until bound, so an op revised at an opset
// graft does not interpret must end there (or be read both ways).
// TestOpRevisionsAudited requires an entry here for every op in the op
// table, and TestOpsetRevisionCases a test case in opset18_test.go for
// every revision graft reads. Entries may precede the op's addition.
//
// What changed (ONNX Changelog.md):
//   - 18: Reduce* (but ReduceSum, already at 13) take axes as input 1 and
//     gain noop_with_empty_axes; Pad gains the axes input; Resize gains
//     antialias, axes and keep_aspect_ratio_policy; Split gains
//     num_outputs; ScatterElements and ScatterND gain reduction max/min.
//   - 19: AveragePool gains dilations; Pad gains mode wrap; Resize gains
//     coordinate_transformation_mode half_pixel_symmetric; Cast (and its
//     saturate attribute), Constant, Identity, Reshape, Shape, Size take
//     float8 types; Equal takes string.
//   - 20: IsInf and IsNaN take float8; ReduceMax and ReduceMin take bool;
//     ConstantOfShape takes float8.
//   - 21: Cast, Constant, ConstantOfShape, Flatten, Identity, Pad,
//     Reshape, Shape, Size, Squeeze, Transpose, Unsqueeze take int4 and
//     uint4; GroupNormalization's scale and bias become per channel.
//
// Revisions that only add element types need no change in graft: float8,
// int4, uint4 and string tensors are refused by name where they enter
// (initializers, Constant values, graph inputs, Cast targets).
var onnxRevisions = map[string][]int{
	// revised
	"AveragePool":     {19},
	"Cast":            {19, 21},
	"Constant":        {19, 21},
	"ConstantOfShape": {20, 21},
	"Equal":           {19},
	"Flatten":         {21},
	"Identity":        {19, 21},
	"IsInf":           {20},
	"IsNaN":           {20},
	"Pad":             {18, 19, 21},
	"ReduceL1":        {18},
	"ReduceL2":        {18},
	"ReduceLogSum":    {18},
	"ReduceLogSumExp": {18},
	"ReduceMax":       {18, 20},
	"ReduceMean":      {18},
	"ReduceMin":       {18, 20},
	"ReduceProd":      {18},
	"ReduceSumSquare": {18},
	"Reshape":         {19, 21},
	"Resize":          {18, 19},
	"Shape":           {19, 21},
	"Size":            {19, 21},
	"Split":           {18},
	"Squeeze":         {21},
	"Transpose":       {21},
	"Unsqueeze":       {21},
	// new in 18 to 21
	"Col2Im":             {18},
	"Gelu":               {20},
	"GroupNormalization": {18, 21},
	"Mish":               {18},
	// ops other branches add
	"ScatterElements":  {18},
	"ScatterND":        {18},
	"QuantizeLinear":   {19, 21},
	"DequantizeLinear": {19, 21},
	"ConvTranspose":    nil, "CumSum": nil, "Einsum": nil, "TopK": nil,
	"Scatter": nil, // deprecated at 11, read at 9 and 10 only
	// unchanged from 17 to 21
	"Abs": nil, "Add": nil, "And": nil, "ArgMax": nil, "ArgMin": nil, "BatchNormalization": nil,
	"Ceil": nil, "Clip": nil, "Concat": nil, "Conv": nil, "Cos": nil, "DepthToSpace": nil,
	"Div": nil, "Dropout": nil, "Elu": nil, "Erf": nil, "Exp": nil, "Expand": nil, "Floor": nil,
	"Gather": nil, "GatherElements": nil, "Gemm": nil, "GlobalAveragePool": nil,
	"GlobalMaxPool": nil, "Greater": nil, "GreaterOrEqual": nil, "HardSigmoid": nil,
	"HardSwish": nil, "Hardmax": nil, "InstanceNormalization": nil, "LRN": nil,
	"LayerNormalization": nil, "LeakyRelu": nil, "Less": nil, "LessOrEqual": nil, "Log": nil,
	"LogSoftmax": nil, "MatMul": nil, "Max": nil, "MaxPool": nil, "Mean": nil, "Min": nil,
	"Mod": nil, "Mul": nil, "Neg": nil, "Not": nil, "Or": nil, "PRelu": nil, "Pow": nil,
	"Range": nil, "Reciprocal": nil, "ReduceSum": nil, "Relu": nil, "Round": nil, "Selu": nil,
	"Sigmoid": nil, "Sign": nil, "Sin": nil, "Slice": nil, "Softmax": nil, "Softplus": nil,
	"Softsign": nil, "SpaceToDepth": nil, "Sqrt": nil, "Sub": nil, "Sum": nil, "Tanh": nil,
	"ThresholdedRelu": nil, "Tile": nil, "Trilu": nil, "Upsample": nil, "Where": nil, "Xor": nil,
}
