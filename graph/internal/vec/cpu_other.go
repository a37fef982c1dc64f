//go:build !amd64 || purego

package vec

const (
	hasAVX2FMA = false
	hasAVX512  = false
)
