//go:build !amd64 || purego

package dataset

// Without assembly the kernels are Go's.
var hasAVX2, useAVX2 = false, false

func hpass3AVX2(dst, src *uint8, first *int, wx *int32, k, n int) {
	panic("dataset: no AVX2 code in this build")
}

func vpassAVX2(out, rows *uint8, stride int, w *int32, k, n int) {
	panic("dataset: no AVX2 code in this build")
}

func yccAVX2(out, y, cb, cr *uint8, n int, halved bool) {
	panic("dataset: no AVX2 code in this build")
}

func idctIslowAVX2(blk *[64]int32, dst *uint8, stride int) {
	panic("dataset: no AVX2 code in this build")
}
