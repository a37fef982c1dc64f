//go:build amd64 && !purego

package dataset

import (
	"os"

	"golang.org/x/sys/cpu"
)

// hasAVX2 reports whether the CPU runs the AVX2 kernels
// (resample_amd64.s); useAVX2 selects them, unless the environment
// variable GRAFT_CPU is "generic", which keeps graft's other kernels to
// pure Go as well. Tests change useAVX2.
var (
	hasAVX2 = cpu.X86.HasAVX2
	useAVX2 = hasAVX2 && os.Getenv("GRAFT_CPU") != "generic"
)

// hpass3AVX2 is hpass3 over n output pixels with wx, the weights of axis
// a, each repeated four times (see axis.expand), k taps a pixel. It
// stores 4 bytes a pixel, 3 apart: dst must have a byte past the last
// pixel's. It loads 16 bytes from each group of four taps: src must hold
// 4 bytes past the last tap's pixel.
//
//go:noescape
func hpass3AVX2(dst, src *uint8, first *int, wx *int32, k, n int)

// vpassAVX2 is vpass over the first n bytes of a row, n a multiple of 32,
// k being len(w).
//
//go:noescape
func vpassAVX2(out, rows *uint8, stride int, w *int32, k, n int)

// yccAVX2 writes the RGB bytes of n pixels, n a multiple of 8, as
// color.YCbCrToRGB computes them from y, cb and cr, and up to 4 bytes of
// garbage after them. cb and cr hold a byte a pixel, or with halved one
// for each two pixels.
//
//go:noescape
func yccAVX2(out, y, cb, cr *uint8, n int, halved bool)
