//go:build !amd64 || purego

package dwconv

// planeLanes4 is never called here: PlaneSums runs its Go loop on the
// generic path, the only one of this build.
func planeLanes4(x *float32, size int, lanes *[16]float64) {
	panic("dwconv: no vector kernels in this build")
}
