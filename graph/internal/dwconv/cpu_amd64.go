//go:build amd64 && !purego

package dwconv

import "golang.org/x/sys/cpu"

// hasAVX512 and hasAVX2 report the instruction sets the kernels use,
// with their register state enabled by the OS.
var (
	hasAVX512 = cpu.X86.HasAVX512F
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)
