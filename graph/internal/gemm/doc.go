// Package gemm is graft's single-precision matrix multiply: packed SGEMM
// on row-major matrices, C = alpha·op(A)·op(B) + beta·C, with
// micro-kernels in assembly where the CPU has them and pure Go elsewhere.
//
// # Design
//
// It follows GotoBLAS and BLIS. op(A) is copied into panels of mr rows
// and op(B) into panels of nr columns, both k-major, in blocks of at most
// 256 steps of k; a register-blocked micro-kernel multiplies one A panel
// by one B panel, keeping the mr×nr tile of C in registers. A block of B
// (at most 512 columns) is packed to stay in L2 and each of its panels in
// L1 while the kernel runs over the A panels of a row block. Ragged
// edges (m, n not multiples of the kernel, any k) are computed by the
// same kernel (or one of half its width, with the same operations per
// element) on a tile copied out of C and back. Products with one column
// (n == 1, a fully connected layer at batch 1) go through a GEMV on the
// same A panels. Sgemm packs A block by block as the product runs.
//
// A constant op(A), a layer's weights, can be packed once with PackA and
// multiplied many times with PackedA.Mul, which skips the packing of A.
//
// # Paths
//
// The kernel is chosen once at start-up, the best one the CPU runs
// (golang.org/x/sys/cpu), unless the environment variable GRAFT_CPU asks
// for another: "avx2" (6×16, AVX2+FMA, amd64 assembly) or "generic"
// (4×4, pure Go; every architecture, and the purego build tag; a
// correctness fallback, about 2 GFLOP/s on amd64, where Go spills its
// accumulators). "avx512"
// is reserved for an AVX-512 kernel that is not written yet; asking for
// it runs the best path below it. A path the CPU cannot run is never
// used; Path reports the one in use, and the package never prints.
//
// # Reproducibility
//
// Every element of C gets the same sequence of floating-point operations
// whatever the number of goroutines (the workers argument) and whatever
// the order they run in: per block of k, a fresh chain of multiply-adds
// over k in increasing order, the blocks, whose length depends on k only,
// added to C in increasing order. So results are bit for bit the same for
// any workers, and Sgemm and PackedA.Mul agree. Different paths (avx2,
// generic) round differently and do not agree bit for bit.
//
// # Failure modes
//
// Slices shorter than their dimensions and strides say, or strides
// smaller than a row, panic with a message starting "gemm:", as index
// errors would; there is no error return. Arithmetic follows IEEE 754:
// NaNs and infinities in A or B propagate, and beta == 0 discards C
// (NaNs included), as BLAS does.
package gemm
