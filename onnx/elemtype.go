package onnx

import "fmt"

// elemTypeNames names the ONNX TensorProto element types, including those
// newer than the protobuf binding graft uses (float8 from IR version 9,
// int4 and uint4 from IR version 10, float4 from IR version 11).
var elemTypeNames = map[int32]string{
	1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
	8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
	14: "complex64", 15: "complex128", 16: "bfloat16",
	17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
	21: "uint4", 22: "int4", 23: "float4e2m1",
}

// ElemTypeName returns the name of an ONNX element type (a TensorProto
// data type), or "element type N" for a number ONNX does not define.
func ElemTypeName(t int32) string {
	if s, ok := elemTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("element type %d", t)
}
