package graph

import (
	"maps"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
)

// testAttrs turns Go values into ONNX attributes, in name order: int,
// float32, float64, string and []int.
func testAttrs(t *testing.T, attrs map[string]any) []*onnx.AttributeProto {
	t.Helper()
	var out []*onnx.AttributeProto
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a := &onnx.AttributeProto{Name: name}
		switch v := attrs[name].(type) {
		case int:
			a.Type, a.I = onnx.AttrInt, int64(v)
		case float32:
			a.Type, a.F = onnx.AttrFloat, v
		case float64:
			a.Type, a.F = onnx.AttrFloat, float32(v)
		case string:
			a.Type, a.S = onnx.AttrString, []byte(v)
		case []int:
			a.Type = onnx.AttrInts
			for _, x := range v {
				a.Ints = append(a.Ints, int64(x))
			}
		default:
			t.Fatalf("attribute %s: unsupported type %T", name, v)
		}
		out = append(out, a)
	}
	return out
}

// testValueInfo declares a float32 or int64 tensor; a nil shape leaves
// the shape undeclared.
func testValueInfo(name string, dt onnx.DType, shape []int) *onnx.ValueInfoProto {
	et := int32(1)
	if dt == onnx.Int64 {
		et = 7
	}
	tt := &onnx.TypeProtoTensor{ElemType: et}
	if shape != nil {
		tt.Shape = &onnx.TensorShapeProto{}
		for _, d := range shape {
			tt.Shape.Dim = append(tt.Shape.Dim, &onnx.TensorShapeDimension{Value: &onnx.DimValue{DimValue: int64(d)}})
		}
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeTensor{TensorType: tt}}}
}
