package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"gorgonia.org/tensor"

	"github.com/graftml/graft/onnx/hugemem"
)

// DType is the element type of a Tensor. graft computes in float32 and
// uses int64 for shapes and indices; every other ONNX type converts to
// one of these two on import.
type DType int

const (
	Float32 DType = iota
	Int64
)

func (d DType) String() string {
	if d == Int64 {
		return "int64"
	}
	return "float32"
}

// Tensor is a dense row-major tensor. Exactly one of F and I holds the
// data, according to DType. A rank-0 tensor has an empty Shape and one
// element; tensors with a zero dimension have no elements.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	F     []float32
	I     []int64
}

// NewFloat returns a float32 tensor of the given shape holding data
// (allocated when nil).
func NewFloat(shape []int, data []float32) *Tensor {
	if data == nil {
		data = make([]float32, NumElems(shape))
	}
	return &Tensor{DType: Float32, Shape: append([]int(nil), shape...), F: data}
}

// NewInt returns an int64 tensor of the given shape holding data
// (allocated when nil).
func NewInt(shape []int, data []int64) *Tensor {
	if data == nil {
		data = make([]int64, NumElems(shape))
	}
	return &Tensor{DType: Int64, Shape: append([]int(nil), shape...), I: data}
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	if t.DType == Int64 {
		return len(t.I)
	}
	return len(t.F)
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{Name: t.Name, DType: t.DType, Shape: append([]int(nil), t.Shape...)}
	if t.F != nil {
		c.F = append([]float32(nil), t.F...)
	}
	if t.I != nil {
		c.I = append([]int64(nil), t.I...)
	}
	return c
}

// Ints returns the elements as ints (int64 tensors only).
func (t *Tensor) Ints() []int {
	out := make([]int, len(t.I))
	for i, v := range t.I {
		out[i] = int(v)
	}
	return out
}

func (t *Tensor) String() string {
	return fmt.Sprintf("%s%v", t.DType, t.Shape)
}

// NumElems is the product of the dimensions (1 for a scalar).
func NumElems(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Dense converts t to a gorgonia.org/tensor Dense. gorgonia's Dense cannot
// hold tensors without elements; those are refused.
func (t *Tensor) Dense() (*tensor.Dense, error) {
	if t.Len() == 0 {
		return nil, fmt.Errorf("tensor %q has no elements; gorgonia tensors cannot represent it", t.Name)
	}
	shape := tensor.Shape(append([]int(nil), t.Shape...))
	if t.DType == Int64 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]int64(nil), t.I...))), nil
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), t.F...))), nil
}

// FromDense converts a float32 or int64 gorgonia.org/tensor Dense.
func FromDense(name string, d *tensor.Dense) (*Tensor, error) {
	shape := append([]int(nil), d.Shape()...)
	switch d.Dtype() {
	case tensor.Float32:
		var data []float32
		if d.IsScalar() {
			data = []float32{d.ScalarValue().(float32)}
		} else {
			data = append(data, d.Float32s()...)
		}
		return &Tensor{Name: name, DType: Float32, Shape: shape, F: data}, nil
	case tensor.Int64:
		var data []int64
		if d.IsScalar() {
			data = []int64{d.ScalarValue().(int64)}
		} else {
			data = append(data, d.Int64s()...)
		}
		return &Tensor{Name: name, DType: Int64, Shape: shape, I: data}, nil
	}
	return nil, fmt.Errorf("tensor %q: data type %v is not float32 or int64", name, d.Dtype())
}

// elemSize is the byte width of an ONNX element type, 0 for types graft
// cannot read.
func elemSize(dt pb.TensorProto_DataType) int {
	switch dt {
	case pb.TensorProto_FLOAT, pb.TensorProto_INT32, pb.TensorProto_UINT32:
		return 4
	case pb.TensorProto_INT64, pb.TensorProto_DOUBLE, pb.TensorProto_UINT64:
		return 8
	case pb.TensorProto_FLOAT16, pb.TensorProto_INT16, pb.TensorProto_UINT16, pb.TensorProto_BFLOAT16:
		return 2
	case pb.TensorProto_INT8, pb.TensorProto_UINT8, pb.TensorProto_BOOL:
		return 1
	}
	return 0
}

