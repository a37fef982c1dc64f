package graph

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/graftml/graft/graph/internal/cores"

	"github.com/graftml/graft/graph/internal/gemm"
	"gonum.org/v1/gonum/blas/gonum"
)

// sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices,
// where op(A) is m×k and op(B) is k×n. It is the one matrix-multiply entry
// point of the package (Conv, Gemm, MatMul and their gradients). On CPUs
// where package graph/internal/gemm has an assembly kernel (gemm.Path()
// is not "generic": amd64 with AVX2 and FMA), products with more than one
// column go there; the rest take the pure-Go kernels below. Large
// products run on cores.N() goroutines.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmWorkers(0, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Blocking of the axpy-based kernels: a k-block of gemmKB rows of B times
// gemmNB columns (256 KiB) stays in L2 while each row of C's block (4 KiB)
// stays in L1. Measured on the project machine: about twice gonum's Sgemm.
const (
	gemmNB = 1024
	gemmKB = 64
	// products with fewer multiply-adds than this run on one goroutine
	gemmParallelWork = 1 << 18
)

// useGemm: graph/internal/gemm runs an assembly kernel on this CPU. Its
// pure-Go kernel is slower than the kernels below, and so is its Sgemm on
// one column (it packs A on every call), so those stay here.
var useGemm = gemm.Path() != "generic"

