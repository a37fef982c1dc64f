package dataset

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// dim is a fixed dimension, or a symbolic one when v is a string.
func dim(v any) *onnx.TensorShapeDimension {
	if s, ok := v.(string); ok {
		return &onnx.TensorShapeDimension{Value: &onnx.DimParam{DimParam: s}}
	}
	return &onnx.TensorShapeDimension{Value: &onnx.DimValue{DimValue: int64(v.(int))}}
}

// imageModel is a model with one float input of the given shape (no
// nodes: PreprocessFor reads only inputs and metadata) and, unless meta
// is nil, preprocessing metadata.
func imageModel(t *testing.T, meta any, shape ...any) *onnx.Model {
	t.Helper()
	var dims []*onnx.TensorShapeDimension
	for _, d := range shape {
		dims = append(dims, dim(d))
	}
	in := &onnx.ValueInfoProto{Name: "pixels", Type: &onnx.TypeProto{Value: &onnx.TypeTensor{TensorType: &onnx.TypeProtoTensor{
		ElemType: 1, Shape: &onnx.TensorShapeProto{Dim: dims},
	}}}}
	mp := &onnx.ModelProto{Graph: &onnx.GraphProto{Input: []*onnx.ValueInfoProto{in}}}
	if meta != nil {
		s, ok := meta.(string)
		if !ok {
			b, err := json.Marshal(meta)
			if err != nil {
				t.Fatal(err)
			}
			s = string(b)
		}
		mp.MetadataProps = append(mp.MetadataProps, &onnx.StringStringEntryProto{Key: onnx.KeyPreprocessing, Value: s})
	}
	return &onnx.Model{Proto: mp, Path: "m.onnx"}
}

func TestPreprocessFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []any
		meta  any // preprocessing metadata, nil for none
		ov    Overrides
		want  Preprocess
	}{
		{name: "NCHW defaults", shape: []any{"batch", 3, 224, 224},
			want: Preprocess{Layout: NCHW, Channels: 3, Height: 224, Width: 224, Resize: 224, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "NHWC gray defaults", shape: []any{1, 28, 32, 1},
			want: Preprocess{Layout: NHWC, Channels: 1, Height: 28, Width: 32, Resize: 32, Scale: 1.0 / 255,
				Mean: []float32{0}, Std: []float32{1}}},
		{name: "NHWC color", shape: []any{"n", 64, 48, 3},
			want: Preprocess{Layout: NHWC, Channels: 3, Height: 64, Width: 48, Resize: 64, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "metadata", shape: []any{"batch", 3, 32, 32},
			meta: onnx.Preprocessing{Layout: "NCHW", Channels: 3, ColorOrder: "BGR", Height: 32, Width: 32, Resize: 36,
				Crop: "center", Scale: 1, Mean: []float64{0.3162}, Std: []float64{0.3443}},
			want: Preprocess{Layout: NCHW, Channels: 3, BGR: true, Height: 32, Width: 32, Resize: 36, Scale: 1,
				Mean: []float32{0.3162, 0.3162, 0.3162}, Std: []float32{0.3443, 0.3443, 0.3443}}},
		{name: "partial metadata", shape: []any{"batch", 3, 32, 32}, meta: `{"mean":[0.5,0.5,0.5]}`,
			want: Preprocess{Layout: NCHW, Channels: 3, Height: 32, Width: 32, Resize: 32, Scale: 1.0 / 255,
				Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "metadata layout wins", shape: []any{"batch", 3, 5, 3}, meta: `{"layout":"NHWC"}`,
			want: Preprocess{Layout: NHWC, Channels: 3, Height: 3, Width: 5, Resize: 5, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "free size given", shape: []any{"N", 3, "H", "W"}, ov: Overrides{Shapes: map[string][]int{"pixels": {8, 3, 48, 192}}},
			want: Preprocess{Layout: NCHW, Channels: 3, Height: 48, Width: 192, Resize: 192, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "free size from metadata", shape: []any{"N", 3, "H", "W"}, meta: `{"height":40,"width":40,"resize":44}`,
			want: Preprocess{Layout: NCHW, Channels: 3, Height: 40, Width: 40, Resize: 44, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "given size wins over metadata", shape: []any{"N", 3, "H", "W"}, meta: `{"height":40,"width":40}`,
			ov: Overrides{Shapes: map[string][]int{"pixels": {1, 3, 64, 64}, "other": {1}}},
			want: Preprocess{Layout: NCHW, Channels: 3, Height: 64, Width: 64, Resize: 64, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "free size from resize", shape: []any{"N", "H", "W", 3}, ov: Overrides{Resize: 96},
			want: Preprocess{Layout: NHWC, Channels: 3, Height: 96, Width: 96, Resize: 96, Scale: 1.0 / 255,
				Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}},
		{name: "free width", shape: []any{"N", 1, 32, "W"}, ov: Overrides{Shapes: map[string][]int{"pixels": {1, 1, 32, 100}}},
			want: Preprocess{Layout: NCHW, Channels: 1, Height: 32, Width: 100, Resize: 100, Scale: 1.0 / 255,
				Mean: []float32{0}, Std: []float32{1}}},
		{name: "overrides", shape: []any{"batch", 3, 32, 32},
			meta: onnx.Preprocessing{Resize: 36, Scale: 1.0 / 255, Mean: []float64{0.3}, Std: []float64{0.3}},
			ov:   Overrides{Resize: 40, Mean: []float32{0.1, 0.2, 0.3}, Std: []float32{2}},
			want: Preprocess{Layout: NCHW, Channels: 3, Height: 32, Width: 32, Resize: 40, Scale: 1.0 / 255,
				Mean: []float32{0.1, 0.2, 0.3}, Std: []float32{2, 2, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PreprocessFor(imageModel(t, tc.meta, tc.shape...), tc.ov)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", *p) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got  %+v\nwant %+v", *p, tc.want)
			}
		})
	}
}

func TestPreprocessForErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []any
		meta  any
		ov    Overrides
		want  string
	}{
		{"2-D", []any{"batch", 10}, nil, Overrides{},
			`m.onnx: input "pixels": shape [batch,10] is 2-D, not an image tensor`},
		{"symbolic size", []any{"batch", 3, "height", "width"}, nil, Overrides{},
			"m.onnx: input \"pixels\": shape [batch,3,height,width] leaves the image size free; choose one: the input's shape (Shapes; `--input-shape pixels=1x3x224x224` on the command line), or a resize to N x N crops (Resize; `--resize N`)"},
		{"symbolic width", []any{"batch", "h", 32, 1}, nil, Overrides{},
			"`--input-shape pixels=1x224x32x1`"},
		{"given size against fixed", []any{1, 3, 32, 32}, nil, Overrides{Shapes: map[string][]int{"pixels": {1, 3, 48, 32}}},
			`m.onnx: input "pixels": the shape given for it, [1 3 48 32], is 48x32; the model fixes 32x32`},
		{"given channels", []any{"n", 3, "h", "w"}, nil, Overrides{Shapes: map[string][]int{"pixels": {1, 1, 48, 32}}},
			`the shape given for it, [1 1 48 32], has 1 channels; the model's input has 3 (NCHW)`},
		{"given rank", []any{"n", 3, "h", "w"}, nil, Overrides{Shapes: map[string][]int{"pixels": {3, 48, 32}}},
			`the shape given for it, [3 48 32], is not 4-D`},
		{"no channels", []any{1, 5, 7, 9}, nil, Overrides{},
			`m.onnx: input "pixels": shape [1,5,7,9] is not an image tensor: neither its second (NCHW) nor its last (NHWC) dimension is 1 or 3`},
		{"mean length", []any{1, 3, 8, 8}, nil, Overrides{Mean: []float32{0.1, 0.2}},
			"m.onnx: preprocessing: mean 0.1,0.2 has 2 values; give 3 (one per channel) or 1"},
		{"std zero", []any{1, 3, 8, 8}, nil, Overrides{Std: []float32{1, 0, 1}},
			"m.onnx: preprocessing: std 1,0,1: a standard deviation of 0 divides by zero"},
		{"small resize", []any{1, 3, 8, 10}, nil, Overrides{Resize: 9},
			"m.onnx: preprocessing: resize 9 is smaller than the 8x10 input; give a resize of at least 10"},
		{"metadata size", []any{1, 3, 8, 8}, `{"height":16,"width":16}`, Overrides{},
			`m.onnx: metadata "preprocessing": size 16x16, but the input is 8x8`},
		{"metadata channels", []any{1, 3, 8, 8}, `{"channels":1}`, Overrides{},
			`m.onnx: metadata "preprocessing": 1 channels, but the input has 3`},
		{"metadata layout", []any{1, 3, 8, 8}, `{"layout":"NHWC"}`, Overrides{},
			`m.onnx: input "pixels": shape [1,3,8,8] read as NHWC has 8 channels, not 1 or 3`},
		{"metadata color", []any{1, 3, 8, 8}, `{"color_order":"YUV"}`, Overrides{},
			`m.onnx: metadata "preprocessing": color order "YUV": want RGB, BGR or gray`},
		{"metadata json", []any{1, 3, 8, 8}, `[1,2]`, Overrides{},
			`m.onnx: metadata "preprocessing" is not a preprocessing object`},
		{"metadata gray", []any{1, 3, 8, 8}, `{"color_order":"gray"}`, Overrides{},
			`m.onnx: metadata "preprocessing": color order "gray", but the input has 3 channels`},
		{"gray mean", []any{1, 1, 8, 8}, nil, Overrides{Mean: []float32{0.1, 0.2, 0.3}},
			"mean 0.1,0.2,0.3 has 3 values; give 1 (one per channel) or 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PreprocessFor(imageModel(t, tc.meta, tc.shape...), tc.ov)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestPreprocessForBackbone(t *testing.T) {
	// the shipped model and sample are part of the repository: missing
	// files are a failure, not a reason to skip
	path := filepath.Join(onnxtest.RepoRoot(), "models", "backbone.onnx")
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := PreprocessFor(m, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Layout != NCHW || p.Channels != 3 || p.Height != 32 || p.Width != 32 || p.Resize != 32 || p.BGR {
		t.Errorf("backbone preprocessing %+v", *p)
	}
	// The shipped sample's 32x32 gray PNGs reach the model exactly as the
	// recipe's to_input computes them: replicated, *scale, (x-mean)/std.
	png := filepath.Join(onnxtest.RepoRoot(), "models", "sample", "train", "Bag", "000.png")
	img, err := DecodeFile(png, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect.Dx() != 32 || g.Rect.Dy() != 32 {
		t.Fatalf("%s: %T %v, want a 32x32 gray image", png, img, img.Bounds())
	}
	dst := make([]float32, p.Size())
	if err := p.Tensor(img, dst); err != nil {
		t.Fatal(err)
	}
	for c := range 3 {
		for i, v := range g.Pix {
			x := float32(float32(v) * float32(1.0/255))
			want := (x - p.Mean[c]) / p.Std[c]
			if got := dst[c*1024+i]; got != want {
				t.Fatalf("channel %d pixel %d: %g, want %g", c, i, got, want)
			}
		}
	}
}

func TestShapeSize(t *testing.T) {
	p := &Preprocess{Layout: NHWC, Channels: 1, Height: 4, Width: 5}
	if got := p.Shape(7); !slices.Equal(got, []int{7, 4, 5, 1}) {
		t.Errorf("NHWC shape %v", got)
	}
	if p.Size() != 20 {
		t.Errorf("size %d, want 20", p.Size())
	}
	p = &Preprocess{Height: 4, Width: 5} // NCHW, 3 channels by default
	if got := p.Shape(2); !slices.Equal(got, []int{2, 3, 4, 5}) {
		t.Errorf("NCHW shape %v", got)
	}
	if p.Size() != 60 {
		t.Errorf("size %d, want 60", p.Size())
	}
}

// rgb2x2 has pixels (10,20,30) (40,50,60) / (70,80,90) (100,110,120).
func rgb2x2() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := range 4 {
		v := uint8(30 * i)
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = v+10, v+20, v+30, 255
	}
	return img
}

// Values chosen so that every step is exact in float32.
var exact = Preprocess{Height: 2, Width: 2, Scale: 0.5, Mean: []float32{1, 2, 3}, Std: []float32{2, 4, 0.5}}

func TestTensorExact(t *testing.T) {
	// Channel c of pixel v: (v/2 - mean[c]) / std[c].
	r := []float32{2, 9.5, 17, 24.5}    // (10,40,70,100)/2-1, /2
	g := []float32{2, 5.75, 9.5, 13.25} // (20,50,80,110)/2-2, /4
	b := []float32{24, 54, 84, 114}     // (30,60,90,120)/2-3, /0.5
	for _, tc := range []struct {
		name   string
		layout string
		bgr    bool
		want   []float32
	}{
		{"NCHW", NCHW, false, slices.Concat(r, g, b)},
		{"NHWC", NHWC, false, []float32{r[0], g[0], b[0], r[1], g[1], b[1], r[2], g[2], b[2], r[3], g[3], b[3]}},
		// BGR swaps the pixels' channels; mean and std stay per position.
		{"NCHW BGR", NCHW, true, []float32{
			(15 - 1) / 2.0, (30 - 1) / 2.0, (45 - 1) / 2.0, (60 - 1) / 2.0,
			(10 - 2) / 4.0, (25 - 2) / 4.0, (40 - 2) / 4.0, (55 - 2) / 4.0,
			(5 - 3) / 0.5, (20 - 3) / 0.5, (35 - 3) / 0.5, (50 - 3) / 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := exact
			p.Layout, p.BGR = tc.layout, tc.bgr
			dst := make([]float32, p.Size())
			if err := p.Tensor(rgb2x2(), dst); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dst, tc.want) {
				t.Errorf("got  %v\nwant %v", dst, tc.want)
			}
		})
	}
}

func TestTensorGray(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 2, 2))
	copy(gray.Pix, []uint8{10, 40, 70, 100})

	// Gray to RGB replicates.
	p := exact
	dst := make([]float32, p.Size())
	if err := p.Tensor(gray, dst); err != nil {
		t.Fatal(err)
	}
	want := []float32{2, 9.5, 17, 24.5, 0.75, 4.5, 8.25, 12, 4, 34, 64, 94}
	if !slices.Equal(dst, want) {
		t.Errorf("gray to RGB: got %v\nwant %v", dst, want)
	}

	// Gray to gray is exact; RGB to gray is luma.
	p = Preprocess{Channels: 1, Height: 2, Width: 2, Scale: 1, Mean: []float32{0}, Std: []float32{1}}
	dst = make([]float32, p.Size())
	if err := p.Tensor(gray, dst); err != nil {
		t.Fatal(err)
	}
	if want := []float32{10, 40, 70, 100}; !slices.Equal(dst, want) {
		t.Errorf("gray to gray: got %v, want %v", dst, want)
	}
	if err := p.Tensor(rgb2x2(), dst); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		r, g, b := float64(10+30*i), float64(20+30*i), float64(30+30*i)
		if want := 0.299*r + 0.587*g + 0.114*b; math.Abs(float64(v)-want) > 1e-4 {
			t.Errorf("RGB to gray pixel %d: %g, want %g", i, v, want)
		}
	}
}

func TestTensorCenterCrop4x4(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	p := Preprocess{Channels: 1, Height: 2, Width: 2, Resize: 4, Scale: 1, Mean: []float32{0}, Std: []float32{1}}
	dst := make([]float32, 4)
	if err := p.Tensor(img, dst); err != nil {
		t.Fatal(err)
	}
	if want := []float32{5, 6, 9, 10}; !slices.Equal(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}
}

// A 32x32 PNG into a 32x32 model is not resampled: each value is exactly
// pixel*scale, normalized.
func TestTensorNoResampling(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Intn(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	path := filepath.Join(t.TempDir(), "x.png")
	writePNG(t, path, img)
	m := imageModel(t, onnx.Preprocessing{Resize: 32, Scale: 1.0 / 255, Mean: []float64{0.3162}, Std: []float64{0.3443}},
		"batch", 3, 32, 32)
	p, err := PreprocessFor(m, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, p.Size())
	if err := p.Tensor(dec, dst); err != nil {
		t.Fatal(err)
	}
	scale, mean, std := float32(1.0/255), float32(0.3162), float32(0.3443)
	for c := range 3 {
		for i := range 32 * 32 {
			x := float32(float32(img.Pix[4*i+c]) * scale)
			if got, want := dst[c*1024+i], (x-mean)/std; got != want {
				t.Fatalf("channel %d pixel %d: %g, want %g", c, i, got, want)
			}
		}
	}
}

func TestResizeGeometry(t *testing.T) {
	for _, tc := range []struct{ w, h, r, ww, wh int }{
		{40, 20, 10, 20, 10},
		{20, 40, 10, 10, 20},
		{33, 10, 10, 33, 10},
		{100, 30, 16, 53, 16}, // 16*100/30 = 53.3, truncated
		{30, 30, 7, 7, 7},
	} {
		if w, h := resizeDims(tc.w, tc.h, tc.r); w != tc.ww || h != tc.wh {
			t.Errorf("resize %dx%d to %d: %dx%d, want %dx%d", tc.w, tc.h, tc.r, w, h, tc.ww, tc.wh)
		}
	}
	// round((m-n)/2), halves to even, as Python's round in CenterCrop.
	for _, tc := range []struct{ m, n, want int }{
		{20, 10, 5}, {11, 10, 0}, {13, 10, 2}, {15, 10, 2}, {17, 10, 4}, {10, 10, 0},
	} {
		if got := cropOffset(tc.m, tc.n); got != tc.want {
			t.Errorf("crop %d of %d starts at %d, want %d", tc.n, tc.m, got, tc.want)
		}
	}
}

// bands is a 40x20 gray image whose column x has value f(x).
func bands(f func(x int) uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 40, 20))
	for y := range 20 {
		for x := range 40 {
			img.Pix[y*40+x] = f(x)
		}
	}
	return img
}

func TestTensorResizeCrop40x20(t *testing.T) {
	ident := Preprocess{Channels: 1, Scale: 1, Mean: []float32{0}, Std: []float32{1}}

	// Shorter side 20 already: no resampling; the 20x20 crop starts at
	// column 10.
	p := ident
	p.Height, p.Width, p.Resize = 20, 20, 20
	dst := make([]float32, p.Size())
	if err := p.Tensor(bands(func(x int) uint8 { return uint8(x) }), dst); err != nil {
		t.Fatal(err)
	}
	for y := range 20 {
		for x := range 20 {
			if got := dst[y*20+x]; got != float32(x+10) {
				t.Fatalf("pixel (%d,%d): %g, want %d", x, y, got, x+10)
			}
		}
	}

	// Resize 10: 40x20 becomes 20x10 and the 6-wide crop starts at
	// column 7, that is source columns 14 to 26. Columns 0-9 and 30-39
	// are white; what the bilinear filter (2 source pixels either side of
	// a destination pixel's center when halving) reads of them must not
	// reach the crop, and the black middle must arrive exactly.
	p = ident
	p.Height, p.Width, p.Resize = 10, 6, 10
	white := bands(func(x int) uint8 {
		if x < 10 || x >= 30 {
			return 255
		}
		return 0
	})
	dst = make([]float32, p.Size())
	if err := p.Tensor(white, dst); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		if v != 0 {
			t.Fatalf("pixel %d: %g, want 0", i, v)
		}
	}
	// A 10-wide crop starts at column 5 and reaches into the white bands
	// symmetrically.
	p.Width = 10
	dst = make([]float32, p.Size())
	if err := p.Tensor(white, dst); err != nil {
		t.Fatal(err)
	}
	row := dst[:10]
	if row[0] == 0 || row[9] == 0 || row[0] != row[9] || row[4] != 0 || row[5] != 0 {
		t.Errorf("10-wide crop row %v: want white edges, equal, and a black middle", row)
	}
	for y := 1; y < 10; y++ {
		if !slices.Equal(dst[y*10:y*10+10], row) {
			t.Errorf("row %d %v differs from row 0 %v", y, dst[y*10:y*10+10], row)
		}
	}

	// A uniform image stays uniform through resampling.
	p = ident
	p.Height, p.Width, p.Resize = 7, 7, 9
	dst = make([]float32, p.Size())
	if err := p.Tensor(bands(func(int) uint8 { return 77 }), dst); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		if v != 77 {
			t.Fatalf("pixel %d: %g, want 77", i, v)
		}
	}
}

