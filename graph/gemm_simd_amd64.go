//go:build goexperiment.simd && amd64

package graph

import (
	"sync"

	"simd/archsimd"
)

// The SIMD fast path of sgemm, compiled only with GOEXPERIMENT=simd
// (package simd/archsimd, experimental, no Go 1 compatibility promise).
// It is the usual packed GEMM: for each block of simdKC steps of k, a
// block of op(B) (up to simdNC columns) is copied into panels of nr
// columns, k-major, each row of nr values contiguous; then for each group
// of simdMR rows of op(A), those rows are copied into a k-major panel
// (simdMR values per step) and a register-blocked micro-kernel multiplies
// the A panel with every B panel of the block, keeping the simdMR×nr
// block of C in vector registers: per step of k one load of nr values of
// B, simdMR broadcasts of A and simdMR·nr/16 (or /8) fused multiply-adds.
//
// Every element of C gets the same sequence of operations whatever the
// tiling, the number of goroutines, the order in which they run or the
// kernel (AVX-512 or AVX2): per k-block, a fresh sum of fused
// multiply-adds over l in increasing order, then c = fma(alpha, sum, c),
// blocks in increasing order of k. So results are reproducible bit for bit
// and do not depend on GOMAXPROCS.

const (
	simdMR = 5   // rows of C per micro-kernel call
	simdKU = 2   // steps of k per iteration of the micro-kernel; panels are zero-padded to a multiple
	simdKC = 256 // most steps of k per packed block (a B panel of 32 columns: 32 KiB)
	simdNC = 512 // most columns of C per task (a packed B block: 512 KiB, in L2)
	// products with fewer multiply-adds than this stay on the pure-Go
	// kernels, and so do those with fewer than simdMinN columns (padding
	// them to a panel wastes most of the kernel) or fewer than simdMinM
	// rows (simdMinMT when op(B) is transposed: its packing is scalar);
	// below these, the pure-Go kernels were as fast or faster
	simdMinWork = 1 << 13
	simdMinN    = 16
	simdMinM    = 8
	simdMinMT   = 16
)

// simdKernel is a micro-kernel and the copy of B rows into panels that
// goes with it (both use vectors of the kernel's width).
type simdKernel struct {
	nr int // columns of C per call
	// kern adds alpha·Σ_l ap[l·simdMR+i]·bp[l·nr+j] to c[i·ldc+j] for
	// i < simdMR, j < nr, l < kc; kc is a multiple of simdKU.
	kern func(kc int, ap, bp []float32, alpha float32, c []float32, ldc int)
	// packRow copies src[p·nr:][:nr] to dst[p·stride:][:nr] for p < panels.
	packRow func(dst, src []float32, stride, panels int)
}

var simdActive simdKernel

func init() {
	switch {
	case archsimd.X86.AVX512():
		simdActive = simdKernel{nr: 32, kern: kern5x32, packRow: packRow32}
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		simdActive = simdKernel{nr: 16, kern: kern5x16, packRow: packRow16}
	default:
		return // the pure-Go kernels
	}
	gemmFast = gemmSIMD
}

// simdBufs holds per-goroutine packing buffers (one B block, one A panel,
// one edge tile of C), all of fixed size.
var simdBufs = sync.Pool{New: func() any { return new(simdBuf) }}

type simdBuf struct {
	b    [simdKC * simdNC]float32
	a    [simdKC * simdMR]float32
	edge [simdMR * 32]float32
}

