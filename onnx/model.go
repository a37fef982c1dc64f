package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/graftml/graft/onnx/hugemem"
)

// Aliases for the protobuf messages, so that callers need not import the
// binding (package onnx of github.com/advancedclimatesystems/gonnx).
type (
	ModelProto             = pb.ModelProto
	GraphProto             = pb.GraphProto
	NodeProto              = pb.NodeProto
	TensorProto            = pb.TensorProto
	AttributeProto         = pb.AttributeProto
	ValueInfoProto         = pb.ValueInfoProto
	TypeProto              = pb.TypeProto
	OperatorSetIdProto     = pb.OperatorSetIdProto
	StringStringEntryProto = pb.StringStringEntryProto
)

// DefaultMaxBytes bounds the tensor data a model may declare (4 GiB).
const DefaultMaxBytes = 4 << 30

// Defaults of the structural limits, far above any real image model
// (a ResNet-152 export has about 500 nodes; the largest attribute lists
// are a few hundred values) and low enough that a file cannot make graft
// build millions of graph nodes or copy huge attribute lists.
const (
	DefaultMaxNodes     = 100_000
	DefaultMaxDepth     = 8
	DefaultMaxAttrElems = 1 << 20
	DefaultMaxStringLen = 64 << 10
)

// Limits bound what a model file may make graft allocate. Validate checks
// them on the decoded message, before graft allocates anything from it. A
// zero or negative field means its documented default.
type Limits struct {
	// MaxBytes bounds the declared size of all initializers and Constant
	// tensors together. Zero means DefaultMaxBytes.
	MaxBytes int64
	// MaxNodes bounds the nodes of the graph and of all its subgraphs
	// together. Zero means DefaultMaxNodes.
	MaxNodes int
	// MaxDepth bounds the nesting of subgraphs (If and Loop bodies held
	// in attributes); the main graph has depth 1. Zero means
	// DefaultMaxDepth.
	MaxDepth int
	// MaxAttrElems bounds the values of one list attribute (ints, floats,
	// strings, tensors, graphs), the attributes of one node and the inputs
	// and outputs of one node. Zero means DefaultMaxAttrElems.
	MaxAttrElems int
	// MaxStringLen bounds the length in bytes of every name (of nodes,
	// tensors, inputs, outputs, attributes), op type and domain, and of
	// every string attribute value. Doc strings are not bounded: graft
	// never copies them. Zero means DefaultMaxStringLen.
	MaxStringLen int
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Model is a decoded, validated ONNX model.
type Model struct {
	Proto *ModelProto
	// Path is the file the model was read from ("" when decoded from
	// memory); error messages name it.
	Path string
	// Raw holds the file's bytes as read, before external data was
	// inlined; it is what a SHA-256 of "the model" is computed over.
	Raw []byte
}

// ReadFile reads and validates the model at path. External data files are
// read from the model's folder.
func ReadFile(path string, lim Limits) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a folder, not an ONNX model file", path)
	}
	// The protobuf wire format cannot make the decoder allocate much more
	// than the input's size, so bounding the file bounds the decoding.
	maxFile := lim.maxBytes() + 64<<20
	tooLarge := func(size int64) error {
		return &FormatError{File: path, Msg: fmt.Sprintf("file is %d bytes, above the %d-byte limit", size, lim.maxBytes()), Err: ErrTooLarge}
	}
	if st.Size() > maxFile {
		return nil, tooLarge(st.Size())
	}
	data, err := readSized(f, st.Size(), maxFile)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxFile { // it grew while being read
		return nil, tooLarge(int64(len(data)))
	}
	return Decode(data, path, filepath.Dir(path), lim)
}

// readSized reads r to its end into one buffer of the size r is expected
// to have (io.ReadAll would grow its buffer step by step, allocating and
// clearing about twice the data for a large model). A file that grows
// while it is read still comes whole, at the cost of growing the buffer;
// reading stops after limit+1 bytes, so that a caller can tell a file
// over limit.
func readSized(r io.Reader, size, limit int64) ([]byte, error) {
	// one byte more than expected, so that the read that finds the end
	// needs no larger buffer
	buf := hugemem.Bytes(int(max(0, min(size, limit)) + 1))[:0]
	r = io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Decode decodes and validates a serialized ModelProto. name labels
// errors (usually the file path); dir is the folder external data is
// resolved in, and "" forbids external data.
func Decode(data []byte, name, dir string, lim Limits) (*Model, error) {
	mp := &ModelProto{}
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, mp); err != nil {
		return nil, formatErr(name, "", "not an ONNX protobuf message: %v", err)
	}
	m := &Model{Proto: mp, Path: name, Raw: data}
	if err := m.loadExternal(dir); err != nil {
		return nil, err
	}
	if err := Validate(mp, name, lim); err != nil {
		return nil, err
	}
	return m, nil
}

// Opset returns the opset version the model imports for the default ONNX
// domain ("" or "ai.onnx"), or 0 when it declares none.
func (m *Model) Opset() int {
	return OpsetOf(m.Proto)
}

// OpsetOf returns the default-domain opset a ModelProto imports.
func OpsetOf(mp *ModelProto) int {
	for _, o := range mp.OpsetImport {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return int(o.Version)
		}
	}
	return 0
}