func TestTensor16BitAndAlpha(t *testing.T) {
	p := Preprocess{Channels: 1, Height: 2, Width: 2, Scale: 1, Mean: []float32{0}, Std: []float32{1}}
	g16 := image.NewGray16(image.Rect(0, 0, 2, 2))
	g16.SetGray16(0, 0, color.Gray16{0x1234})
	g16.SetGray16(1, 0, color.Gray16{0xffff})
	dst := make([]float32, 4)
	if err := p.Tensor(g16, dst); err != nil {
		t.Fatal(err)
	}
	if want := []float32{0x12, 0xff, 0, 0}; !slices.Equal(dst, want) {
		t.Errorf("16-bit: got %v, want %v", dst, want)
	}
	// Transparent pixels are composited over black.
	n := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	n.SetNRGBA(0, 0, color.NRGBA{200, 200, 200, 0})
	n.SetNRGBA(1, 0, color.NRGBA{200, 200, 200, 255})
	if err := p.Tensor(n, dst); err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 200, 0, 0}; !slices.Equal(dst, want) {
		t.Errorf("alpha: got %v, want %v", dst, want)
	}
}

func TestTensorErrors(t *testing.T) {
	img := rgb2x2()
	for _, tc := range []struct {
		p    Preprocess
		dst  int
		want string
	}{
		{Preprocess{Height: 2, Width: 2}, 5, "destination holds 5 floats, an image's tensor 12"},
		{Preprocess{Height: 2, Width: 2, Layout: "CHW"}, 12, `layout "CHW": want NCHW or NHWC`},
		{Preprocess{Height: 2, Width: 2, Channels: 4}, 16, "4 channels"},
		{Preprocess{Height: 2, Width: 2, Channels: 1, BGR: true}, 4, "BGR color order needs 3 channels"},
		{Preprocess{Width: 2}, 0, "input size 0x2"},
		{Preprocess{Height: 2, Width: 2, Std: []float32{0}}, 12, "std 0: a standard deviation of 0"},
		{Preprocess{Height: 2, Width: 2, Mean: []float32{float32(math.NaN())}}, 12, "not a finite number"},
	} {
		err := tc.p.Tensor(img, make([]float32, tc.dst))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.p, err, tc.want)
		}
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	p := &Preprocess{Height: 224, Width: 224}
	m, err := p.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	want := `{"layout":"NCHW","channels":3,"color_order":"RGB","height":224,"width":224,"resize":224,"crop":"center","scale":0.003921569,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}`
	if string(b) != want {
		t.Errorf("metadata %s\nwant     %s", b, want)
	}
	q, err := PreprocessFor(imageModel(t, string(b), 1, 3, 224, 224), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Scale != DefaultScale || !slices.Equal(q.Mean, ImageNetMean()) || !slices.Equal(q.Std, ImageNetStd()) {
		t.Errorf("read back %+v", *q)
	}
	g := &Preprocess{Channels: 1, Height: 8, Width: 8}
	if m, err = g.Metadata(); err != nil || m.ColorOrder != "gray" {
		t.Errorf("gray metadata %+v, %v", m, err)
	}
	if got, err := PreprocessFor(imageModel(t, m, 1, 1, 8, 8), Overrides{}); err != nil || got.String() != g.String() {
		t.Errorf("gray metadata read back %v, %v; want %v", got, err, g)
	}
	if got, want := q.String(), "NCHW 3x224x224 RGB, resize 224, center crop, scale 1/255, mean 0.485,0.456,0.406, std 0.229,0.224,0.225"; got != want {
		t.Errorf("String() = %q\nwant       %q", got, want)
	}
}

