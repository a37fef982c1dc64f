// Package cores holds how many goroutines one kernel call may split its
// work into: graft's --threads. Every parallel kernel (matrix products,
// convolutions, elementwise and pooling loops) asks N instead of
// runtime.GOMAXPROCS, so that jobs running side by side in one process
// (a batch with --jobs 2 --threads 1) each keep to their share of the
// cores. Kernels cut their work into pieces whose bounds do not depend on
// N, so results are the same bits whatever it is.
package cores

import (
	"runtime"
	"sync/atomic"
)

var limit atomic.Int64

// Set makes N return n (capped by GOMAXPROCS); n <= 0 restores the
// default, GOMAXPROCS. It applies to the whole process, from the next
// kernel call on. It returns the previous setting (0 for the default),
// for a later Set to restore.
func Set(n int) (prev int) {
	return int(limit.Swap(int64(max(n, 0))))
}

// N returns the number of goroutines a kernel call may use, at least 1.
func N() int {
	p := runtime.GOMAXPROCS(0)
	if l := int(limit.Load()); l > 0 && l < p {
		return l
	}
	return p
}
