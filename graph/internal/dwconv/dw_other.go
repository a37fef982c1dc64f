//go:build !amd64 || purego

package dwconv

type rowKernel = func(x *float32, ldx int, y *float32, ow, rows int, w *float32, bias float32)

// kernelFor returns nil: there are no vector kernels in this build.
func kernelFor(path string, k, s int) rowKernel { return nil }
