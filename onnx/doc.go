// Package onnx reads, validates and writes ONNX model files.
//
// It is graft's only door to the ONNX wire format. A Model keeps the
// original ModelProto message, so that a model read here can be written
// back with its node names, doc strings, opset imports and unknown fields
// intact. TensorProto values convert to and from gorgonia.org/tensor
// Dense tensors (float32 and int64; float16 and double become float32).
//
// Model files are untrusted input. Read and Decode never panic on bad
// bytes: a file that is not a well-formed ONNX model yields a
// *FormatError naming the file and the offending graph element, and
// tensor data whose declared size exceeds Limits.MaxBytes is refused
// before any memory is allocated for it. The graph's structure is bounded
// the same way (Limits.MaxNodes, MaxDepth, MaxAttrElems, MaxStringLen,
// with documented defaults): a model over one of them is a *FormatError
// wrapping ErrOverLimit. A model that is well formed but
// uses something graft cannot handle (a data type, an op) yields an
// *UnsupportedError instead, mirroring image.ErrFormat versus
// image.UnsupportedError in the standard library.
//
// External tensor data (data_location EXTERNAL) is resolved relative to
// the model's folder; locations that are absolute or climb out of that
// folder are refused.
//
// Writing: WriteFile and WriteAtomic write through a temporary file and a
// rename, so no reader sees half a file; CheckOutPath refuses a missing
// folder, an existing file (ErrExists) and the input model itself
// (ErrInputModel) before any work starts. ValueInfo, IntAttr and IntsAttr
// build the protobuf messages graft writes into models; GraftVersion is
// graft's version, recorded in every model it writes.
//
// Errors: besides *FormatError and *UnsupportedError, an *OptionError
// names a bad option of a library call in the library's terms
// ("AdaptConfig.LR"); a command-line program maps it to its flag. The
// sentinels ErrTooLarge, ErrExists and ErrInputModel are found with
// errors.Is through any wrapping.
//
// This package imports no gorgonia graph code; onnx/surgery edits models
// and onnx/onnxtest holds the test references.
package onnx
