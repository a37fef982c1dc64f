package onnx

// Builders for the protobuf messages that graft writes into models.

// IntAttr is an INT attribute.
func IntAttr(name string, v int64) *AttributeProto {
	return &AttributeProto{Name: name, Type: AttrInt, I: v}
}

// IntsAttr is an INTS attribute.
func IntsAttr(name string, vals ...int) *AttributeProto {
	d := make([]int64, len(vals))
	for i, v := range vals {
		d[i] = int64(v)
	}
	return &AttributeProto{Name: name, Type: AttrInts, Ints: d}
}

// ValueInfo declares a tensor of elemType (an ONNX TensorProto data type)
// and shape; with batchParam set, the first dimension is that symbol
// instead of a number.
func ValueInfo(name string, shape []int, elemType int32, batchParam string) *ValueInfoProto {
	dims := make([]*TensorShapeDimension, len(shape))
	for i, d := range shape {
		if i == 0 && batchParam != "" {
			dims[i] = &TensorShapeDimension{Value: &DimParam{DimParam: batchParam}}
		} else {
			dims[i] = &TensorShapeDimension{Value: &DimValue{DimValue: int64(d)}}
		}
	}
	return &ValueInfoProto{
		Name: name,
		Type: &TypeProto{Value: &TypeTensor{TensorType: &TypeProtoTensor{
			ElemType: elemType,
			Shape:    &TensorShapeProto{Dim: dims},
		}}},
	}
}