// Initializers returns the graph's initializers by name.
func (m *Model) Initializers() map[string]*TensorProto {
	out := make(map[string]*TensorProto, len(m.Proto.Graph.Initializer))
	for _, t := range m.Proto.Graph.Initializer {
		out[t.Name] = t
	}
	return out
}

// Inputs returns the graph inputs that are not initializers: the values a
// caller must feed. (Before IR version 4 every weight was also listed as a
// graph input.)
func (m *Model) Inputs() []*ValueInfoProto {
	inits := m.Initializers()
	var out []*ValueInfoProto
	for _, in := range m.Proto.Graph.Input {
		if _, ok := inits[in.Name]; !ok {
			out = append(out, in)
		}
	}
	return out
}

// Metadata returns the value of a metadata_props key, and whether it exists.
func (m *Model) Metadata(key string) (string, bool) {
	for _, p := range m.Proto.MetadataProps {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// loadExternal reads external tensor data into raw_data, so that the rest
// of graft sees self-contained models.
func (m *Model) loadExternal(dir string) error {
	g := m.Proto.Graph
	if g == nil {
		return nil // Validate reports it
	}
	for _, t := range g.Initializer {
		if t.DataLocation != pb.TensorProto_EXTERNAL {
			continue
		}
		elem := fmt.Sprintf("initializer %q", t.Name)
		var loc string
		var off, length int64 = 0, -1
		for _, kv := range t.ExternalData {
			var err error
			switch kv.Key {
			case "location":
				loc = kv.Value
			case "offset":
				off, err = strconv.ParseInt(kv.Value, 10, 64)
			case "length":
				length, err = strconv.ParseInt(kv.Value, 10, 64)
			}
			if err != nil || off < 0 {
				return formatErr(m.Path, elem, "bad external_data %s=%q", kv.Key, kv.Value)
			}
		}
		if dir == "" {
			return unsupportedErr(m.Path, elem, "external data %q cannot be resolved for a model read from memory", loc)
		}
		if loc == "" || filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") {
			return formatErr(m.Path, elem, "external data location %q must be a relative path inside the model's folder", loc)
		}
		clean := filepath.Clean(filepath.FromSlash(loc))
		if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			return formatErr(m.Path, elem, "external data location %q escapes the model's folder", loc)
		}
		f, err := os.Open(filepath.Join(dir, clean))
		if err != nil {
			return formatErr(m.Path, elem, "external data: %v", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if length < 0 {
			length = st.Size() - off
		}
		if off+length > st.Size() || length < 0 {
			f.Close()
			return formatErr(m.Path, elem, "external data %q holds %d bytes, offset %d length %d asked", loc, st.Size(), off, length)
		}
		buf := make([]byte, length)
		_, err = f.ReadAt(buf, off)
		f.Close()
		if err != nil {
			return formatErr(m.Path, elem, "external data %q: %v", loc, err)
		}
		t.RawData = buf
		t.DataLocation = pb.TensorProto_DEFAULT
		t.ExternalData = nil
	}
	return nil
}

// Encode serializes a ModelProto deterministically.
func Encode(mp *ModelProto) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(mp)
}

// ReadTensorFile reads a serialized TensorProto (the ONNX backend-test
// input_N.pb / output_N.pb format).
func ReadTensorFile(path string) (*Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tp := &TensorProto{}
	if err := proto.Unmarshal(data, tp); err != nil {
		return nil, fmt.Errorf("%s: not a serialized TensorProto: %w", path, err)
	}
	t, err := TensorFromProto(tp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// WriteTensorFile writes t as a serialized TensorProto, atomically.
func WriteTensorFile(path string, t *Tensor) error {
	data, err := proto.Marshal(t.ToProto())
	if err != nil {
		return err
	}
	return WriteAtomic(path, data, true)
}

// Attribute types, re-exported from the binding.
const (
	AttrFloat   = pb.AttributeProto_FLOAT
	AttrInt     = pb.AttributeProto_INT
	AttrString  = pb.AttributeProto_STRING
	AttrTensor  = pb.AttributeProto_TENSOR
	AttrFloats  = pb.AttributeProto_FLOATS
	AttrInts    = pb.AttributeProto_INTS
	AttrStrings = pb.AttributeProto_STRINGS
)

// Shape and type messages, for writing value infos.
type (
	TensorShapeProto     = pb.TensorShapeProto
	TensorShapeDimension = pb.TensorShapeProto_Dimension
	DimValue             = pb.TensorShapeProto_Dimension_DimValue
	DimParam             = pb.TensorShapeProto_Dimension_DimParam
	TypeTensor           = pb.TypeProto_TensorType
	TypeProtoTensor      = pb.TypeProto_Tensor
)

// DimNames spells a declared shape's dimensions: the size of a fixed one,
// the symbol of a symbolic one (N, H, W), "?" for one left unknown.
func DimNames(sp *TensorShapeProto) []string {
	var names []string
	for _, d := range sp.GetDim() {
		switch {
		case d.GetDimValue() > 0:
			names = append(names, strconv.FormatInt(d.GetDimValue(), 10))
		case d.GetDimParam() != "":
			names = append(names, d.GetDimParam())
		default:
			names = append(names, "?")
		}
	}
	return names
}

// ShapeString is a declared shape as [N,3,H,W] (see DimNames).
func ShapeString(sp *TensorShapeProto) string {
	return "[" + strings.Join(DimNames(sp), ",") + "]"
}
