package graph

import (
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx/onnxtest"
)

// TestConvTransposeVsORT compares ConvTranspose with ONNX Runtime on
// shapes larger than the golden cases: batches and groups that take the
// parallel paths, depthwise weights, output_shape, and auto_pad.
func TestConvTransposeVsORT(t *testing.T) {
	ort := onnxtest.ORT(t)
	r := rand.New(rand.NewSource(13))
	cases := []struct {
		name  string
		x, w  []int
		attrs map[string]any
	}{
		{"plain_batch3", []int{3, 8, 7, 9}, []int{8, 5, 3, 3}, map[string]any{"strides": []int{2, 2}, "pads": []int{1, 1, 1, 1}, "output_padding": []int{1, 0}}},
		{"group4", []int{2, 8, 6, 6}, []int{8, 3, 2, 2}, map[string]any{"group": 4, "strides": []int{2, 2}}},
		{"depthwise_dil", []int{2, 6, 5, 5}, []int{6, 1, 3, 3}, map[string]any{"group": 6, "dilations": []int{2, 2}, "pads": []int{0, 2, 1, 0}}},
		{"output_shape", []int{1, 4, 5, 5}, []int{4, 2, 3, 3}, map[string]any{"strides": []int{2, 2}, "output_shape": []int{10, 11}}},
		{"same_upper", []int{1, 4, 5, 6}, []int{4, 2, 3, 4}, map[string]any{"strides": []int{2, 3}, "auto_pad": "SAME_UPPER"}},
		{"same_lower", []int{1, 4, 5, 6}, []int{4, 2, 3, 4}, map[string]any{"strides": []int{2, 3}, "auto_pad": "SAME_LOWER"}},
		{"1d", []int{2, 4, 9}, []int{4, 6, 5}, map[string]any{"strides": []int{3}, "pads": []int{2, 1}}},
	}
	for _, cc := range cases {
		x := randT(r, cc.x...)
		w := randT(r, cc.w...)
		b := randT(r, cc.w[1]*max(1, intAttr(cc.attrs["group"])))
		m, path := windowModel(t, "ConvTranspose", 13, cc.attrs, x, w, b)
		vsORT(t, ort, cc.name, m, path, x)
	}
}

func intAttr(v any) int {
	i, _ := v.(int)
	return i
}

// TestConvTransposeRefused checks the errors for what graft does not read.
func TestConvTransposeRefused(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		name  string
		x, w  []int
		attrs map[string]any
		want  string
	}{
		{"3-D", []int{1, 2, 3, 3, 3}, []int{2, 2, 2, 2, 2}, nil, "1-D and 2-D convolutions only"},
		{"negative pads", []int{1, 2, 3, 3}, []int{2, 2, 2, 2}, map[string]any{"pads": []int{-1, 0, 0, 0}}, "negative pads"},
		{"group", []int{1, 3, 3, 3}, []int{3, 2, 2, 2}, map[string]any{"group": 2}, "group 2"},
		{"huge stride", []int{1, 2, 5, 5}, []int{2, 2, 2, 2}, map[string]any{"strides": []int{1 << 62, 1}}, "too large"},
		{"output_shape rank", []int{1, 2, 3, 3}, []int{2, 2, 2, 2}, map[string]any{"output_shape": []int{1, 2, 3}}, "output_shape"},
	} {
		x := randT(r, c.x...)
		m, _ := windowModel(t, "ConvTranspose", 13, c.attrs, x, randT(r, c.w...))
		_, err := Build(m, Options{Shapes: map[string][]int{"x": x.Shape}})
		var ne *NodeError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "n0") {
			t.Errorf("%s: got %v; want a NodeError naming n0 and saying %q", c.name, err, c.want)
		}
	}
}
