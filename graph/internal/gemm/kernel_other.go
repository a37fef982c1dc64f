//go:build !amd64 || purego

package gemm

// archKernels: no assembly kernels on this architecture (or with the
// purego build tag); the generic kernel runs.
func archKernels() []*kernel { return nil }
