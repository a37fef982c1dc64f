package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ReadNpyFile reads a NumPy .npy file (format 1.0-3.0, C order, little
// endian float32, float64, int32 or int64).
func ReadNpyFile(path string) (*Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := DecodeNpy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// DecodeNpy decodes the bytes of a .npy file.
func DecodeNpy(data []byte) (*Tensor, error) {
	if len(data) < 10 || string(data[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("not a .npy file")
	}
	var hlen, start int
	switch data[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(data[8:])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, fmt.Errorf("truncated .npy header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(data[8:])), 12
	default:
		return nil, fmt.Errorf(".npy format version %d is not supported", data[6])
	}
	if hlen < 0 || start+hlen > len(data) {
		return nil, fmt.Errorf("truncated .npy header")
	}
	header := string(data[start : start+hlen])
	body := data[start+hlen:]
	descr := npyField(header, "descr")
	if strings.Contains(npyField(header, "fortran_order"), "True") {
		return nil, fmt.Errorf(".npy in Fortran order is not supported; save it with numpy.ascontiguousarray")
	}
	shapeStr := strings.Trim(npyField(header, "shape"), "() ")
	var shape []int
	for _, p := range strings.Split(shapeStr, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		d, err := strconv.Atoi(p)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad .npy shape %q", shapeStr)
		}
		shape = append(shape, d)
	}
	n64, err := declaredElems(toInt64s(shape))
	if err != nil {
		return nil, err
	}
	descr = strings.Trim(descr, "'\" ")
	size := map[string]int{"<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8}[descr]
	if size == 0 {
		return nil, fmt.Errorf(".npy dtype %q is not supported (float32, float64, int32, int64 little endian)", descr)
	}
	// Compare element counts, not byte counts: n64*size can overflow, and
	// a shape of 2^62 float32s would then "need" 0 bytes.
	if int64(len(body))%int64(size) != 0 || int64(len(body))/int64(size) != n64 {
		return nil, fmt.Errorf(".npy data holds %d bytes, shape %v of %s needs %d elements of %d bytes", len(body), shape, descr, n64, size)
	}
	n := int(n64)
	le := binary.LittleEndian
	switch descr {
	case "<f4":
		t := NewFloat(shape, nil)
		for i := 0; i < n; i++ {
			t.F[i] = math.Float32frombits(le.Uint32(body[4*i:]))
		}
		return t, nil
	case "<f8":
		t := NewFloat(shape, nil)
		for i := 0; i < n; i++ {
			t.F[i] = float32(math.Float64frombits(le.Uint64(body[8*i:])))
		}
		return t, nil
	case "<i4":
		t := NewInt(shape, nil)
		for i := 0; i < n; i++ {
			t.I[i] = int64(int32(le.Uint32(body[4*i:])))
		}
		return t, nil
	}
	t := NewInt(shape, nil)
	for i := 0; i < n; i++ {
		t.I[i] = int64(le.Uint64(body[8*i:]))
	}
	return t, nil
}

func toInt64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// npyField extracts the raw value of key from a .npy header dict.
func npyField(header, key string) string {
	i := strings.Index(header, "'"+key+"'")
	if i < 0 {
		return ""
	}
	rest := header[i+len(key)+2:]
	rest = strings.TrimLeft(rest, " :")
	if strings.HasPrefix(rest, "(") {
		if j := strings.Index(rest, ")"); j >= 0 {
			return rest[:j+1]
		}
	}
	if j := strings.IndexAny(rest, ",}"); j >= 0 {
		return rest[:j]
	}
	return rest
}

// EncodeNpy writes t as a NumPy .npy file (format 1.0, little endian,
// C order): float32 as <f4, int64 as <i8.
func EncodeNpy(t *Tensor) []byte {
	descr, size := "<f4", 4
	if t.DType == Int64 {
		descr, size = "<i8", 8
	}
	dims := ""
	for _, d := range t.Shape {
		dims += strconv.Itoa(d) + ", "
	}
	header := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + strings.TrimSuffix(dims, " ") + "), }"
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	b = append(b, header...)
	b = slices.Grow(b, size*t.Len())
	for _, v := range t.F {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	for _, v := range t.I {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}
