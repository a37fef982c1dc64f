//go:build !amd64 || purego

package dwconv

const (
	hasAVX512 = false
	hasAVX2   = false
)