// sgemmEpi is sgemmWorkers with epi (nil: none) run on each block of C
// once it is final: in the assembly path block by block while the block
// is in cache, elsewhere once on the whole of C.
func sgemmEpi(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epi gemm.Epilogue) {
	if useGemm && n > 1 {
		gemm.SgemmEpi(workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epi)
		return
	}
	sgemmWorkers(workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	if epi != nil && m > 0 && n > 0 {
		epi(0, m, 0, n)
	}
}

// sgemmWorkers is sgemm on at most workers goroutines (0: cores.N(); 1
// for callers that already run several products in parallel).
func sgemmWorkers(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if useGemm && n > 1 {
		gemm.Sgemm(workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 1:
		case 0:
			clear(row) // also clears NaNs, as BLAS does for beta == 0
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if k == 0 || alpha == 0 {
		return
	}
	if workers <= 0 {
		workers = cores.N()
	}
	if m*n*k < gemmParallelWork {
		workers = 1
	}
	// Two forms: "axpy" adds multiples of rows of op(B) to rows of C
	// (vectors of length n; needs B untransposed), "dot" takes dot products
	// of rows of op(A) with columns of op(B) (vectors of length k; needs A
	// untransposed and B transposed). Each call of the vector kernels costs
	// some overhead, so the form with the longer vectors wins when the
	// other is short; a matrix in the wrong layout is transposed into a
	// buffer first, which pays when m is not tiny.
	dot := transB && !transA
	switch {
	case transA && transB:
		dot = k > n
	case !dot && n < 128 && k >= 4*n && m >= 8:
		dot = true
	case dot && k < 128 && n >= 4*k && m >= 8:
		dot = false
	}
	if dot {
		if transA { // op(A) = Aᵀ: pack it as m×k
			p := getConvBuf(m * k)
			defer putConvBuf(p)
			transposeF32(a, lda, k, m, *p)
			a, lda = *p, k
		}
		if !transB { // columns of B as rows: n×k
			p := getConvBuf(n * k)
			defer putConvBuf(p)
			transposeF32(b, ldb, k, n, *p)
			b, ldb = *p, k
		}
		gemmDot(workers, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	if transB { // op(B) = Bᵀ: pack it as k×n
		p := getConvBuf(k * n)
		defer putConvBuf(p)
		transposeF32(b, ldb, n, k, *p)
		b, ldb = *p, n
	}
	ars, acs := lda, 1 // element (i, l) of op(A) is a[i*ars+l*acs]
	if transA {
		ars, acs = 1, lda
	}
	gemmAxpy(workers, m, n, k, alpha, a, ars, acs, b, ldb, c, ldc)
}

// gemmAxpy adds alpha·op(A)·B to C, where op(A)[i,l] = a[i*ars+l*acs]:
// C[i, j0:j1] += alpha·op(A)[i,l]·B[l, j0:j1].
func gemmAxpy(workers, m, n, k int, alpha float32, a []float32, ars, acs int, b []float32, ldb int, c []float32, ldc int) {
	nbk, nb, mbk, mb := gemmTiles(workers, m, n, gemmNB, 128)
	forEachPar(workers, nbk*mbk, func(t int) {
		j0 := (t % nbk) * nb
		j1 := min(n, j0+nb)
		i0 := (t / nbk) * mb
		i1 := min(m, i0+mb)
		for l0 := 0; l0 < k; l0 += gemmKB {
			l1 := min(k, l0+gemmKB)
			for i := i0; i < i1; i++ {
				crow := c[i*ldc+j0 : i*ldc+j1]
				for l := l0; l < l1; l++ {
					axpyF32(alpha*a[i*ars+l*acs], b[l*ldb+j0:l*ldb+j1], crow)
				}
			}
		}
	})
}

// gemmDot adds alpha·A·Bᵀ to C (A m×k, B n×k): C[i,j] += alpha·dot(A[i,:],
// B[j,:]). Blocks of B's rows (up to 256 KiB) stay in cache over all of A.
func gemmDot(workers, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	jbk, jb, mbk, mb := gemmTiles(workers, m, n, max(4, (1<<16)/k), 4)
	forEachPar(workers, jbk*mbk, func(t int) {
		j0 := (t % jbk) * jb
		j1 := min(n, j0+jb)
		i0 := (t / jbk) * mb
		i1 := min(m, i0+mb)
		for i := i0; i < i1; i++ {
			arow := a[i*lda : i*lda+k]
			crow := c[i*ldc : i*ldc+n]
			for j := j0; j < j1; j++ {
				crow[j] += alpha * dotF32(arow, b[j*ldb:j*ldb+k])
			}
		}
	})
}

// transposeF32 writes the transpose of the r×c matrix src (row stride ld)
// into dst as a dense c×r matrix.
func transposeF32(src []float32, ld, r, c int, dst []float32) {
	const bs = 32
	for i0 := 0; i0 < r; i0 += bs {
		i1 := min(r, i0+bs)
		for j0 := 0; j0 < c; j0 += bs {
			j1 := min(c, j0+bs)
			for i := i0; i < i1; i++ {
				row := src[i*ld : i*ld+c]
				for j := j0; j < j1; j++ {
					dst[j*r+i] = row[j]
				}
			}
		}
	}
}

// gemmTiles splits an m×n result into nbk column blocks of nb columns
// (at most maxNB, and at least minNB when that has to be reduced) and mbk
// row blocks of mb rows, so that workers goroutines get equal shares.
func gemmTiles(workers, m, n, maxNB, minNB int) (nbk, nb, mbk, mb int) {
	nbk = (n + maxNB - 1) / maxNB
	if workers > 1 && nbk%workers != 0 {
		if want := (nbk + workers - 1) / workers * workers; n/want >= minNB {
			nbk = want
		}
	}
	nb = (n + nbk - 1) / nbk
	nbk = (n + nb - 1) / nb
	mbk = 1
	if workers > 1 && nbk%workers != 0 {
		mbk = min(m, 2*workers)
	}
	mb = (m + mbk - 1) / mbk
	mbk = (m + mb - 1) / mb
	return nbk, nb, mbk, mb
}

// axpyF32 computes y += alpha*x (SSE assembly inside gonum).
func axpyF32(alpha float32, x, y []float32) {
	if len(y) < 16 {
		x = x[:len(y)]
		for i, v := range x {
			y[i] += alpha * v
		}
		return
	}
	gonum.Implementation{}.Saxpy(len(y), alpha, x, 1, y, 1)
}

// dotF32 returns the dot product of x and y, which have equal lengths.
func dotF32(x, y []float32) float32 {
	if len(x) < 16 {
		y = y[:len(x)]
		var s float32
		for i, v := range x {
			s += v * y[i]
		}
		return s
	}
	return gonum.Implementation{}.Sdot(len(x), x, 1, y, 1)
}

// forEachPar calls f(0), ..., f(n-1) on up to workers goroutines (the
// caller's included); 0 workers means cores.N(). Calls may run
// in any order and concurrently.
func forEachPar(workers, n int, f func(i int)) {
	if workers <= 0 {
		workers = cores.N()
	}
	workers = min(workers, n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var perr atomic.Value // the first panic, raised again on the caller's goroutine
	cores.Spread(workers, func() {
		defer func() {
			if r := recover(); r != nil {
				perr.CompareAndSwap(nil, fmt.Sprintf("%v\n%s", r, debug.Stack()))
				next.Store(int64(n)) // stop the others early
			}
		}()
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			f(i)
		}
	})
	if r := perr.Load(); r != nil {
		panic(r)
	}
}
