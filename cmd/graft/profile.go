package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/graftml/graft/onnx"
)

// startProfile starts a CPU profile when GRAFT_CPUPROFILE names a file, for
// finding where a command's time goes (`go tool pprof graft FILE`). The
// returned function stops it and writes the file; it is a no-op when the
// variable is unset.
func startProfile(errw io.Writer) func() {
	path := os.Getenv("GRAFT_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := onnx.CreateAtomic(path, true)
	if err == nil {
		err = pprof.StartCPUProfile(f)
		if err != nil {
			f.Abort()
		}
	}
	if err != nil {
		fmt.Fprintf(errw, "graft: GRAFT_CPUPROFILE: %v (no profile written)\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Commit(); err != nil {
			fmt.Fprintf(errw, "graft: GRAFT_CPUPROFILE: %v\n", err)
		}
	}
}