// gemmSIMD implements gemmFast with the kernel picked at init.
func gemmSIMD(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	if n < simdMinN || m < simdMinM || (transB && m < simdMinMT) || m*n*k < simdMinWork {
		return false
	}
	gemmPacked(simdActive, workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
	return true
}

// gemmPacked adds alpha·op(A)·op(B) to C with kernel kn on at most workers
// goroutines.
func gemmPacked(kn simdKernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	nr := kn.nr
	// element (i, l) of op(A) is a[i*ars+l*acs], (l, j) of op(B) b[l*brs+j*bcs]
	ars, acs := lda, 1
	if transA {
		ars, acs = 1, lda
	}
	brs, bcs := ldb, 1
	if transB {
		brs, bcs = 1, ldb
	}
	// k-blocks of equal length (a multiple of simdKU), a function of k
	// only: the blocking decides the order of the sums
	kcb := (k + simdKC - 1) / simdKC
	kcb = (k + kcb - 1) / kcb
	kcb = (kcb + simdKU - 1) / simdKU * simdKU

	mp, np := (m+simdMR-1)/simdMR, (n+nr-1)/nr // panels of rows and columns
	nbk, ppb, mbk, mpb := simdTiles(workers, m, n, mp, np, simdNC/nr)
	forEachPar(workers, nbk*mbk, func(t int) {
		buf := simdBufs.Get().(*simdBuf)
		defer simdBufs.Put(buf)
		j0 := (t % nbk) * ppb * nr
		j1 := min(n, j0+ppb*nr)
		i0 := (t / nbk) * mpb * simdMR
		i1 := min(m, i0+mpb*simdMR)
		panels := (j1 - j0 + nr - 1) / nr
		for l0 := 0; l0 < k; l0 += kcb {
			kc := min(kcb, k-l0)
			kcp := (kc + simdKU - 1) / simdKU * simdKU
			bp := buf.b[:panels*kcp*nr]
			packB(kn, bp, b, brs, bcs, l0, kc, kcp, j0, j1)
			ap := buf.a[:kcp*simdMR]
			for i := i0; i < i1; i += simdMR {
				rows := min(simdMR, i1-i)
				packA(ap, a, ars, acs, i, rows, l0, kc, kcp)
				for p := range panels {
					j := j0 + p*nr
					cols := min(nr, j1-j)
					bpp := bp[p*kcp*nr : (p+1)*kcp*nr]
					if rows == simdMR && cols == nr {
						kn.kern(kcp, ap, bpp, alpha, c[i*ldc+j:], ldc)
						continue
					}
					// an edge: the kernel works on a full tile copied out
					// of C and back (the same operations per element)
					e := buf.edge[:simdMR*nr]
					clear(e)
					for r := range rows {
						copy(e[r*nr:r*nr+cols], c[(i+r)*ldc+j:])
					}
					kn.kern(kcp, ap, bpp, alpha, e, nr)
					for r := range rows {
						copy(c[(i+r)*ldc+j:(i+r)*ldc+j+cols], e[r*nr:])
					}
				}
			}
		}
	})
}

// simdTiles splits an m×n product, mp row panels and np column panels,
// into nbk column blocks of ppb panels (at most maxPPB) and mbk row blocks
// of mpb panels, one task each, so that workers goroutines get about
// equal shares. Each task packs its own block of B and its own panels of
// A, so splitting the rows packs B again (k·n more copies per extra row
// block) and splitting the columns more finely packs A again (k·m per
// extra column block): when the column blocks do not divide evenly among
// the workers, the cheaper of the two fixes is taken.
func simdTiles(workers, m, n, mp, np, maxPPB int) (nbk, ppb, mbk, mpb int) {
	ceil := func(a, b int) int { return (a + b - 1) / b }
	nbk = ceil(np, maxPPB)
	ppb = ceil(np, nbk)
	nbk = ceil(np, ppb)
	if workers <= 1 || nbk%workers == 0 || nbk >= 16*workers {
		return nbk, ppb, 1, mp
	}
	nbk1, ppb1 := 0, 0 // the fewest column blocks that are a multiple of workers
	for nb := nbk + 1; nb <= np; nb++ {
		if p := ceil(np, nb); ceil(np, p)%workers == 0 {
			nbk1, ppb1 = ceil(np, p), p
			break
		}
	}
	if nbk1 > 0 && (mp < workers || m*(nbk1-nbk) <= n*(workers-1)) {
		return nbk1, ppb1, 1, mp
	}
	if mp < workers {
		return nbk, ppb, 1, mp
	}
	mpb = ceil(mp, workers)
	return nbk, ppb, ceil(mp, mpb), mpb
}

// packA copies rows i0..i0+rows-1 and steps l0..l0+kc-1 of op(A) into
// the k-major panel ap (simdMR values per step), zero-padding missing
// rows and the steps up to kcp.
func packA(ap, a []float32, ars, acs, i0, rows, l0, kc, kcp int) {
	if rows < simdMR || kcp > kc {
		clear(ap[:kcp*simdMR])
	}
	if acs == 1 && rows == simdMR { // rows of op(A) are contiguous
		base := i0*ars + l0
		a0, a1, a2, a3, a4 := a[base:][:kc], a[base+ars:][:kc], a[base+2*ars:][:kc], a[base+3*ars:][:kc], a[base+4*ars:][:kc]
		for l := range kc {
			d := ap[l*simdMR:][:simdMR]
			d[0], d[1], d[2], d[3], d[4] = a0[l], a1[l], a2[l], a3[l], a4[l]
		}
		return
	}
	if acs == 1 {
		for r := range rows {
			src := a[(i0+r)*ars+l0:][:kc]
			for l, v := range src {
				ap[l*simdMR+r] = v
			}
		}
		return
	}
	for l := range kc { // columns of op(A) are contiguous (ars == 1)
		src := a[(l0+l)*acs+i0:][:rows]
		copy(ap[l*simdMR:l*simdMR+rows], src)
	}
}

// packB copies steps l0..l0+kc-1 and columns j0..j1-1 of op(B) into
// panels of nr columns, kcp·nr values apart, each k-major (nr values per
// step), zero-padding the columns of the last panel and the steps up to
// kcp.
func packB(kn simdKernel, bp, b []float32, brs, bcs, l0, kc, kcp, j0, j1 int) {
	nr := kn.nr
	ps := kcp * nr // panel stride
	full := (j1 - j0) / nr
	rem := (j1 - j0) % nr
	if kcp > kc {
		for p := range full {
			clear(bp[p*ps+kc*nr : (p+1)*ps])
		}
	}
	if rem > 0 {
		clear(bp[full*ps : (full+1)*ps])
	}
	if bcs == 1 { // rows of op(B) are contiguous: copy row by row
		for l := range kc {
			row := b[(l0+l)*brs+j0 : (l0+l)*brs+j1]
			kn.packRow(bp[l*nr:], row, ps, full)
			if rem > 0 {
				copy(bp[full*ps+l*nr:full*ps+l*nr+rem], row[full*nr:])
			}
		}
		return
	}
	for j := range j1 - j0 { // columns of op(B) are contiguous (brs == 1)
		d := bp[(j/nr)*ps+j%nr:]
		src := b[(j0+j)*bcs+l0:][:kc]
		for l, v := range src {
			d[l*nr] = v
		}
	}
}

// packRow32 is packRow for panels of 32 columns (AVX-512).
func packRow32(dst, src []float32, stride, panels int) {
	for p := range panels {
		s := src[p*32:][:32]
		d := dst[p*stride:][:32]
		archsimd.LoadFloat32x16Slice(s[0:16]).StoreSlice(d[0:16])
		archsimd.LoadFloat32x16Slice(s[16:32]).StoreSlice(d[16:32])
	}
	archsimd.ClearAVXUpperBits()
}

// packRow16 is packRow for panels of 16 columns (AVX2).
func packRow16(dst, src []float32, stride, panels int) {
	for p := range panels {
		s := src[p*16:][:16]
		d := dst[p*stride:][:16]
		archsimd.LoadFloat32x8Slice(s[0:8]).StoreSlice(d[0:8])
		archsimd.LoadFloat32x8Slice(s[8:16]).StoreSlice(d[8:16])
	}
	archsimd.ClearAVXUpperBits()
}

// The micro-kernels. Go's register allocator keeps loop-carried vectors
// in X0-X14 only and its scheduler hoists every value that has a use in
// the same block (here: all the broadcasts of A) above the ones that do
// not (the multiply-adds feeding the next iteration), which makes a
// straight-line loop body spill accumulators to the stack. Indexing ap
// with p+i, which the compiler cannot prove in range, puts a bounds check
// before each row and so a block boundary: each block then holds one
// broadcast and the multiply-adds of one row, and the 10 accumulators, 2
// // vectors of B and a broadcast fit in registers. Measured on the project
// machine (AMD EPYC with AVX-512, ~117 GFLOP/s per core peak): 5×32 runs
// at ~110 GFLOP/s per core with the panels in L1, the same loop without
// the split at under 30. If a later compiler proves these indices in
// range, the kernels stay correct but may slow down: BenchmarkSgemm shows
// it.

// kern5x32 is the AVX-512 micro-kernel: 5 rows × 32 columns (10
// accumulators of 16 lanes).
func kern5x32(kc int, ap, bp []float32, alpha float32, c []float32, ldc int) {
	var c00, c01, c10, c11, c20, c21, c30, c31, c40, c41 archsimd.Float32x16
	p, q := 0, 0
	for l := 0; l < kc; l += 2 {
		b := bp[q : q+32]
		b0 := archsimd.LoadFloat32x16Slice(b[0:16])
		b1 := archsimd.LoadFloat32x16Slice(b[16:32])
		x := archsimd.BroadcastFloat32x16(ap[p])
		c00, c01 = x.MulAdd(b0, c00), x.MulAdd(b1, c01)
		x = archsimd.BroadcastFloat32x16(ap[p+1])
		c10, c11 = x.MulAdd(b0, c10), x.MulAdd(b1, c11)
		x = archsimd.BroadcastFloat32x16(ap[p+2])
		c20, c21 = x.MulAdd(b0, c20), x.MulAdd(b1, c21)
		x = archsimd.BroadcastFloat32x16(ap[p+3])
		c30, c31 = x.MulAdd(b0, c30), x.MulAdd(b1, c31)
		x = archsimd.BroadcastFloat32x16(ap[p+4])
		c40, c41 = x.MulAdd(b0, c40), x.MulAdd(b1, c41)

		b = bp[q+32 : q+64]
		b0 = archsimd.LoadFloat32x16Slice(b[0:16])
		b1 = archsimd.LoadFloat32x16Slice(b[16:32])
		x = archsimd.BroadcastFloat32x16(ap[p+5])
		c00, c01 = x.MulAdd(b0, c00), x.MulAdd(b1, c01)
		x = archsimd.BroadcastFloat32x16(ap[p+6])
		c10, c11 = x.MulAdd(b0, c10), x.MulAdd(b1, c11)
		x = archsimd.BroadcastFloat32x16(ap[p+7])
		c20, c21 = x.MulAdd(b0, c20), x.MulAdd(b1, c21)
		x = archsimd.BroadcastFloat32x16(ap[p+8])
		c30, c31 = x.MulAdd(b0, c30), x.MulAdd(b1, c31)
		x = archsimd.BroadcastFloat32x16(ap[p+9])
		c40, c41 = x.MulAdd(b0, c40), x.MulAdd(b1, c41)
		p += 10
		q += 64
	}
	store5x32(alpha, c, ldc, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41)
}

// store5x32 does c[i·ldc+j] = fma(alpha, acc, c[i·ldc+j]) for the
// accumulators of kern5x32. It is a separate function because keeping this
// in the kernel makes the register allocator worse in the kernel's loop
// (about 10% slower).
//
//go:noinline
func store5x32(alpha float32, c []float32, ldc int, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41 archsimd.Float32x16) {
	al := archsimd.BroadcastFloat32x16(alpha)
	r := c[:32]
	c00.MulAdd(al, archsimd.LoadFloat32x16Slice(r[0:16])).StoreSlice(r[0:16])
	c01.MulAdd(al, archsimd.LoadFloat32x16Slice(r[16:32])).StoreSlice(r[16:32])
	r = c[ldc:][:32]
	c10.MulAdd(al, archsimd.LoadFloat32x16Slice(r[0:16])).StoreSlice(r[0:16])
	c11.MulAdd(al, archsimd.LoadFloat32x16Slice(r[16:32])).StoreSlice(r[16:32])
	r = c[2*ldc:][:32]
	c20.MulAdd(al, archsimd.LoadFloat32x16Slice(r[0:16])).StoreSlice(r[0:16])
	c21.MulAdd(al, archsimd.LoadFloat32x16Slice(r[16:32])).StoreSlice(r[16:32])
	r = c[3*ldc:][:32]
	c30.MulAdd(al, archsimd.LoadFloat32x16Slice(r[0:16])).StoreSlice(r[0:16])
	c31.MulAdd(al, archsimd.LoadFloat32x16Slice(r[16:32])).StoreSlice(r[16:32])
	r = c[4*ldc:][:32]
	c40.MulAdd(al, archsimd.LoadFloat32x16Slice(r[0:16])).StoreSlice(r[0:16])
	c41.MulAdd(al, archsimd.LoadFloat32x16Slice(r[16:32])).StoreSlice(r[16:32])
	archsimd.ClearAVXUpperBits() // else the SSE code that follows runs several times slower
}

// kern5x16 is the AVX2+FMA micro-kernel: 5 rows × 16 columns (10
// accumulators of 8 lanes).
func kern5x16(kc int, ap, bp []float32, alpha float32, c []float32, ldc int) {
	var c00, c01, c10, c11, c20, c21, c30, c31, c40, c41 archsimd.Float32x8
	p, q := 0, 0
	for l := 0; l < kc; l += 2 {
		b := bp[q : q+16]
		b0 := archsimd.LoadFloat32x8Slice(b[0:8])
		b1 := archsimd.LoadFloat32x8Slice(b[8:16])
		x := archsimd.BroadcastFloat32x8(ap[p])
		c00, c01 = x.MulAdd(b0, c00), x.MulAdd(b1, c01)
		x = archsimd.BroadcastFloat32x8(ap[p+1])
		c10, c11 = x.MulAdd(b0, c10), x.MulAdd(b1, c11)
		x = archsimd.BroadcastFloat32x8(ap[p+2])
		c20, c21 = x.MulAdd(b0, c20), x.MulAdd(b1, c21)
		x = archsimd.BroadcastFloat32x8(ap[p+3])
		c30, c31 = x.MulAdd(b0, c30), x.MulAdd(b1, c31)
		x = archsimd.BroadcastFloat32x8(ap[p+4])
		c40, c41 = x.MulAdd(b0, c40), x.MulAdd(b1, c41)

		b = bp[q+16 : q+32]
		b0 = archsimd.LoadFloat32x8Slice(b[0:8])
		b1 = archsimd.LoadFloat32x8Slice(b[8:16])
		x = archsimd.BroadcastFloat32x8(ap[p+5])
		c00, c01 = x.MulAdd(b0, c00), x.MulAdd(b1, c01)
		x = archsimd.BroadcastFloat32x8(ap[p+6])
		c10, c11 = x.MulAdd(b0, c10), x.MulAdd(b1, c11)
		x = archsimd.BroadcastFloat32x8(ap[p+7])
		c20, c21 = x.MulAdd(b0, c20), x.MulAdd(b1, c21)
		x = archsimd.BroadcastFloat32x8(ap[p+8])
		c30, c31 = x.MulAdd(b0, c30), x.MulAdd(b1, c31)
		x = archsimd.BroadcastFloat32x8(ap[p+9])
		c40, c41 = x.MulAdd(b0, c40), x.MulAdd(b1, c41)
		p += 10
		q += 32
	}
	store5x16(alpha, c, ldc, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41)
}

// store5x16 does c[i·ldc+j] = fma(alpha, acc, c[i·ldc+j]) for the
// accumulators of kern5x16. It is a separate function because keeping this
// in the kernel makes the register allocator worse in the kernel's loop
// (about 10% slower).
//
//go:noinline
func store5x16(alpha float32, c []float32, ldc int, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41 archsimd.Float32x8) {
	al := archsimd.BroadcastFloat32x8(alpha)
	r := c[:16]
	c00.MulAdd(al, archsimd.LoadFloat32x8Slice(r[0:8])).StoreSlice(r[0:8])
	c01.MulAdd(al, archsimd.LoadFloat32x8Slice(r[8:16])).StoreSlice(r[8:16])
	r = c[ldc:][:16]
	c10.MulAdd(al, archsimd.LoadFloat32x8Slice(r[0:8])).StoreSlice(r[0:8])
	c11.MulAdd(al, archsimd.LoadFloat32x8Slice(r[8:16])).StoreSlice(r[8:16])
	r = c[2*ldc:][:16]
	c20.MulAdd(al, archsimd.LoadFloat32x8Slice(r[0:8])).StoreSlice(r[0:8])
	c21.MulAdd(al, archsimd.LoadFloat32x8Slice(r[8:16])).StoreSlice(r[8:16])
	r = c[3*ldc:][:16]
	c30.MulAdd(al, archsimd.LoadFloat32x8Slice(r[0:8])).StoreSlice(r[0:8])
	c31.MulAdd(al, archsimd.LoadFloat32x8Slice(r[8:16])).StoreSlice(r[8:16])
	r = c[4*ldc:][:16]
	c40.MulAdd(al, archsimd.LoadFloat32x8Slice(r[0:8])).StoreSlice(r[0:8])
	c41.MulAdd(al, archsimd.LoadFloat32x8Slice(r[8:16])).StoreSlice(r[8:16])
	archsimd.ClearAVXUpperBits()
}
