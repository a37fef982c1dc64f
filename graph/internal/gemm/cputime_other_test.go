//go:build !unix

package gemm

func cpuTime() int64 { return 0 }
