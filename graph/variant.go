package graph

import (
	"github.com/graftml/graft/graph/internal/gemm"
	"github.com/graftml/graft/graph/internal/vec"
)

// KernelVariant names the compute kernels this process runs with: the
// matrix multiply ("gemm:avx2" or "gemm:generic") and the vector
// kernels ("vec:avx2" or
// "vec:generic"); GRAFT_CPU forces a path. Each variant is deterministic,
// but two variants may differ in the last bits (fused multiply-add,
// polynomial approximations), so stored results such as feature caches
// are keyed by it.
func KernelVariant() string {
	return "gemm:" + gemm.Path() + " vec:" + vec.Impl()
}