// encodeAll encodes img in every format the standard library and
// x/image can write.
func encodeAll(t *testing.T, img image.Image) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, enc := range map[string]func(*bytes.Buffer) error{
		"png":  func(b *bytes.Buffer) error { return png.Encode(b, img) },
		"jpg":  func(b *bytes.Buffer) error { return jpeg.Encode(b, img, &jpeg.Options{Quality: 100}) },
		"bmp":  func(b *bytes.Buffer) error { return bmp.Encode(b, img) },
		"gif":  func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) },
		"webp": func(b *bytes.Buffer) error { return writeWebP(b, img) },
	} {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			t.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	return out
}

// writeWebP writes img's top left pixel as a 1x1 lossless WebP: a VP8L
// stream whose five prefix codes each hold one symbol, so that the pixel
// takes no bits at all.
func writeWebP(b *bytes.Buffer, img image.Image) error {
	c := color.NRGBAModel.Convert(img.At(img.Bounds().Min.X, img.Bounds().Min.Y)).(color.NRGBA)
	var vp8l []byte
	n := 0 // bits written
	put := func(v uint64, width int) {
		for i := range width {
			if n%8 == 0 {
				vp8l = append(vp8l, 0)
			}
			vp8l[n/8] |= byte(v>>i&1) << (n % 8)
			n++
		}
	}
	put(0x2f, 8)                                         // signature
	put(0, 14)                                           // width-1
	put(0, 14)                                           // height-1
	put(1, 1)                                            // alpha used
	put(0, 3)                                            // version
	put(0, 1)                                            // no transform
	put(0, 1)                                            // no color cache
	put(0, 1)                                            // no meta prefix codes
	for _, sym := range []uint8{c.G, c.R, c.B, c.A, 0} { // green, red, blue, alpha, distance
		put(1, 1) // simple code
		put(0, 1) // of one symbol
		put(1, 1) // of 8 bits
		put(uint64(sym), 8)
	}
	chunk := append([]byte("VP8L"), binary.LittleEndian.AppendUint32(nil, uint32(len(vp8l)))...)
	chunk = append(chunk, vp8l...)
	if len(vp8l)%2 == 1 {
		chunk = append(chunk, 0)
	}
	b.WriteString("RIFF")
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(4+len(chunk))))
	b.WriteString("WEBP")
	b.Write(chunk)
	return nil
}

