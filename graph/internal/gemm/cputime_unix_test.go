//go:build unix

package gemm

import "syscall"

// cpuTime returns the CPU time used by the process so far, in
// nanoseconds: on a shared machine, flops per CPU-second measure a
// kernel better than flops per wall-clock second.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
