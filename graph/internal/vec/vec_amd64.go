//go:build amd64 && !purego

package vec

// The assembly kernels (vec_amd64.s) over n values, n a multiple of 8.

//go:noescape
func expAVX2(dst, x *float32, n int)

//go:noescape
func sigmoidAVX2(dst, x *float32, n int)

//go:noescape
func siluAVX2(dst, x *float32, n int)

//go:noescape
func tanhAVX2(dst, x *float32, n int)

//go:noescape
func erfAVX2(dst, x *float32, n int)

//go:noescape
func affineClampAVX2(dst, x *float32, n int, a, b, lo, hi float32)

//go:noescape
func affineClampMulAVX2(dst, x *float32, n int, a, b, lo, hi float32)

//go:noescape
func leakyReluAVX2(dst, x *float32, n int, alpha float32)

//go:noescape
func rangeMaskAVX2(dst, x, dy *float32, n int, lo, hi float32)

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func maxAVX2(dst, a, b *float32, n int)

//go:noescape
func maxFloorAVX2(dst, x *float32, n int, floor float32)

//go:noescape
func maxFloorEvenAVX2(dst, x *float32, n int, floor float32)

//go:noescape
func subAVX2(dst, a, b *float32, n int)

//go:noescape
func mulAVX2(dst, a, b *float32, n int)

//go:noescape
func divAVX2(dst, a, b *float32, n int)

//go:noescape
func sigmoidGradAVX2(dst, y, dy *float32, n int)

//go:noescape
func tanhGradAVX2(dst, y, dy *float32, n int)