func TestDecodeFile(t *testing.T) {
	// Six 8x8 blocks of saturated colors, so that JPEG's chroma
	// subsampling leaves the blocks' centers alone.
	cols := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}, {0, 0, 0, 255}, {255, 255, 0, 255}}
	img := image.NewNRGBA(image.Rect(0, 0, 24, 16))
	for y := range 16 {
		for x := range 24 {
			img.SetNRGBA(x, y, cols[y/8*3+x/8])
		}
	}
	dir := t.TempDir()
	for name, data := range encodeAll(t, img) {
		// The extension does not matter: formats are told by content.
		path := filepath.Join(dir, "img_"+name+".bin")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFile(path, 0)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		wantSize, points := image.Pt(24, 16), []image.Point{{4, 4}, {12, 4}, {20, 4}, {4, 12}, {12, 12}, {20, 12}}
		if name == "webp" {
			wantSize, points = image.Pt(1, 1), []image.Point{{0, 0}} // writeWebP keeps one pixel
		}
		if got.Bounds().Size() != wantSize {
			t.Errorf("%s: size %v, want %v", name, got.Bounds().Size(), wantSize)
			continue
		}
		tol := 0
		if name == "jpg" {
			tol = 3
		}
		for i, pt := range points {
			c := color.NRGBAModel.Convert(got.At(got.Bounds().Min.X+pt.X, got.Bounds().Min.Y+pt.Y)).(color.NRGBA)
			w := cols[i]
			if d := max(diff(c.R, w.R), diff(c.G, w.G), diff(c.B, w.B)); d > tol || c.A != 255 {
				t.Errorf("%s: pixel %v %v, want %v", name, pt, c, w)
			}
		}
	}
}

