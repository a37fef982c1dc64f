package gemm

import (
	"sync"
	"unsafe"

	"github.com/graftml/graft/graph/internal/cores"
	"github.com/graftml/graft/onnx/hugemem"
)

// Cache blocking (GotoBLAS/BLIS): op(A) is packed in panels of mr rows
// and op(B) in panels of nr columns, k-major, in blocks of at most kcMax
// steps of k. For each k-block, a block of at most ncMax columns of op(B)
// is packed (up to 512 KiB, in L2), then for each block of mcMax rows of
// A (up to 192 KiB, in L2), each A panel (kc·mr, in L1) meets, inner-most,
// every B panel of the block in turn.
const (
	kcMax = 256
	mcMax = 192
	ncMax = 512
	// products with fewer multiply-adds than this run on one goroutine
	parallelWork = 1 << 17
)

// kBlocks returns the length of the k-blocks: k split into equal blocks
// of at most kcMax steps. It depends on k only, so the order of the sums
// (one fresh chain per k-block, blocks added to C in increasing k) never
// depends on the number of workers or the tiling of C.
func kBlocks(k int) int {
	nb := (k + kcMax - 1) / kcMax
	return (k + nb - 1) / nb
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// where op(A) is m×k (A, or Aᵀ when transA: A is then k×m), op(B) is
// k×n, C is m×n, and lda, ldb, ldc are the row strides of A, B and C as
// stored. As in BLAS, beta == 0 sets C without reading it (NaNs in C
// vanish) and alpha == 0 or k == 0 only scales C by beta.
//
// It runs on at most workers goroutines (0: cores.N()); the
// result is the same, bit for bit, whatever workers is.
func Sgemm(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	SgemmEpi(workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// Epilogue is what a product does to each block of C once the block is
// final (every term of its sums added): f(i0, i1, j0, j1) is called for
// rows i0..i1-1 and columns j0..j1-1 of C, on the goroutine that computed
// them, while they are still in cache (a block is one row panel of the
// kernel by at most ncMax columns: 14×512 floats with AVX-512). The blocks cover C once. f may rewrite those elements of C
// and no others: a convolution adds its bias and applies its activation
// there instead of in passes over the whole output.
type Epilogue func(i0, i1, j0, j1 int)

// SgemmEpi is Sgemm with epi (nil: none) called on each final block of C.
func SgemmEpi(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epi Epilogue) {
	if done(m, n, k, alpha, beta, c, ldc, epi) {
		return
	}
	checkA(transA, m, k, a, lda)
	mul(active, workerCount(workers, m, n, k), m, n, k, aSource{a: a, lda: lda, transA: transA}, transB, alpha, b, ldb, nil, beta, c, ldc, epi)
}

// BFill writes rows l0..l0+kc-1, columns j0..j0+n-1 of op(B) into dst
// packed for the kernel: in panels of nr columns, k-major, so that value
// (l, q) of the block goes to dst[q/nr·kc·nr + l·nr + q%nr], with zeros in
// the last panel past n (dst holds ceil(n/nr)·kc·nr values). A product
// given one never needs op(B) stored whole: a convolution's im2col matrix
// is made this way, a block of at most 256×512 values at a time, straight
// into the packed layout, instead of being written out in full, read back
// and packed. Calls may come from several goroutines at once.
type BFill func(dst []float32, l0, kc, j0, n, nr int)

// SgemmFill is SgemmEpi with op(B) (k×n) made block by block by fill.
func SgemmFill(workers int, transA bool, m, n, k int, alpha float32, a []float32, lda int, fill BFill, beta float32, c []float32, ldc int, epi Epilogue) {
	if done(m, n, k, alpha, beta, c, ldc, epi) {
		return
	}
	checkA(transA, m, k, a, lda)
	mul(active, workerCount(workers, m, n, k), m, n, k, aSource{a: a, lda: lda, transA: transA}, false, alpha, nil, n, fill, beta, c, ldc, epi)
}

// MulFill is MulEpi with op(B) (k×n) made block by block by fill.
func (p *PackedA) MulFill(workers int, n int, alpha float32, fill BFill, beta float32, c []float32, ldc int, epi Epilogue) {
	m, k := p.m, p.k
	if done(m, n, k, alpha, beta, c, ldc, epi) {
		return
	}
	mul(p.kn, workerCount(workers, m, n, k), m, n, k, aSource{packed: p.data}, false, alpha, nil, n, fill, beta, c, ldc, epi)
}

// done checks C and does the whole of a product with nothing to
// multiply (an empty C, k == 0 or alpha == 0: C = beta·C, then epi on
// all of it), reporting whether it did.
func done(m, n, k int, alpha, beta float32, c []float32, ldc int, epi Epilogue) bool {
	if m <= 0 || n <= 0 {
		return true
	}
	checkC(m, n, c, ldc)
	if k <= 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		epi.all(m, n)
		return true
	}
	return false
}

// all calls e on the whole of an m×n C (a product that had no blocks).
func (e Epilogue) all(m, n int) {
	if e != nil {
		e(0, m, 0, n)
	}
}

// aSource is op(A) for mul: packed once (packed != nil), or a, lda and
// transA as Sgemm takes them, packed block by block as the product runs.
type aSource struct {
	tiles  bool // one column is a tile's column too: never gemv
	packed []float32
	a      []float32
	lda    int
	transA bool
}

// PackedA is op(A) (m×k) packed once for the kernel in use when it was
// packed, to be multiplied by many matrices B: a layer's weights. It is
// read-only after PackA, so one PackedA may be used by many goroutines at
// once.
type PackedA struct {
	kn   *kernel
	m, k int
	data []float32
}

// PackA packs op(A), m×k (A, or Aᵀ when transA: A is then k×m, with row
// stride lda), for Mul. It uses up to cores.N() goroutines.
func PackA(transA bool, m, k int, a []float32, lda int) *PackedA {
	if m < 0 || k < 0 {
		panic("gemm: negative dimension")
	}
	kn := active
	p := &PackedA{kn: kn, m: m, k: k, data: packMem.Floats(packedALen(kn, m, k))}
	if m > 0 && k > 0 {
		checkA(transA, m, k, a, lda)
		packA(kn, workerCount(0, m, 64, k), transA, m, k, a, lda, p.data)
	}
	return p
}

// Rows and Cols return m and k: op(A) is m×k.
func (p *PackedA) Rows() int { return p.m }

// Cols returns k, the number of columns of op(A).
func (p *PackedA) Cols() int { return p.k }

// Mul computes C = alpha·op(A)·op(B) + beta·C as Sgemm does, for the
// op(A) packed in p: op(B) is k×n (B, or Bᵀ when transB: B is then n×k),
// C is m×n. It runs on at most workers goroutines (0:
// cores.N()), and gives the same bits as Sgemm on the same
// path whatever workers is.
func (p *PackedA) Mul(workers int, transB bool, n int, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p.MulEpi(workers, transB, n, alpha, b, ldb, beta, c, ldc, nil)
}

// MulTiles is MulEpi without the one-column path: every column of C,
// even when n is 1, is computed as a column of the kernel's tiles, whose
// operations per element do not depend on the other columns. A batch of
// images as the columns of one product then gives each image the same
// bits at every batch size.
func (p *PackedA) MulTiles(workers int, transB bool, n int, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int, epi Epilogue) {
	p.mul(aSource{packed: p.data, tiles: true}, workers, transB, n, alpha, b, ldb, beta, c, ldc, epi)
}

// MulEpi is Mul with epi (nil: none) called on each final block of C.
func (p *PackedA) MulEpi(workers int, transB bool, n int, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int, epi Epilogue) {
	p.mul(aSource{packed: p.data}, workers, transB, n, alpha, b, ldb, beta, c, ldc, epi)
}

func (p *PackedA) mul(src aSource, workers int, transB bool, n int, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int, epi Epilogue) {
	m, k := p.m, p.k
	if done(m, n, k, alpha, beta, c, ldc, epi) {
		return
	}
	mul(p.kn, workerCount(workers, m, n, k), m, n, k, src, transB, alpha, b, ldb, nil, beta, c, ldc, epi)
}

func workerCount(workers, m, n, k int) int {
	if workers <= 0 {
		workers = cores.N()
	}
	if m*n*k < parallelWork {
		return 1
	}
	return workers
}

func checkA(transA bool, m, k int, a []float32, lda int) {
	r, c := m, k
	if transA {
		r, c = k, m
	}
	if lda < c || len(a) < (r-1)*lda+c {
		panic("gemm: A too short for its dimensions and stride")
	}
}

func checkB(transB bool, k, n int, b []float32, ldb int) {
	r, c := k, n
	if transB {
		r, c = n, k
	}
	if ldb < c || len(b) < (r-1)*ldb+c {
		panic("gemm: B too short for its dimensions and stride")
	}
}

func checkC(m, n int, c []float32, ldc int) {
	if ldc < n || len(c) < (m-1)*ldc+n {
		panic("gemm: C too short for its dimensions and stride")
	}
}

// scaleC sets C = beta·C (C = 0 when beta is 0, NaNs included).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 1:
		case 0:
			clear(row)
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// packMem holds packed matrices (a model's weights, packed at its first
// run: 13 MB in 53 pieces for mobilenet_v2) in 2 MiB pages.
var packMem hugemem.Chunks

// packedALen is the length of op(A) packed for kn: every k-block holds
// ceil(m/mr) panels of kc·mr values (missing rows are zeros).
func packedALen(kn *kernel, m, k int) int {
	return (m + kn.mr - 1) / kn.mr * kn.mr * k
}

// mul computes C = alpha·op(A)·op(B) + beta·C as Sgemm describes, on at most workers goroutines. Tasks are rectangles
// of C whose edges fall on multiples of the kernel's panels, so which
// tiles of C are edge tiles depends on m and n only.
func mul(kn *kernel, workers, m, n, k int, src aSource, transB bool, alpha float32, b []float32, ldb int, fill BFill, beta float32, c []float32, ldc int, epi Epilogue) {
	if fill != nil && n == 1 && kn.gemv != nil && !src.tiles { // one column: made whole, for gemv
		col := make([]float32, k*kn.nr) // one panel holding the column
		fill(col, 0, k, 0, 1, kn.nr)
		b, ldb, transB, fill = col, kn.nr, false, nil
	}
	if fill == nil {
		checkB(transB, k, n, b, ldb)
	}
	if n == 1 && kn.gemv != nil && !src.tiles {
		gemv(kn, workers, m, k, src, transB, alpha, b, ldb, beta, c, ldc)
		epi.all(m, n)
		return
	}
	mp, np := (m+kn.mr-1)/kn.mr, (n+kn.nr-1)/kn.nr
	nbk, ppb, mbk, mpb := tiles(workers, mp, np)
	forEach(workers, nbk*mbk, func(t int) {
		j0 := (t % nbk) * ppb * kn.nr
		i0 := (t / nbk) * mpb * kn.mr
		j1 := min(n, j0+ppb*kn.nr)
		i1 := min(m, i0+mpb*kn.mr)
		block(kn, i0, i1, j0, j1, m, k, src, transB, alpha, b, ldb, fill, beta, c, ldc, epi)
	})
}

// gemv is mul for one column (n == 1), where a kernel with nr columns
// would waste all but one: each A panel, in the same packing, is
// multiplied elementwise by the column of B with each value repeated mr
// times (kn.gemv), and the partial sums of each row are added in a fixed
// order. Tasks are groups of row panels.
func gemv(kn *kernel, workers, m, k int, src aSource, transB bool, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mr := kn.mr
	kcb := kBlocks(k)
	mp := (m + mr - 1) / mr
	px := getBuf(k * mr)
	defer putBuf(px)
	x := *px
	for l := range k {
		var v float32
		if transB { // B is 1×k
			v = b[l]
		} else {
			v = b[l*ldb]
		}
		for r := range mr {
			x[l*mr+r] = v
		}
	}
	const panelsPerTask = 16
	forEach(workers, (mp+panelsPerTask-1)/panelsPerTask, func(t int) {
		var abuf *[]float32
		if src.packed == nil {
			abuf = getBuf(kcb * mr)
			defer putBuf(abuf)
		}
		out := make([]float32, 8*mr)
		for p := t * panelsPerTask; p < min(mp, (t+1)*panelsPerTask); p++ {
			i0 := p * mr
			rows := min(mr, m-i0)
			for l0 := 0; l0 < k; l0 += kcb {
				kc := min(kcb, k-l0)
				var ap []float32
				if src.packed != nil {
					ap = src.packed[l0*mp*mr+p*kc*mr:][:kc*mr]
				} else {
					ap = (*abuf)[:kc*mr]
					packPanelA(src.transA, ap, src.a, src.lda, i0, rows, l0, kc, mr)
				}
				xs := x[l0*mr:][:kc*mr]
				n8 := kc / 8
				if n8 > 0 {
					kn.gemv(n8, &ap[0], &xs[0], &out[0])
				} else {
					clear(out)
				}
				for r := range rows {
					var s float32
					for q := range 8 {
						s += out[q*mr+r]
					}
					for l := n8 * 8; l < kc; l++ {
						s += ap[l*mr+r] * xs[l*mr+r]
					}
					ci := &c[(i0+r)*ldc]
					switch {
					case l0 > 0:
						*ci = alpha*s + *ci
					case beta == 0:
						*ci = alpha * s
					default:
						*ci = alpha*s + beta**ci
					}
				}
			}
		}
	})
}

// block computes rows i0..i1-1, columns j0..j1-1 of C. When op(A) is not
// packed yet, it packs each row block of each k-block (at most mc×kc, in
// L2) before the kernels read it. Within a row block, each panel of A
// (mr rows, in L1) meets every panel of B in turn, so C is written row
// panel by row panel, a few rows at a time in order, rather than a
// column of tiles across all the block's rows (which, on a large output
// that misses the caches, made the pointwise convolutions of MobileNetV2
// 1.8x slower). epi runs on each row panel after its
// last k-block.
func block(kn *kernel, i0, i1, j0, j1, m, k int, src aSource, transB bool, alpha float32, b []float32, ldb int, fill BFill, beta float32, c []float32, ldc int, epi Epilogue) {
	mr, nr := kn.mr, kn.nr
	kcb := kBlocks(k)
	mp := (m + mr - 1) / mr // panels of A per k-block
	nc := min(j1-j0, ncMax/nr*nr)
	mc := mcMax / mr * mr   // row blocks start on panel boundaries
	const edgeLen = 16 * 32 // an edge tile of C: mr×nr ≤ 16×32
	pb := getBuf(((nc+nr-1)/nr*nr)*kcb + 64 + edgeLen)
	defer putBuf(pb)
	bp := align64((*pb)[:len(*pb)-edgeLen])
	// the edge tile lives in the pooled buffer: a local array escapes
	// (the kernels are called through function values) and was 2 KiB of
	// garbage a block, 24 MB in a 300-image feature extraction
	// (what a kernel leaves in its lanes past the edge is never copied
	// back, so the tile needs no clearing)
	edge := (*pb)[len(*pb)-edgeLen:]

	var abuf []float32
	if src.packed == nil {
		pa := getBuf(mc*kcb + 64)
		defer putBuf(pa)
		abuf = align64(*pa)
	}
	for jc := j0; jc < j1; jc += nc {
		ncb := min(nc, j1-jc)
		npan := (ncb + nr - 1) / nr
		for l0 := 0; l0 < k; l0 += kcb {
			kc := min(kcb, k-l0)
			if fill != nil {
				fill(bp, l0, kc, jc, ncb, nr)
			} else {
				packB(kn, transB, b, ldb, l0, kc, jc, ncb, bp)
			}
			bt := beta // the first k-block applies beta, the others add
			if l0 > 0 {
				bt = 1
			}
			for ic := i0; ic < i1; ic += mc {
				ie := min(i1, ic+mc)
				// the panels of A for rows ic..ie-1 and this k-block
				var ablk []float32
				if src.packed != nil {
					ablk = src.packed[l0*mp*mr+(ic/mr)*kc*mr:]
				} else {
					ablk = abuf
					for i := ic; i < ie; i += mr {
						packPanelA(src.transA, ablk[(i-ic)/mr*kc*mr:][:kc*mr], src.a, src.lda, i, min(mr, m-i), l0, kc, mr)
					}
				}
				for i := ic; i < ie; i += mr {
					apan := &ablk[(i-ic)/mr*kc*mr]
					rows := min(mr, ie-i)
					var sk *shortKernel // for a short last panel
					if rows < mr {
						sk = kn.shortFor(rows)
					}
					for p := range npan {
						j := jc + p*nr
						cols := min(nr, j1-j)
						bpan := &bp[p*kc*nr]
						if rows == mr && cols == nr {
							kn.micro(kc, apan, bpan, &c[i*ldc+j], ldc, alpha, bt)
							continue
						}
						if sk != nil && sk.rows == rows && cols == nr {
							sk.f(kc, apan, bpan, &c[i*ldc+j], ldc, alpha, bt)
							continue
						}
						// an edge tile: a kernel works on a full tile copied
						// out of C and back (the same operations per element):
						// the one with the fewest rows times columns
						e := edge[:mr*nr]
						if bt != 0 {
							for r := range rows {
								copy(e[r*nr:r*nr+cols], c[(i+r)*ldc+j:])
							}
						}
						half := cols <= nr/2 && kn.half != nil
						switch {
						case sk != nil && (!half || 2*sk.rows < mr):
							sk.f(kc, apan, bpan, &e[0], nr, alpha, bt)
						case half:
							kn.half(kc, apan, bpan, &e[0], nr, alpha, bt)
						default:
							kn.micro(kc, apan, bpan, &e[0], nr, alpha, bt)
						}
						for r := range rows {
							copy(c[(i+r)*ldc+j:(i+r)*ldc+j+cols], e[r*nr:])
						}
					}
					if epi != nil && l0+kc == k {
						epi(i, i+rows, jc, jc+ncb)
					}
				}
			}
		}
	}
}

// tiles splits C, mp row panels by np column panels, into nbk column
// blocks of ppb panels and mbk row blocks of mpb panels, one task each,
// for workers goroutines (one task when there is one worker). With
// several it picks the split with the least
// estimated time on the busiest worker, counting one unit per kernel call
// and half a unit per panel of B packed (a split of the rows packs the
// same B panels again) and per panel of A packed or read (a split of the
// columns packs them again or, when A was packed once, streams all of A
// through every worker: ResNet-18's 512x4608 weights at batch 1, where C
// has only 2 column panels, ran at 130 GFLOP/s on two threads split by
// columns and 181 by rows).
func tiles(workers, mp, np int) (nbk, ppb, mbk, mpb int) {
	ceil := func(a, b int) int { return (a + b - 1) / b }
	if workers <= 1 {
		return 1, np, 1, mp
	}
	best := -1.0
	for nb := 1; nb <= min(np, 4*workers); nb++ {
		p := ceil(np, nb)
		nb := ceil(np, p)
		for mb := 1; mb <= min(mp, 4*workers); mb++ {
			q := ceil(mp, mb)
			mb := ceil(mp, q)
			rounds := ceil(nb*mb, workers)
			cost := float64(p*q) + 0.5*float64(p) + 0.5*float64(q) + 2
			cost *= float64(rounds)
			if best < 0 || cost < best {
				best, nbk, ppb, mbk, mpb = cost, nb, p, mb, q
			}
		}
	}
	return nbk, ppb, mbk, mpb
}

// packA packs op(A) (m×k) into pa: for each k-block (kBlocks), ceil(m/mr)
// panels of kc steps, each step mr values (rows past m are zeros).
func packA(kn *kernel, workers int, transA bool, m, k int, a []float32, lda int, pa []float32) {
	mr := kn.mr
	kcb := kBlocks(k)
	mp := (m + mr - 1) / mr
	nkb := (k + kcb - 1) / kcb
	// tasks: groups of panels within a k-block
	const panelsPerTask = 8
	groups := (mp + panelsPerTask - 1) / panelsPerTask
	if m*k < 1<<15 {
		workers = 1
	}
	forEach(workers, nkb*groups, func(t int) {
		l0 := (t / groups) * kcb
		kc := min(kcb, k-l0)
		blk := pa[l0*mp*mr:]
		p0 := (t % groups) * panelsPerTask
		for p := p0; p < min(mp, p0+panelsPerTask); p++ {
			i0 := p * mr
			rows := min(mr, m-i0)
			packPanelA(transA, blk[p*kc*mr:(p+1)*kc*mr], a, lda, i0, rows, l0, kc, mr)
		}
	})
}

// packPanelA packs rows i0..i0+rows-1 (rows ≤ mr), steps l0..l0+kc-1 of
// op(A) into the panel dst, mr values per step, zeros past the rows.
func packPanelA(transA bool, dst, a []float32, lda, i0, rows, l0, kc, mr int) {
	if transA {
		packAT(dst, a, lda, i0, rows, l0, kc, mr)
	} else {
		packAN(dst, a, lda, i0, rows, l0, kc, mr)
	}
}

// packAN packs rows i0..i0+rows-1, steps l0..l0+kc-1 of A (untransposed)
// into dst, mr values per step.
func packAN(dst, a []float32, lda, i0, rows, l0, kc, mr int) {
	if rows < mr {
		clear(dst)
	}
	if rows == 6 && mr == 6 {
		base := i0*lda + l0
		a0, a1, a2 := a[base:][:kc], a[base+lda:][:kc], a[base+2*lda:][:kc]
		a3, a4, a5 := a[base+3*lda:][:kc], a[base+4*lda:][:kc], a[base+5*lda:][:kc]
		for l := range kc {
			d := (*[6]float32)(dst[l*6:])
			d[0], d[1], d[2], d[3], d[4], d[5] = a0[l], a1[l], a2[l], a3[l], a4[l], a5[l]
		}
		return
	}
	for r := range rows {
		src := a[(i0+r)*lda+l0:][:kc]
		for l, v := range src {
			dst[l*mr+r] = v
		}
	}
}

// packAT packs columns i0..i0+rows-1, rows l0..l0+kc-1 of A (op(A) = Aᵀ)
// into dst, mr values per step.
func packAT(dst, a []float32, lda, i0, rows, l0, kc, mr int) {
	if rows < mr {
		clear(dst)
	}
	for l := range kc {
		copy(dst[l*mr:l*mr+rows], a[(l0+l)*lda+i0:])
	}
}

// packB packs steps l0..l0+kc-1, columns j0..j0+ncb-1 of op(B) into bp:
// ceil(ncb/nr) panels of kc steps, nr values per step, columns past ncb
// zero.
func packB(kn *kernel, transB bool, b []float32, ldb, l0, kc, j0, ncb int, bp []float32) {
	nr := kn.nr
	full, rem := ncb/nr, ncb%nr
	if transB { // op(B)[l][j] = B[j][l]: columns of op(B) are contiguous
		for p := range full + min(rem, 1) {
			dst := bp[p*kc*nr : (p+1)*kc*nr]
			cols := min(nr, ncb-p*nr)
			if cols < nr {
				clear(dst)
			}
			for jj := range cols {
				src := b[(j0+p*nr+jj)*ldb+l0:][:kc]
				for l, v := range src {
					dst[l*nr+jj] = v
				}
			}
		}
		return
	}
	if full > 0 && kn.packB != nil {
		kn.packB(&bp[0], &b[l0*ldb+j0], kc, full, ldb)
	} else {
		// row by row, so that B is read in order
		for l := range kc {
			src := b[(l0+l)*ldb+j0:][:full*nr]
			for p := range full {
				copy(bp[p*kc*nr+l*nr:][:nr], src[p*nr:])
			}
		}
	}
	if rem > 0 {
		dst := bp[full*kc*nr : (full+1)*kc*nr]
		clear(dst)
		src := b[l0*ldb+j0+full*nr:]
		for l := range kc {
			copy(dst[l*nr:l*nr+rem], src[l*ldb:l*ldb+rem])
		}
	}
}

// Packing buffers, reused across calls.
var bufs sync.Pool

func getBuf(n int) *[]float32 {
	if p, ok := bufs.Get().(*[]float32); ok {
		if cap(*p) >= n {
			*p = (*p)[:n]
			return p
		}
	}
	s := make([]float32, n)
	return &s
}

func putBuf(p *[]float32) { bufs.Put(p) }

// align64 returns s from its first element on a 64-byte boundary; s
// must have 15 elements to spare.
func align64(s []float32) []float32 {
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(s))) & 63)
	if off == 0 {
		return s
	}
	return s[(64-off)/4:]
}

// forEach calls f(0), ..., f(n-1) on up to workers goroutines (the
// caller's included), in any order.
func forEach(workers, n int, f func(i int)) {
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var mu sync.Mutex
	next := 0
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		i := next
		next++
		return i
	}
	var perr any
	var once sync.Once
	cores.Spread(workers, func() {
		defer func() {
			if r := recover(); r != nil {
				once.Do(func() { perr = r })
			}
		}()
		for i := take(); i < n; i = take() {
			f(i)
		}
	})
	if perr != nil {
		panic(perr)
	}
}
