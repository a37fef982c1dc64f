// Package graph turns ONNX models into gorgonia expression graphs.
//
// # Import
//
// Build interprets each node of a model by the opset the model imports
// (7 to 17) and adds it to a gorgonia ExprGraph for fixed input shapes:
// the batch size is part of the build, so shape subgraphs
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) fold to constants,
// as does anything else computed from constants alone. Integer and bool
// tensors known at build time are such constants (int64; a bool is 0 or
// 1); every node of the gorgonia graph holds float32 data. A bool or
// integer result computed from the model's inputs (Equal, Greater, Not,
// And, ArgMax, Cast to an integer type, ...) is "carried": a float32
// tensor holding 0/1 or the integer, which Where, Not, Cast and the other
// ops read as the numbers they hold; no gradient flows through it. A
// graph output that is carried comes out of Model.Run as int64, the type
// the model declares (see logic.go).
//
// Symbolic input dimensions other than the batch (an image input
// x: [N, 3, H, W]) are bound by Options.Shapes or, when graft recorded
// it, the preprocessing metadata's image size (ImageShape); otherwise
// Build fails naming the dimension. Exported models keep them symbolic.
//
// Weights stored as Constant nodes, as paddle2onnx, tf2onnx and Caffe2
// write them, are parameters like float initializers when they feed a
// weight input (surgery.ConstantWeights): trained, frozen, counted and
// written back into their Constant node.
//
// # The op table
//
// The op table (ops.go) has one entry per ONNX op, kept in its family's
// file (elementwise.go, activation.go, conv.go, pool.go, norm.go,
// linalg.go, shape.go, reduce.go, index.go, resize.go, logic.go). An entry holds everything graft knows
// about the op:
//
//   - build, the op builder (buildConv, buildGemm, ...): it reads
//     attributes through typed helpers that apply the spec's defaults,
//     checks shapes and makes a kernel;
//   - train, a builder that replaces build in training builds (Dropout,
//     which draws masks there), or nil;
//   - since and until, the opsets in which graft reads the op;
//   - grad, whether its kernels have gradients;
//   - weights, the inputs that hold a layer's weights (package
//     onnx/surgery lists these ops as layers for freezing);
//   - passThrough, for ops that may follow a classifier without changing
//     which class wins (onnx/surgery's FindCut looks through them);
//   - optionalOutputs, outputs graft may leave uncomputed.
//
// Adding an op means adding its entry, its kernel and its tests:
// TestEveryOpTested fails for an entry without a forward test (an ONNX
// backend node case or a PyTorch golden case) or, when it has a gradient,
// without a golden gradient case; the TestSurgeryKnows tests fail when an
// entry's roles disagree with onnx/surgery, which cannot import this
// package and keeps its own two small sets.
//
// A kernel is a pure function over onnx.Tensor values with shapes fixed at
// build time, with a backward function. kernel.go wraps kernels as
// gorgonia ops with symbolic differentiation, so every imported graph can
// be trained (see BuildTraining and CrossEntropy). Initializers become
// gorgonia nodes named after them; Model.Params and Model.Weights give
// them by name, and training updates the weights' tensors in place.
//
// # Frozen inference
//
// Model.Run walks the graph itself (exec.go): a value lives until its
// last reader has run, kernels write into recycled buffers
// (forwardInto), and elementwise kernels may take a dying input's buffer.
// A build with Options.Freeze (and not for training) also folds
// BatchNormalization into the Conv or Gemm before it, on a copy of the
// graph (onnx/surgery's FoldBatchNorm), and lets each Conv absorb the
// activation, x*f(x) and residual Add after it as an epilogue (fuse.go).
// Neither reaches an export, which is written from the original
// ModelProto.
//
// # Export
//
// A model graft built from ONNX is exported from its original ModelProto,
// changing only what graft changed: package onnx/surgery updates weights
// (keeping the encoding of unchanged ones bit for bit), cuts the
// classifier and attaches heads; Convert does `graft convert` with it, and
// SetOutputs declares new outputs with the shapes this package computes.
// Graphs built with gorgonia's own API export through package
// graph/native.
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
