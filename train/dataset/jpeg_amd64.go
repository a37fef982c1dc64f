//go:build amd64 && !purego

package dataset

// idctIslowAVX2 is idctIslow with AVX2 (jpeg_amd64.s), with the same
// output. dst must hold 7*stride+8 bytes.
//
//go:noescape
func idctIslowAVX2(blk *[64]int32, dst *uint8, stride int)
