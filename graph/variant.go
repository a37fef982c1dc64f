package graph

// KernelVariant names the compute kernels this process runs with (today
// the matrix multiply: "gemm:go", or "gemm:simd" in GOEXPERIMENT=simd
// builds). Each variant is deterministic, but two variants may differ in
// the last bits (fused multiply-add, summation order), so stored results
// such as feature caches are keyed by it.
func KernelVariant() string {
	if gemmFast != nil {
		return "gemm:simd"
	}
	return "gemm:go"
}
