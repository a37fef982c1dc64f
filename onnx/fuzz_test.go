package onnx

import (
	"errors"
	"testing"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// FuzzTensorFromProto checks that no serialized TensorProto makes the
// tensor decoder panic, and that what it accepts agrees with its dims.
// Crashers found are kept in testdata/fuzz/FuzzTensorFromProto.
func FuzzTensorFromProto(f *testing.F) {
	add := func(tp *TensorProto) {
		b, err := proto.Marshal(tp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	add(NewFloat([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6}).ToProto())
	add(NewInt([]int{3}, []int64{-1, 0, 7}).ToProto())
	add(&TensorProto{Dims: []int64{2}, DataType: int32(pb.TensorProto_FLOAT), FloatData: []float32{1, 2}})
	add(&TensorProto{Dims: []int64{2}, DataType: int32(pb.TensorProto_DOUBLE), DoubleData: []float64{1, 2}})
	add(&TensorProto{Dims: []int64{2}, DataType: int32(pb.TensorProto_FLOAT16), Int32Data: []int32{0x3c00, 0x8001}})
	add(&TensorProto{Dims: []int64{1}, DataType: int32(pb.TensorProto_UINT64), Uint64Data: []uint64{1 << 63}})
	add(&TensorProto{Dims: []int64{2}, DataType: int32(pb.TensorProto_INT8), RawData: []byte{0x80, 0x7f}})
	add(&TensorProto{Dims: []int64{1 << 40, 1 << 40}, DataType: int32(pb.TensorProto_FLOAT)})
	add(&TensorProto{Dims: []int64{0, 5}, DataType: int32(pb.TensorProto_BFLOAT16)})
	f.Fuzz(func(t *testing.T, data []byte) {
		tp := &TensorProto{}
		if proto.Unmarshal(data, tp) != nil {
			return
		}
		// Refuse what Validate would refuse for its declared size, as
		// every caller sees tensors only after Validate.
		n, err := declaredElems(tp.Dims)
		if err != nil || n > 1<<20 {
			return
		}
		got, err := TensorFromProto(tp)
		if err != nil {
			return
		}
		if got.Len() != NumElems(got.Shape) || int64(got.Len()) != n {
			t.Fatalf("tensor of shape %v holds %d elements", got.Shape, got.Len())
		}
		if (got.DType == Float32) != (got.I == nil) {
			t.Fatalf("dtype %s with F %d and I %d elements", got.DType, len(got.F), len(got.I))
		}
		// What is read writes back and reads again the same.
		again, err := TensorFromProto(got.ToProto())
		if err != nil || again.Len() != got.Len() {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzDecodeNpy checks that no byte string makes the .npy reader panic
// or allocate more than the file holds. Crashers found are kept in
// testdata/fuzz/FuzzDecodeNpy.
func FuzzDecodeNpy(f *testing.F) {
	f.Add(EncodeNpy(NewFloat([]int{2, 2}, []float32{1, 2, 3, 4})))
	f.Add(EncodeNpy(NewInt([]int{3}, []int64{1, 2, 3})))
	f.Add(EncodeNpy(NewFloat(nil, []float32{5})))
	f.Add(EncodeNpy(NewFloat([]int{0, 3}, nil)))
	f.Add([]byte("\x93NUMPY\x02\x00\x30\x00\x00\x00{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\x01\x00\x00\x00"))
	f.Add([]byte("\x93NUMPY\x01\x00\x40\x00{'descr': '<f8', 'fortran_order': True, 'shape': (2, 1), }           \n"))
	f.Add([]byte("\x93NUMPY\x01\x00\x3a\x00{'descr': '<f4', 'shape': (4294967296, 4294967296, 4294967296), }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeNpy(data)
		if err != nil {
			return
		}
		if got.Len() != NumElems(got.Shape) {
			t.Fatalf("tensor of shape %v holds %d elements", got.Shape, got.Len())
		}
		if got.Len() > len(data) {
			t.Fatalf("%d elements from %d bytes", got.Len(), len(data))
		}
		if errors.Is(err, ErrTooLarge) {
			t.Fatal("unreachable")
		}
	})
}
