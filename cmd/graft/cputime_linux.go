package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// cpuTime reads the CPU time process pid has used so far, from its CPU
// clock (clock_gettime of the process's CPUCLOCK_SCHED clock id), which
// includes the current slice of a thread still running;
// /proc/PID/task/*/schedstat does not, and a spinning thread looked idle
// between scheduler ticks.
func cpuTime(pid int) (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32((^pid)<<3|2), &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
