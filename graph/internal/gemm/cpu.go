package gemm

import (
	"os"
	"slices"
	"strings"
)

// A kernel is a register-blocked micro-kernel and the shape of the packed
// panels it reads: mr rows of op(A) per panel (mr values per step of k),
// nr columns of op(B) per panel (nr values per step of k).
type kernel struct {
	name   string
	mr, nr int
	// micro sets the mr×nr tile of C at c (row stride ldc, in elements)
	// to alpha·Σ_{l<kc} a[l·mr+i]·b[l·nr+j] + beta·C, the sum a fresh
	// chain of fused multiply-adds in increasing l: C = alpha·sum when beta
	// is 0 (C is not read, so NaNs in it vanish), else
	// C = fma(alpha, sum, beta·C). kc may be 0.
	micro func(kc int, a, b, c *float32, ldc int, alpha, beta float32)
	// half, if not nil, is micro for the first nr/2 columns only (same
	// panels, same operations per element), for edge tiles of C at most
	// nr/2 columns wide.
	half func(kc int, a, b, c *float32, ldc int, alpha, beta float32)
	// short lists micro for the first rows rows only (same panels, same
	// operations per element), fewest rows first, for the last row panel
	// of an m that is not a multiple of mr: ResNet's 64 rows are four
	// panels of 14 and one of 8.
	short []shortKernel
	// gemv, if not nil, serves products with one column (n == 1): for
	// g < n8 and e < 8·mr, out[e] = Σ_g a[g·8·mr+e]·x[g·8·mr+e] in
	// increasing g, where a is an A panel and x holds each value of the
	// column of B mr times (x[l·mr+r] = B[l]).
	gemv func(n8 int, a, x, out *float32)
	// packB, if not nil, packs full panels of an untransposed B: for
	// l < kc and p < panels, dst[p·kc·nr + l·nr : +nr] =
	// src[l·ldb + p·nr : +nr].
	packB func(dst, src *float32, kc, panels, ldb int)
	// fillBits, if not nil, is FillBits for panels of nr columns, its
	// arguments checked; tail masks the last panel's columns.
	fillBits func(dst, src *float32, offs *int, tabs *[]uint32, kc, npan, q0 int, tail uint32)
}

// shortKernel is micro on the first rows rows of the A panel.
type shortKernel struct {
	rows int
	f    func(kc int, a, b, c *float32, ldc int, alpha, beta float32)
}

// shortFor returns the kernel with the fewest rows, at least rows, of
// kn.short, or nil.
func (kn *kernel) shortFor(rows int) *shortKernel {
	for i := range kn.short {
		if kn.short[i].rows >= rows {
			return &kn.short[i]
		}
	}
	return nil
}

// kernels lists the kernels this CPU can run, best first; generic is
// always last. Filled at init by the architecture's files.
var kernels []*kernel

// active is the kernel Sgemm and PackA use (see Path).
var active *kernel

func init() {
	kernels = append(archKernels(), genericKernel)
	active = choose(os.Getenv("GRAFT_CPU"))
}

// choose returns the kernel named by GRAFT_CPU's value v: the best this
// CPU runs when v is empty, unknown, or names a path the CPU (or this
// build) lacks; "generic" always gets the pure-Go kernel.
func choose(v string) *kernel {
	v = strings.ToLower(strings.TrimSpace(v))
	for _, k := range kernels {
		if k.name == v {
			return k
		}
	}
	// a path not available here: the best one that is no wider than the
	// one asked for (avx512 on an AVX2 machine gets avx2), else the best
	order := []string{"generic", "avx2", "avx512"}
	if want := slices.Index(order, v); want >= 0 {
		for _, k := range kernels {
			if slices.Index(order, k.name) <= want {
				return k
			}
		}
	}
	return kernels[0]
}

// Path returns the name of the micro-kernel in use: "avx512" (AVX-512F,
// amd64 assembly), "avx2" (AVX2 and FMA, amd64 assembly) or "generic" (pure Go,
// every architecture and the purego build tag).
//
// It is chosen once at start-up: the best the CPU supports, unless the
// environment variable GRAFT_CPU names one of the paths above. A path
// that this CPU or build cannot run is never used: GRAFT_CPU=avx512 on a
// CPU without AVX-512 runs the best path below it (avx2, else generic),
// silently; Path tells which one runs. Unknown values are ignored.
func Path() string { return active.name }

// Paths lists the paths this CPU and build can run, best first.
func Paths() []string {
	var p []string
	for _, k := range kernels {
		p = append(p, k.name)
	}
	return p
}
