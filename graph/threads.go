package graph

import "github.com/graftml/graft/graph/internal/cores"

// SetThreads sets how many goroutines one kernel call (a convolution, a
// matrix product, an elementwise or pooling loop) may use, for the whole
// process: n <= 0 restores the default, runtime.GOMAXPROCS. Jobs run side
// by side in one process share it, so two jobs with SetThreads(1) keep to
// one core each. Results are the same bits whatever n is: kernels cut
// their work into pieces whose bounds do not depend on it. It returns the
// previous setting (0 for the default), which a later call can restore.
func SetThreads(n int) (prev int) { return cores.Set(n) }

// Threads returns the number of goroutines one kernel call may use.
func Threads() int { return cores.N() }
