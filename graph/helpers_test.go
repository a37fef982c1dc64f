package graph

import (
	"maps"
	"slices"
	"testing"

	"github.com/graftml/graft/onnx"
)

// testAttrs turns Go values into ONNX attributes, in name order: int,
// float32, float64, string, []int, []float32 and tensors.
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
		case []float32:
			a.Type, a.Floats = onnx.AttrFloats, v
		case *onnx.Tensor:
			a.Type, a.T = onnx.AttrTensor, v.ToProto()
		case *onnx.TensorProto:
			a.Type, a.T = onnx.AttrTensor, v
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

// refGemm is the float64 reference for sgemm: alpha*op(A)*op(B) +
// beta*C over a row-major C with leading dimension ldc; columns of C past
// n keep their values, and beta 0 ignores C (even NaN).
func refGemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	want := make([]float64, m*ldc)
	for i := range want {
		want[i] = float64(c[i])
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				var av, bv float32
				if ta {
					av = a[l*lda+i]
				} else {
					av = a[i*lda+l]
				}
				if tb {
					bv = b[j*ldb+l]
				} else {
					bv = b[l*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			want[i*ldc+j] = float64(alpha) * s
			if beta != 0 {
				want[i*ldc+j] += float64(beta) * float64(c[i*ldc+j])
			}
		}
	}
	return want
}
