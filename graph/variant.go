package graph

import (
	"github.com/graftml/graft/graph/internal/dwconv"
	"github.com/graftml/graft/graph/internal/gemm"
	"github.com/graftml/graft/graph/internal/vec"
)

// KernelVariant names the compute kernels this process runs with: the
// matrix multiply ("gemm:avx512", "gemm:avx2" or "gemm:generic"), the
// vector kernels ("vec:avx512", "vec:avx2" or "vec:generic") and the depthwise
// convolution ("dw:avx512", "dw:avx2" or "dw:generic"); GRAFT_CPU
// forces a path. Each variant is deterministic,
// but two variants may differ in the last bits (fused multiply-add,
// polynomial approximations), so stored results such as feature caches
// are keyed by it.
func KernelVariant() string {
	return "gemm:" + gemm.Path() + " vec:" + vec.Impl() + " dw:" + dwconv.Path()
}
