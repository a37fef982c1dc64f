package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// tinyModel is Relu(x) with one initializer w, used by Add(y, w).
func tinyModel() *ModelProto {
	w := NewFloat([]int{2}, []float32{1, 2})
	w.Name = "w"
	vi := func(name string) *ValueInfoProto {
		return &ValueInfoProto{Name: name, Type: &TypeProto{Value: &TypeTensor{TensorType: &TypeProtoTensor{ElemType: 1,
			Shape: &TensorShapeProto{Dim: []*TensorShapeDimension{{Value: &DimValue{DimValue: 2}}}}}}}}
	}
	return &ModelProto{
		IrVersion:   8,
		OpsetImport: []*OperatorSetIdProto{{Version: 13}},
		Graph: &GraphProto{
			Name:        "tiny",
			Input:       []*ValueInfoProto{vi("x")},
			Output:      []*ValueInfoProto{vi("z")},
			Initializer: []*TensorProto{w.ToProto()},
			Node: []*NodeProto{
				{Name: "relu", OpType: "Relu", Input: []string{"x"}, Output: []string{"y"}},
				{Name: "add", OpType: "Add", Input: []string{"y", "w"}, Output: []string{"z"}},
			},
		},
	}
}

func encode(t *testing.T, mp *ModelProto) []byte {
	t.Helper()
	b, err := Encode(mp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadModels pairs each malformed input with the error it must give.
func TestBadModels(t *testing.T) {
	good := encode(t, tinyModel())
	cases := []struct {
		name string
		data func() []byte
		want string // substring of the error
	}{
		{"truncated", func() []byte { return good[:len(good)/2] }, "not an ONNX protobuf message"},
		{"random bytes", func() []byte { return []byte("\xff\xff\xff\xff garbage \x00\x01") }, "not an ONNX protobuf message"},
		{"no graph", func() []byte { m := tinyModel(); m.Graph = nil; return encode(t, m) }, "has no graph"},
		{"input names no tensor", func() []byte {
			m := tinyModel()
			m.Graph.Node[1].Input[0] = "nothing"
			return encode(t, m)
		}, `node "add" (Add): invalid ONNX model: input "nothing" names no graph input`},
		{"nodes out of order", func() []byte {
			m := tinyModel()
			m.Graph.Node[0], m.Graph.Node[1] = m.Graph.Node[1], m.Graph.Node[0]
			return encode(t, m)
		}, `input "y" names no graph input`},
		{"raw_data length", func() []byte {
			m := tinyModel()
			m.Graph.Initializer[0].RawData = m.Graph.Initializer[0].RawData[:5]
			return encode(t, m)
		}, `initializer "w": invalid ONNX model: raw_data holds 5 bytes, dims [2] of FLOAT need 8`},
		{"huge dims", func() []byte {
			m := tinyModel()
			m.Graph.Initializer[0].Dims = []int64{1 << 20, 1 << 20}
			return encode(t, m)
		}, "above the 4294967296-byte limit"},
		{"overflowing dims", func() []byte {
			m := tinyModel()
			m.Graph.Initializer[0].Dims = []int64{1 << 40, 1 << 40}
			return encode(t, m)
		}, "overflow"},
		{"negative dim", func() []byte {
			m := tinyModel()
			m.Graph.Initializer[0].Dims = []int64{-2}
			return encode(t, m)
		}, "negative dimension"},
		{"output never produced", func() []byte {
			m := tinyModel()
			m.Graph.Output[0].Name = "ghost"
			return encode(t, m)
		}, `graph output "ghost": invalid ONNX model: no node`},
		{"duplicate output", func() []byte {
			m := tinyModel()
			m.Graph.Node[1].Output[0] = "y"
			return encode(t, m)
		}, `output "y" is already defined`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data(), "bad.onnx", "", Limits{})
			if err == nil {
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "bad.onnx: ") {
				t.Fatalf("error %q does not name the file and contain %q", err, c.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	data := encode(t, tinyModel())
	if _, err := Decode(data, "m.onnx", "", Limits{MaxBytes: 4}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("8 bytes of weights under a 4-byte limit: %v", err)
	}
	if _, err := Decode(data, "m.onnx", "", Limits{MaxBytes: 8}); err != nil {
		t.Fatalf("8 bytes under an 8-byte limit: %v", err)
	}
}

// TestReadSized checks that a file is read whole whether it keeps the
// size it had when opened, grows or shrinks while being read, or comes a
// byte at a time; that reading stops one byte past the limit; that read
// errors come back; and that a file of the expected size costs one
// allocation.
func TestReadSized(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cases := []struct {
		name  string
		r     func() io.Reader
		size  int64
		limit int64
		want  []byte
	}{
		{"same size", func() io.Reader { return bytes.NewReader(data) }, 10000, 1 << 20, data},
		{"grew", func() io.Reader { return bytes.NewReader(data) }, 100, 1 << 20, data},
		{"shrank", func() io.Reader { return bytes.NewReader(data[:50]) }, 10000, 1 << 20, data[:50]},
		{"empty", func() io.Reader { return bytes.NewReader(nil) }, 0, 1 << 20, []byte{}},
		{"byte by byte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }, 10000, 1 << 20, data},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }, 10000, 1 << 20, data},
		{"over the limit", func() io.Reader { return bytes.NewReader(data) }, 10000, 999, data[:1000]},
		{"grew over the limit", func() io.Reader { return bytes.NewReader(data) }, 10, 999, data[:1000]},
	}
	for _, c := range cases {
		got, err := readSized(c.r(), c.size, c.limit)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", c.name, len(got), err, len(c.want))
		}
	}
	bad := errors.New("disk on fire")
	if _, err := readSized(iotest.TimeoutReader(bytes.NewReader(data)), 10000, 1<<20); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("a failing read: %v", err)
	}
	if _, err := readSized(iotest.ErrReader(bad), 10, 1<<20); !errors.Is(err, bad) {
		t.Errorf("a failing read: %v", err)
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := readSized(bytes.NewReader(data), 10000, 1<<20); err != nil {
			t.Fatal(err)
		}
	})
	// the buffer, and the reader and its LimitReader if they escape
	if allocs > 3 {
		t.Errorf("%v allocations to read a file of the expected size", allocs)
	}
}

// TestReadFileSizes reads a model from a file and refuses one over the
// size limit before reading it.
func TestReadFileSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, encode(t, tinyModel()), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadFile(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Proto.Graph.Initializer) != 1 {
		t.Fatalf("read back %d initializers", len(m.Proto.Graph.Initializer))
	}
	if err := os.Truncate(path, 64<<20+100); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	if _, err := ReadFile(path, Limits{MaxBytes: 8}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a file of 64 MiB + 100 bytes under an 8-byte limit: %v", err)
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	ext := func(loc string) []byte {
		m := tinyModel()
		w := m.Graph.Initializer[0]
		w.RawData = nil
		w.DataLocation = pb.TensorProto_EXTERNAL
		w.ExternalData = []*StringStringEntryProto{{Key: "location", Value: loc}, {Key: "offset", Value: "4"}}
		return encode(t, m)
	}
	raw := []byte{0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40} // 4 bytes of padding, then 1.0, 2.0
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Decode(ext("w.bin"), "m.onnx", dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := TensorFromProto(m.Proto.Graph.Initializer[0])
	if err != nil || w.F[0] != 1 || w.F[1] != 2 {
		t.Fatalf("external weights %v, %v", w, err)
	}
	for _, loc := range []string{"../w.bin", "/etc/passwd", "a/../../w.bin", ""} {
		_, err := Decode(ext(loc), "m.onnx", dir, Limits{})
		if err == nil || !strings.Contains(err.Error(), `initializer "w"`) {
			t.Errorf("location %q: %v", loc, err)
		}
	}
	if _, err := Decode(ext("missing.bin"), "m.onnx", dir, Limits{}); err == nil {
		t.Error("missing external file accepted")
	}
}

func TestTensorRoundTrip(t *testing.T) {
	for _, tt := range []*Tensor{
		NewFloat([]int{2, 3}, []float32{1, -2, 3.5, 0, 1e-30, -7}),
		NewFloat(nil, []float32{42}),
		NewInt([]int{3}, []int64{-1, 0, 1 << 40}),
		NewFloat([]int{0, 4}, nil),
	} {
		tp := tt.ToProto()
		got, err := TensorFromProto(tp)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != tt.String() || len(got.F) != len(tt.F) || len(got.I) != len(tt.I) {
			t.Fatalf("round trip of %v gave %v", tt, got)
		}
		for i := range tt.F {
			if got.F[i] != tt.F[i] {
				t.Fatalf("element %d: %g, want %g", i, got.F[i], tt.F[i])
			}
		}
		for i := range tt.I {
			if got.I[i] != tt.I[i] {
				t.Fatalf("element %d: %d, want %d", i, got.I[i], tt.I[i])
			}
		}
	}
	// typed fields, float16 and double convert to float32
	half := &TensorProto{Dims: []int64{3}, DataType: int32(pb.TensorProto_FLOAT16), Int32Data: []int32{0x3c00, 0xc000, 0x3555}}
	h, err := TensorFromProto(half)
	if err != nil || h.F[0] != 1 || h.F[1] != -2 || h.F[2] < 0.333 || h.F[2] > 0.3334 {
		t.Fatalf("float16: %v %v", h.F, err)
	}
	dbl := &TensorProto{Dims: []int64{2}, DataType: int32(pb.TensorProto_DOUBLE), DoubleData: []float64{0.5, -3}}
	if d, err := TensorFromProto(dbl); err != nil || d.F[0] != 0.5 || d.F[1] != -3 {
		t.Fatalf("double: %v %v", d, err)
	}
	if _, err := TensorFromProto(&TensorProto{Dims: []int64{2}, DataType: int32(pb.TensorProto_FLOAT), FloatData: []float32{1}}); err == nil {
		t.Fatal("2 dims with 1 value accepted")
	}
	// gorgonia tensor conversion
	d, err := NewFloat([]int{2, 2}, []float32{1, 2, 3, 4}).Dense()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromDense("x", d)
	if err != nil || back.F[3] != 4 || back.Shape[1] != 2 {
		t.Fatalf("Dense round trip: %v %v", back, err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := WriteFile(path, tinyModel(), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, tinyModel(), false); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite without force: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "m.onnx"), tinyModel(), true); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing folder: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	m, err := ReadFile(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Proto, tinyModel()) {
		t.Fatal("model changed in a write/read round trip")
	}
}

func TestNpy(t *testing.T) {
	header := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = append(b, byte(len(header)), byte(len(header)>>8))
	b = append(b, header...)
	for _, v := range []uint32{0x3f800000, 0x40000000, 0x40400000, 0x40800000} {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	tt, err := DecodeNpy(b)
	if err != nil || tt.Shape[0] != 2 || tt.F[3] != 4 {
		t.Fatalf("npy: %v %v", tt, err)
	}
	for _, want := range []*Tensor{tt, NewInt([]int{3}, []int64{-5, 0, 1 << 40}), NewFloat(nil, []float32{7})} {
		back, err := DecodeNpy(EncodeNpy(want))
		if err != nil || back.String() != want.String() || fmt.Sprint(back.F, back.I) != fmt.Sprint(want.F, want.I) {
			t.Fatalf("npy round trip of %v: %v %v", want, back, err)
		}
	}
	if _, err := DecodeNpy(b[:len(b)-1]); err == nil {
		t.Fatal("truncated npy accepted")
	}
}

// FuzzDecode checks that no byte string makes the reader panic or hang.
// Crashers found are kept in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	good, _ := Encode(tinyModel())
	f.Add(good)
	// The real models graph's tests use.
	fixtures, _ := filepath.Glob(filepath.Join("..", "graph", "testdata", "fixtures", "*", "model.onnx"))
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(good[:len(good)/3])
	f.Add([]byte{0x3a, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x78})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, "fuzz.onnx", "", Limits{MaxBytes: 1 << 20})
		if err != nil {
			return
		}
		for _, tp := range m.Proto.Graph.Initializer {
			TensorFromProto(tp)
		}
	})
}
