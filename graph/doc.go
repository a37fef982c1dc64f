// Package graph turns ONNX models into gorgonia expression graphs and back.
//
// # Import
//
// Build interprets each node of a model by the opset the model imports
// (7 to 17) and adds it to a gorgonia ExprGraph for fixed input shapes:
// the batch size is part of the build, so shape subgraphs
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) fold to constants,
// as does anything else computed from constants alone. Integer tensors
// exist only as such constants; every node of the gorgonia graph holds
// float32 data.
//
// The op table (ops.go) maps each ONNX op to a converter, one file per
// family. A converter reads attributes through typed helpers that apply
// the spec's defaults, and makes a kernel: a pure function over
// onnx.Tensor values with shapes fixed at build time, with a backward
// function. kernel.go wraps kernels as gorgonia ops with symbolic
// differentiation, so every imported graph can be trained (see
// BuildTraining and CrossEntropy). Initializers become gorgonia nodes named
// after them; Model.Params and Model.Weights give them by name, and
// training updates the weights' tensors in place.
//
// # Export
//
// Exports start from the original ModelProto and change only what graft
// changed (export.go): UpdateWeights keeps the encoding of unchanged
// weights bit for bit, CutAt and AttachHead do the surgery of
// `graft convert` and `graft adapt`, and SetOutputs declares the new
// outputs with their shapes. ExportGorgonia writes graphs built with
// gorgonia's own API.
//
// # Errors
//
// CheckOps (and Build, which calls it) reports every node whose op graft
// lacks at once, as an *UnsupportedOpsError. A node that graft supports
// but cannot build (an attribute of the wrong type, shapes that do not
// fit, an integer tensor computed from the model's inputs) gives a
// *NodeError naming the file, the node and the problem. Malformed files
// are caught before this package sees them, by package onnx.
package graph