// declaredElems returns the element count the dims declare, or an error
// for negative dims or a count that overflows.
func declaredElems(dims []int64) (int64, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d", d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("dimensions %v overflow", dims)
		}
		n *= d
	}
	return n, nil
}

// TensorFromProto decodes a TensorProto with inline data. Integer types
// become Int64, floating types Float32.
func TensorFromProto(tp *TensorProto) (*Tensor, error) {
	return TensorFromProtoIn(tp, nil)
}

// ArenaFloats returns how many floats TensorFromProtoIn takes from its
// arena for tp: the values its raw floating-point data holds, else 0. It
// sizes an arena, which serves a request beyond what it has left from
// memory of its own: a tensor TensorFromProtoIn refuses only makes the
// arena larger than needed.
func ArenaFloats(tp *TensorProto) int {
	dt := pb.TensorProto_DataType(tp.DataType)
	switch dt {
	case pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE, pb.TensorProto_FLOAT16, pb.TensorProto_BFLOAT16:
		if tp.DataLocation != pb.TensorProto_EXTERNAL {
			return len(tp.RawData) / elemSize(dt)
		}
	}
	return 0
}

// TensorFromProtoIn is TensorFromProto with the floats of raw data taken
// from arena (nil: allocated on their own).
func TensorFromProtoIn(tp *TensorProto, arena *hugemem.Arena) (*Tensor, error) {
	n64, err := declaredElems(tp.Dims)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.Name, err)
	}
	if tp.DataLocation == pb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q: external data was not loaded", tp.Name)
	}
	dt := pb.TensorProto_DataType(tp.DataType)
	size := elemSize(dt)
	if size == 0 {
		return nil, fmt.Errorf("tensor %q: data type %s is not supported (graft reads float, float16, double and integer tensors)", tp.Name, ElemTypeName(tp.DataType))
	}
	if n64 > math.MaxInt32*8 {
		return nil, fmt.Errorf("tensor %q: %d elements is too many", tp.Name, n64)
	}
	n := int(n64)
	shape := make([]int, len(tp.Dims))
	for i, d := range tp.Dims {
		shape[i] = int(d)
	}
	raw := tp.RawData
	if raw != nil || n == 0 && typedLen(tp, dt) == 0 {
		if len(raw) != n*size {
			return nil, fmt.Errorf("tensor %q: raw_data holds %d bytes, dims %v of %s need %d", tp.Name, len(raw), tp.Dims, dt, n*size)
		}
		return fromRaw(tp.Name, shape, dt, raw, n, arena), nil
	}
	if got := typedLen(tp, dt); got != n {
		return nil, fmt.Errorf("tensor %q: holds %d values, dims %v need %d", tp.Name, got, tp.Dims, n)
	}
	t := &Tensor{Name: tp.Name, Shape: shape}
	switch dt {
	case pb.TensorProto_FLOAT:
		t.F = append([]float32(nil), tp.FloatData...)
	case pb.TensorProto_DOUBLE:
		t.F = make([]float32, n)
		for i, v := range tp.DoubleData {
			t.F[i] = float32(v)
		}
	case pb.TensorProto_FLOAT16:
		t.F = make([]float32, n)
		for i, v := range tp.Int32Data {
			t.F[i] = halfToFloat(uint16(v))
		}
	case pb.TensorProto_BFLOAT16:
		t.F = make([]float32, n)
		for i, v := range tp.Int32Data {
			t.F[i] = math.Float32frombits(uint32(v) << 16)
		}
	case pb.TensorProto_INT64:
		t.DType, t.I = Int64, append([]int64(nil), tp.Int64Data...)
	case pb.TensorProto_UINT64, pb.TensorProto_UINT32:
		t.DType, t.I = Int64, make([]int64, n)
		for i, v := range tp.Uint64Data {
			t.I[i] = int64(v)
		}
	default: // int32, int16, int8, uint16, uint8, bool live in int32_data
		t.DType, t.I = Int64, make([]int64, n)
		for i, v := range tp.Int32Data {
			t.I[i] = int64(v)
		}
	}
	return t, nil
}

