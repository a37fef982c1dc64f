package onnx_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
)

// halfCases returns float32 inputs that exercise every rounding decision:
// every half value, the exact midpoint between each pair of neighbouring
// halves (and between the largest half and 65536, and between zero and
// the smallest subnormal), one float32 ulp either side of each midpoint,
// both signs, infinities, NaNs with payloads in kept and dropped bits,
// float32 subnormals and huge values.
func halfCases() []float32 {
	var fs []float32
	add := func(f float32) { fs = append(fs, f, -f) }
	for h := 0; h < 0x7c00; h++ {
		a := onnx.HalfToFloat32(uint16(h))
		b := float32(65536)
		if h+1 < 0x7c00 {
			b = onnx.HalfToFloat32(uint16(h + 1))
		}
		mid := a + (b-a)/2 // exact: halves have 11 significant bits, float32 24
		add(a)
		add(mid)
		add(math.Nextafter32(mid, 0))
		add(math.Nextafter32(mid, float32(math.Inf(1))))
	}
	add(float32(math.Inf(1)))
	add(math.Float32frombits(0x7fc00000))
	add(math.Float32frombits(0x7f800001)) // payload only in dropped bits
	add(math.Float32frombits(0x7fa02000))
	add(math.Float32frombits(1))          // float32 subnormal
	add(math.Float32frombits(0x7f7fffff)) // max float32
	add(1e-8)
	add(2.9802322e-08) // 2^-25: the tie between 0 and the smallest subnormal
	return fs
}

// TestHalfRoundingRules checks Float32ToHalf against the rules themselves:
// every half round-trips, each midpoint goes to the even neighbour and the
// floats beside it to the nearer one.
func TestHalfRoundingRules(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := onnx.HalfToFloat32(uint16(h))
		back := onnx.Float32ToHalf(f)
		if f != f { // NaN
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 || back&0x8000 != uint16(h)&0x8000 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("half %#04x (%g) came back as %#04x", h, f, back)
		}
	}
	for h := 0; h < 0x7c00; h++ {
		a := onnx.HalfToFloat32(uint16(h))
		next := uint16(h + 1) // 0x7c00 is +inf: the value above 65504 is 65536
		b := float32(65536)
		if next < 0x7c00 {
			b = onnx.HalfToFloat32(next)
		}
		mid := a + (b-a)/2
		even := uint16(h)
		if h&1 == 1 {
			even = next
		}
		if got := onnx.Float32ToHalf(mid); got != even {
			t.Fatalf("midpoint %g of %#04x and %#04x gave %#04x, want the even %#04x", mid, h, next, got, even)
		}
		if got := onnx.Float32ToHalf(math.Nextafter32(mid, 0)); got != uint16(h) {
			t.Fatalf("just below midpoint %g: %#04x, want %#04x", mid, got, h)
		}
		if got := onnx.Float32ToHalf(math.Nextafter32(mid, 1e9)); got != next {
			t.Fatalf("just above midpoint %g: %#04x, want %#04x", mid, got, next)
		}
		if got := onnx.Float32ToHalf(-mid); got != even|0x8000 {
			t.Fatalf("-midpoint %g: %#04x, want %#04x", -mid, got, even|0x8000)
		}
	}
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{65504, 0x7bff}, {65519.996, 0x7bff}, {65520, 0x7c00}, {1e6, 0x7c00}, {-1e6, 0xfc00},
		{float32(math.Inf(-1)), 0xfc00}, {5.9604645e-08, 0x0001}, {2.9802322e-08, 0}, {2.9802326e-08, 1},
		{6.1035156e-05, 0x0400}, {1, 0x3c00}, {-2, 0xc000}, {0.1, 0x2e66}, {float32(math.Copysign(0, -1)), 0x8000},
	} {
		if got := onnx.Float32ToHalf(c.f); got != c.want {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

// TestHalfMatchesNumpy compares both directions with numpy's float16 on
// all 65536 halves and on halfCases (about half a million floats).
func TestHalfMatchesNumpy(t *testing.T) {
	if _, err := os.Stat(onnxtest.Python); err != nil {
		onnxtest.Need(t, "%s is missing: %v", onnxtest.Python, err)
	}
	fs := halfCases()
	in := new(bytes.Buffer)
	binary.Write(in, binary.LittleEndian, fs)
	const script = `
import sys, numpy as np
f = np.frombuffer(sys.stdin.buffer.read(), dtype='<f4')
h = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
with np.errstate(all='ignore'):
    r = f.astype(np.float16).view(np.uint16)
sys.stdout.buffer.write(h.astype('<u4').tobytes() + r.astype('<u2').tobytes())
`
	cmd := exec.Command(onnxtest.Python, "-c", script)
	cmd.Stdin = in
	out, err := cmd.Output()
	if err != nil {
		onnxtest.Need(t, "numpy: %v", err)
	}
	if len(out) != 4*65536+2*len(fs) {
		t.Fatalf("numpy wrote %d bytes, want %d", len(out), 4*65536+2*len(fs))
	}
	for h := 0; h < 65536; h++ {
		want := binary.LittleEndian.Uint32(out[4*h:])
		if got := math.Float32bits(onnx.HalfToFloat32(uint16(h))); got != want {
			t.Fatalf("half %#04x: float32 bits %#08x, numpy %#08x", h, got, want)
		}
	}
	r := out[4*65536:]
	bad := 0
	for i, f := range fs {
		want := binary.LittleEndian.Uint16(r[2*i:])
		if got := onnx.Float32ToHalf(f); got != want {
			if bad++; bad < 10 {
				t.Errorf("Float32ToHalf(%g, bits %#08x) = %#04x, numpy %#04x", f, math.Float32bits(f), got, want)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d conversions differ from numpy", bad, len(fs))
	}
	t.Logf("%d halves and %d float32 values agree with numpy", 65536, len(fs))
}

func TestRoundBFloat16(t *testing.T) {
	for _, c := range []struct{ in, want float32 }{
		{1, 1}, {math.Float32frombits(0x3f808000), 1}, {math.Float32frombits(0x3f818000), math.Float32frombits(0x3f820000)},
		{math.Float32frombits(0x3f808001), math.Float32frombits(0x3f810000)}, {3.4028235e38, float32(math.Inf(1))},
	} {
		if got := onnx.RoundBFloat16(c.in); math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("RoundBFloat16(%#08x) = %#08x, want %#08x", math.Float32bits(c.in), math.Float32bits(got), math.Float32bits(c.want))
		}
	}
	if n := onnx.RoundBFloat16(float32(math.NaN())); n == n {
		t.Error("NaN became a number")
	}
}

func TestToProtoAsHalf(t *testing.T) {
	x := onnx.NewFloat([]int{4}, []float32{1, 0.1, 65520, -2e-8})
	x.Name = "w"
	tp := x.ToProtoAs(10)
	if tp.DataType != 10 || len(tp.RawData) != 8 {
		t.Fatalf("type %d, %d bytes", tp.DataType, len(tp.RawData))
	}
	back, err := onnx.TensorFromProto(tp)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, onnx.RoundHalf(0.1), float32(math.Inf(1)), float32(math.Copysign(0, -1))}
	for i := range want {
		if math.Float32bits(back.F[i]) != math.Float32bits(want[i]) {
			t.Errorf("element %d: %g, want %g", i, back.F[i], want[i])
		}
	}
	if b := x.ToProtoAs(16); b.DataType != 16 || len(b.RawData) != 8 {
		t.Errorf("bfloat16: type %d, %d bytes", b.DataType, len(b.RawData))
	}
}
