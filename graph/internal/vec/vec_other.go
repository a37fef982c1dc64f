//go:build !amd64 || purego

package vec

// Stand-ins for the assembly kernels, never called: impl is generic.

func expAVX2(dst, x *float32, n int)                                  { panic(noAsm) }
func sigmoidAVX2(dst, x *float32, n int)                              { panic(noAsm) }
func siluAVX2(dst, x *float32, n int)                                 { panic(noAsm) }
func tanhAVX2(dst, x *float32, n int)                                 { panic(noAsm) }
func erfAVX2(dst, x *float32, n int)                                  { panic(noAsm) }
func affineClampAVX2(dst, x *float32, n int, a, b, lo, hi float32)    { panic(noAsm) }
func affineClampMulAVX2(dst, x *float32, n int, a, b, lo, hi float32) { panic(noAsm) }
func leakyReluAVX2(dst, x *float32, n int, alpha float32)             { panic(noAsm) }
func rangeMaskAVX2(dst, x, dy *float32, n int, lo, hi float32)        { panic(noAsm) }
func addAVX2(dst, a, b *float32, n int)                               { panic(noAsm) }
func subAVX2(dst, a, b *float32, n int)                               { panic(noAsm) }
func maxAVX2(dst, a, b *float32, n int)                               { panic(noAsm) }
func maxFloorAVX2(dst, x *float32, n int, floor float32)              { panic(noAsm) }
func maxFloorEvenAVX2(dst, x *float32, n int, floor float32)          { panic(noAsm) }
func mulAVX2(dst, a, b *float32, n int)                               { panic(noAsm) }
func divAVX2(dst, a, b *float32, n int)                               { panic(noAsm) }
func sigmoidGradAVX2(dst, y, dy *float32, n int)                      { panic(noAsm) }
func tanhGradAVX2(dst, y, dy *float32, n int)                         { panic(noAsm) }

func expAVX512(dst, x *float32, n int)                                  { panic(noAsm) }
func sigmoidAVX512(dst, x *float32, n int)                              { panic(noAsm) }
func siluAVX512(dst, x *float32, n int)                                 { panic(noAsm) }
func tanhAVX512(dst, x *float32, n int)                                 { panic(noAsm) }
func erfAVX512(dst, x *float32, n int)                                  { panic(noAsm) }
func affineClampAVX512(dst, x *float32, n int, a, b, lo, hi float32)    { panic(noAsm) }
func affineClampMulAVX512(dst, x *float32, n int, a, b, lo, hi float32) { panic(noAsm) }
func leakyReluAVX512(dst, x *float32, n int, alpha float32)             { panic(noAsm) }
func rangeMaskAVX512(dst, x, dy *float32, n int, lo, hi float32)        { panic(noAsm) }
func addAVX512(dst, a, b *float32, n int)                               { panic(noAsm) }
func subAVX512(dst, a, b *float32, n int)                               { panic(noAsm) }
func mulAVX512(dst, a, b *float32, n int)                               { panic(noAsm) }
func divAVX512(dst, a, b *float32, n int)                               { panic(noAsm) }
func maxAVX512(dst, a, b *float32, n int)                               { panic(noAsm) }
func maxFloorAVX512(dst, x *float32, n int, floor float32)              { panic(noAsm) }
func sigmoidGradAVX512(dst, y, dy *float32, n int)                      { panic(noAsm) }
func tanhGradAVX512(dst, y, dy *float32, n int)                         { panic(noAsm) }

const noAsm = "vec: assembly kernel called without assembly"
