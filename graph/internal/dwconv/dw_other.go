//go:build !amd64 || purego

package dwconv

// kernel is a plane kernel; this build has none.
type kernel int

// kernelFor returns 0: there are no vector kernels in this build.
func kernelFor(path string, k, s int) kernel { return 0 }

func run(kernel, *args) { panic("dwconv: no vector kernels in this build") }

func kernelNarrow(string, Geom) kernel { return 0 }