func diff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestDecodeFileErrors(t *testing.T) {
	dir := t.TempDir()
	var good bytes.Buffer
	if err := png.Encode(&good, rgb2x2()); err != nil {
		t.Fatal(err)
	}
	huge := bytes.Clone(good.Bytes())
	binary.BigEndian.PutUint32(huge[16:], 1<<20) // IHDR width and height
	binary.BigEndian.PutUint32(huge[20:], 1<<20)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"text.png", []byte("hello"), "not a JPEG, PNG, BMP, GIF or WebP image"},
		{"cut.png", good.Bytes()[:40], "PNG: unexpected EOF"},
		{"cut.jpg", []byte("\xff\xd8\xff"), "JPEG: "},
		{"huge.png", huge, "PNG: image is 1048576x1048576 = 1099511627776 pixels, above the pixel limit of 50000000"},
		{"empty.gif", nil, "not a JPEG"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := DecodeFile(path, 0)
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q naming the file", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeFile(filepath.Join(dir, "missing.png"), 0); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: error %v", err)
	}
	// 8000x7000 = 56 million pixels: above the default of 50 million,
	// below a limit of 60 million (then the missing pixel data fails)
	big := bytes.Clone(good.Bytes())
	binary.BigEndian.PutUint32(big[16:], 8000)
	binary.BigEndian.PutUint32(big[20:], 7000)
	binary.BigEndian.PutUint32(big[29:], crc32.ChecksumIEEE(big[12:29]))
	path := filepath.Join(dir, "big.png")
	os.WriteFile(path, big, 0o644)
	if _, err := DecodeFile(path, 0); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("56 Mpixel image at the default limit: %v", err)
	}
	if _, err := DecodeFile(path, 60_000_000); err == nil || errors.Is(err, ErrTooManyPixels) {
		t.Errorf("56 Mpixel image under a 60 Mpixel limit: %v, want a decoding error", err)
	}
	ds := filepath.Join(dir, "ds")
	for _, c := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(ds, c), 0o755)
		os.WriteFile(filepath.Join(ds, c, "ok.png"), good.Bytes(), 0o644)
	}
	os.WriteFile(filepath.Join(ds, "a", "big.png"), big, 0o644)
	d, err := LoadDataset(DataConfig{Dir: ds})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Skipped) != 1 || !errors.Is(d.Skipped[0].Err, ErrTooManyPixels) || !strings.Contains(d.Skipped[0].Err.Error(), "big.png") {
		t.Errorf("data set with a 56 Mpixel image: skipped %v", d.Skipped)
	}
	if d, err := LoadDataset(DataConfig{Dir: ds, MaxPixels: 60_000_000}); err != nil || len(d.Skipped) != 0 {
		t.Errorf("with MaxPixels 60M the header passes: %v, skipped %v", err, d.Skipped)
	}
}