func typedLen(tp *TensorProto, dt pb.TensorProto_DataType) int {
	switch dt {
	case pb.TensorProto_FLOAT:
		return len(tp.FloatData)
	case pb.TensorProto_DOUBLE:
		return len(tp.DoubleData)
	case pb.TensorProto_INT64:
		return len(tp.Int64Data)
	case pb.TensorProto_UINT64, pb.TensorProto_UINT32:
		return len(tp.Uint64Data)
	}
	return len(tp.Int32Data)
}

func fromRaw(name string, shape []int, dt pb.TensorProto_DataType, raw []byte, n int, arena *hugemem.Arena) *Tensor {
	le := binary.LittleEndian
	t := &Tensor{Name: name, Shape: shape}
	switch dt {
	case pb.TensorProto_FLOAT:
		t.F = arena.Floats(n)
		for i := range t.F {
			t.F[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case pb.TensorProto_DOUBLE:
		t.F = arena.Floats(n)
		for i := range t.F {
			t.F[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	case pb.TensorProto_FLOAT16:
		t.F = arena.Floats(n)
		for i := range t.F {
			t.F[i] = halfToFloat(le.Uint16(raw[2*i:]))
		}
	case pb.TensorProto_BFLOAT16:
		t.F = arena.Floats(n)
		for i := range t.F {
			t.F[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		}
	default:
		t.DType, t.I = Int64, make([]int64, n)
		for i := range t.I {
			switch dt {
			case pb.TensorProto_INT64, pb.TensorProto_UINT64:
				t.I[i] = int64(le.Uint64(raw[8*i:]))
			case pb.TensorProto_INT32:
				t.I[i] = int64(int32(le.Uint32(raw[4*i:])))
			case pb.TensorProto_UINT32:
				t.I[i] = int64(le.Uint32(raw[4*i:]))
			case pb.TensorProto_INT16:
				t.I[i] = int64(int16(le.Uint16(raw[2*i:])))
			case pb.TensorProto_UINT16:
				t.I[i] = int64(le.Uint16(raw[2*i:]))
			case pb.TensorProto_INT8:
				t.I[i] = int64(int8(raw[i]))
			default: // uint8, bool
				t.I[i] = int64(raw[i])
			}
		}
	}
	return t
}

// halfToFloat converts IEEE 754 binary16 bits to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or nan
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: value = frac * 2^-24
		v := float32(frac) * float32(math.Ldexp(1, -24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// ToProto encodes t as a TensorProto with little-endian raw_data.
func (t *Tensor) ToProto() *TensorProto {
	tp := &TensorProto{Name: t.Name, Dims: make([]int64, len(t.Shape))}
	for i, d := range t.Shape {
		tp.Dims[i] = int64(d)
	}
	le := binary.LittleEndian
	if t.DType == Int64 {
		tp.DataType = int32(pb.TensorProto_INT64)
		tp.RawData = make([]byte, 8*len(t.I))
		for i, v := range t.I {
			le.PutUint64(tp.RawData[8*i:], uint64(v))
		}
		return tp
	}
	tp.DataType = int32(pb.TensorProto_FLOAT)
	tp.RawData = make([]byte, 4*len(t.F))
	for i, v := range t.F {
		le.PutUint32(tp.RawData[4*i:], math.Float32bits(v))
	}
	return tp
}
