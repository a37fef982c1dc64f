// Package native exports gorgonia graphs built with gorgonia's own API
// (not imported from ONNX by package graph) as ONNX models.
//
// ExportGorgonia walks the part of a gorgonia ExprGraph that computes the
// outputs a NativeExport names and writes it as an ONNX ModelProto at
// opset NativeOpset (13), float32. Input nodes listed in NativeExport.Inputs
// become graph inputs; every other input node the outputs depend on must
// hold a value and becomes an initializer (a weight) with it. Float64
// graphs are written as float32. With DynamicBatch the first dimension of
// the inputs, and of every tensor computed from it, is symbolic ("N").
//
// # The op table
//
// gorgonia's ops are unexported types. gorgoniaOps (native.go) lists the
// ones ExportGorgonia knows, by type name ("elemBinOp", "im2colOp", ...):
// each entry names the ONNX ops it becomes and how to write it, or says
// why it is not written. Parameters are read from op.String(); the few
// that String() does not show (sizeOp's axis, maxPoolOp's explicit
// padding, im2colOp's dilation) are read from the op's fields by
// reflection, for gorgonia v0.9.18.
//
// Composite gorgonia functions are recognised as patterns: Conv2d
// (im2col, reshapes, a matmul with a transposed filter and a transpose)
// becomes one Conv; Rectify (x ⊙ (x ≥ 0)) becomes Relu; the Broadcast*
// functions (a reshape plus repeats of size-1 axes) become ONNX numpy
// broadcasting, with an Expand only where a consumer needs the repeated
// tensor itself.
//
// graft's own kernel ops, which package graph puts in the graphs it builds
// from ONNX, are not in this table's writable entries: a model imported
// and trained by graft is exported from its original ModelProto (package
// onnx/surgery), which keeps everything graft did not change.
//
// # Failure modes
//
// A node ExportGorgonia cannot write gives a *NativeOpError naming the
// node (its tensor name) and its op: an op without an ONNX counterpart
// (avgPoolOp, whose gorgonia v0.9.18 arithmetic no ONNX op computes;
// BatchNormOp; any op type not in the table), element types other than
// float32 and float64, comparisons that return bool tensors, and under
// DynamicBatch anything that moves, slices, contracts or repeats along
// the batch axis. A field that reflection cannot find (a gorgonia version
// graft does not know) is reported with the field's name. Configuration
// errors (no outputs, a node of another graph, duplicate names, a cycle)
// are plain errors.
package native