// samples writes n distinct 6x5 PNGs and returns them as samples.
func samples(t *testing.T, dir string, n int) []Sample {
	var out []Sample
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 6, 5))
		for j := range img.Pix {
			img.Pix[j] = uint8(i*17 + j)
		}
		path := filepath.Join(dir, fmt.Sprintf("%02d.png", i))
		writePNG(t, path, img)
		out = append(out, Sample{Path: path, Label: i % 3})
	}
	return out
}

func TestLoadTensorsOrder(t *testing.T) {
	ss := samples(t, t.TempDir(), 23)
	p := &Preprocess{Height: 4, Width: 4}
	var first []float32
	for _, workers := range []int{1, 2, 5, 0, 64} {
		data, kept, skipped, err := LoadTensors(ss, p, workers, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(skipped) != 0 || !slices.Equal(kept, ss) || len(data) != len(ss)*p.Size() {
			t.Fatalf("%d workers: %d kept, %v skipped, %d floats", workers, len(kept), skipped, len(data))
		}
		if first == nil {
			first = data
			// Each image's tensor is what Tensor makes of it.
			one := make([]float32, p.Size())
			for i, s := range ss {
				img, err := DecodeFile(s.Path, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Tensor(img, one); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(one, data[i*p.Size():(i+1)*p.Size()]) {
					t.Fatalf("image %d differs from its Tensor", i)
				}
			}
		} else if !slices.Equal(first, data) {
			t.Errorf("%d workers: different data than 1 worker", workers)
		}
	}
}

func TestLoadTensorsCorrupt(t *testing.T) {
	dir := t.TempDir()
	ss := samples(t, dir, 6)
	good, err := os.ReadFile(ss[2].Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 4} { // truncated PNGs
		if err := os.WriteFile(ss[i].Path, good[:len(good)/2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &Preprocess{Height: 4, Width: 4}
	all, _, _, err := LoadTensors(slices.Concat(ss[:2], ss[3:4], ss[5:]), p, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	data, kept, skipped, err := LoadTensors(ss, p, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Concat(ss[:2], ss[3:4], ss[5:]); !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	if !slices.Equal(data, all) {
		t.Errorf("data of the kept images differ from loading them alone")
	}
	if len(skipped) != 2 || skipped[0].Path != ss[2].Path || skipped[1].Path != ss[4].Path ||
		!strings.Contains(skipped[0].Err.Error(), ss[2].Path+": PNG: ") {
		t.Errorf("skipped %v, want %s and %s", skipped, ss[2].Path, ss[4].Path)
	}
	for _, workers := range []int{1, 4} {
		_, _, _, err = LoadTensors(ss, p, workers, true)
		if err == nil || !strings.HasPrefix(err.Error(), ss[2].Path+": PNG: ") {
			t.Errorf("strict, %d workers: error %v, want the first bad file %s", workers, err, ss[2].Path)
		}
	}
}

// TestLoadTensorsInto: a buffer large enough is used, whatever it held,
// and the tensors are LoadTensors'; a small one is not.
func TestLoadTensorsInto(t *testing.T) {
	dir := t.TempDir()
	ss := samples(t, dir, 5)
	if err := os.WriteFile(ss[1].Path, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Preprocess{Height: 4, Width: 4}
	want, wantKept, _, err := LoadTensors(ss, p, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 3, len(ss)*p.Size()+7)
	for i := range buf[:cap(buf)] {
		buf[:cap(buf)][i] = float32(math.NaN())
	}
	for _, b := range [][]float32{buf, buf[: 0 : len(ss)*p.Size()-1], nil} {
		data, kept, skipped, err := LoadTensorsInto(b, ss, p, 2, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(data, want) || !slices.Equal(kept, wantKept) || len(skipped) != 1 {
			t.Errorf("buffer of capacity %d: %d floats, kept %v, skipped %v; want LoadTensors' %d floats, %v",
				cap(b), len(data), kept, skipped, len(want), wantKept)
		}
		if reused := cap(b) > 0 && &data[:1][0] == &b[:1][0]; reused != (cap(b) >= len(ss)*p.Size()) {
			t.Errorf("buffer of capacity %d for %d floats: reused %v", cap(b), len(ss)*p.Size(), reused)
		}
	}
}

func TestAugment(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 50, 30))
	rng := rand.New(rand.NewSource(9))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Intn(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	p := &Preprocess{Layout: NHWC, Height: 12, Width: 16}
	run := func(seed int64) [][]float32 {
		rng := rand.New(rand.NewSource(seed))
		var out [][]float32
		for range 5 {
			dst := make([]float32, p.Size())
			if err := p.Augment(img, rng, dst); err != nil {
				t.Fatal(err)
			}
			out = append(out, dst)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	lo, hi := (0-0.485)/0.229, (1-0.406)/0.225
	for i := range a {
		if len(a[i]) != 12*16*3 {
			t.Fatalf("augmented tensor has %d floats, want %d", len(a[i]), 12*16*3)
		}
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("draw %d: seed 1 gave different tensors", i)
		}
		if slices.Equal(a[i], c[i]) {
			t.Errorf("draw %d: seeds 1 and 2 gave the same tensor", i)
		}
		if i > 0 && slices.Equal(a[i], a[i-1]) {
			t.Errorf("draws %d and %d are the same", i-1, i)
		}
		for _, v := range a[i] {
			if v < float32(lo)-1e-5 || v > float32(hi)+1e-5 {
				t.Fatalf("value %g outside the normalized range [%g, %g]", v, lo, hi)
			}
		}
	}
	if err := p.Augment(img, rand.New(rand.NewSource(1)), make([]float32, 3)); err == nil {
		t.Error("Augment into a short destination: no error")
	}
}

// TestAugmentSamples: each image's tensor is Augment's with the
// generator of (seed, epoch, index), whatever the number of workers; a
// bad file fails the call.
func TestAugmentSamples(t *testing.T) {
	ss := samples(t, t.TempDir(), 7)
	p := &Preprocess{Height: 3, Width: 5}
	size := p.Size()
	want := make([]float32, len(ss)*size)
	for i, s := range ss {
		img, err := DecodeFile(s.Path, 0)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewSource(11*1_000_003 + 2*7_919 + int64(i)))
		if err := p.Augment(img, rng, want[i*size:(i+1)*size]); err != nil {
			t.Fatal(err)
		}
	}
	for _, workers := range []int{1, 3, 0} {
		got := make([]float32, len(ss)*size)
		if err := p.AugmentSamples(ss, 11, 2, got, workers); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d workers: tensors differ from Augment's", workers)
		}
	}
	if err := os.WriteFile(ss[4].Path, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.AugmentSamples(ss, 11, 2, make([]float32, len(ss)*size), 2); err == nil || !strings.Contains(err.Error(), ss[4].Path) {
		t.Errorf("bad file: error %v, want one naming %s", err, ss[4].Path)
	}
}

func TestAugmentFlip(t *testing.T) {
	// An image exactly the crop's size, cropped whole, is only flipped
	// or not: find seeds that do each and check the pixels.
	img := image.NewGray(image.Rect(0, 0, 4, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	p := &Preprocess{Channels: 1, Height: 3, Width: 4, Scale: 1, Mean: []float32{0}, Std: []float32{1}}
	seen := map[bool]bool{}
	for seed := int64(0); seed < 200 && len(seen) < 2; seed++ {
		rng := rand.New(rand.NewSource(seed))
		if randomResizedCrop(4, 3, rand.New(rand.NewSource(seed))) != image.Rect(0, 0, 4, 3) {
			continue
		}
		dst := make([]float32, 12)
		if err := p.Augment(img, rng, dst); err != nil {
			t.Fatal(err)
		}
		flipped := dst[0] == 3
		seen[flipped] = true
		for y := range 3 {
			for x := range 4 {
				sx := x
				if flipped {
					sx = 3 - x
				}
				if got, want := dst[y*4+x], float32(y*4+sx); got != want {
					t.Fatalf("seed %d flipped %v: pixel (%d,%d) %g, want %g", seed, flipped, x, y, got, want)
				}
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("flips seen %v, want both", seen)
	}
}

func TestRandomResizedCrop(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for range 2000 {
		w, h := 1+rng.Intn(300), 1+rng.Intn(300)
		r := randomResizedCrop(w, h, rng)
		if r.Empty() || !r.In(image.Rect(0, 0, w, h)) {
			t.Fatalf("%dx%d: crop %v outside the image", w, h, r)
		}
	}
	// Too narrow for any crop of ratio 3/4 to 4/3 within scale: the
	// fallback, the whole height and a width of height*4/3.
	if got, want := randomResizedCrop(1000, 6, rng), image.Rect(496, 0, 504, 6); got != want {
		t.Errorf("fallback crop of 1000x6: %v, want %v", got, want)
	}
	if got, want := randomResizedCrop(6, 1000, rng), image.Rect(0, 496, 6, 504); got != want {
		t.Errorf("fallback crop of 6x1000: %v, want %v", got, want)
	}
}
