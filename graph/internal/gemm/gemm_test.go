package gemm

import (
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
)

// forEachKernel runs f once per kernel this CPU and build can run, with
// that kernel active (Sgemm and PackA use it).
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	saved := active
	defer func() { active = saved }()
	for _, kn := range kernels {
		active = kn
		t.Run(kn.name, f)
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// product is one test case of Sgemm: shapes, layout and scalars.
type product struct {
	ta, tb      bool
	m, n, k     int
	lda, ldb    int
	ldc         int
	alpha, beta float32
}

// operands returns random A, B and C for p (C with a NaN when beta is 0:
// it must vanish).
func (p product) operands(r *rand.Rand) (a, b, c []float32) {
	ar, br := p.m, p.k // rows of A and B as stored
	if p.ta {
		ar = p.k
	}
	if p.tb {
		br = p.n
	}
	a, b, c = randSlice(r, ar*p.lda), randSlice(r, br*p.ldb), randSlice(r, p.m*p.ldc)
	if p.beta == 0 {
		c[0] = float32(math.NaN())
	}
	return a, b, c
}

// reference returns alpha·op(A)·op(B) + beta·C in float64 (columns of C
// past n unchanged) and, per element, a bound on the rounding error of a
// float32 computation: k·2⁻²³·(|alpha|·Σ|a·b| + |beta·c|) plus a little.
func (p product) reference(a, b, c []float32) (want, tol []float64) {
	want = make([]float64, len(c))
	tol = make([]float64, len(c))
	for i := range want {
		want[i] = float64(c[i])
	}
	for i := range p.m {
		for j := range p.n {
			var s, abs float64
			for l := range p.k {
				var av, bv float32
				if p.ta {
					av = a[l*p.lda+i]
				} else {
					av = a[i*p.lda+l]
				}
				if p.tb {
					bv = b[j*p.ldb+l]
				} else {
					bv = b[l*p.ldb+j]
				}
				s += float64(av) * float64(bv)
				abs += math.Abs(float64(av) * float64(bv))
			}
			x := float64(p.alpha) * s
			e := math.Abs(float64(p.alpha)) * abs
			if p.beta != 0 {
				x += float64(p.beta) * float64(c[i*p.ldc+j])
				e += math.Abs(float64(p.beta) * float64(c[i*p.ldc+j]))
			}
			want[i*p.ldc+j] = x
			tol[i*p.ldc+j] = float64(p.k+2)*0x1p-23*e + 1e-30
		}
	}
	return want, tol
}

func (p product) check(t *testing.T, what string, got []float32, want, tol []float64) {
	t.Helper()
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - w); !(d <= tol[i]) {
			t.Fatalf("%s %+v: element (%d,%d) = %v, want %v (tolerance %.3g)", what, p, i/p.ldc, i%p.ldc, got[i], w, tol[i])
		}
	}
}

// products returns the test cases: random shapes with m, n, k in 1..70
// (ragged edges of every kernel), a few large ones, every transposition,
// strides wider than the matrices, and several alpha and beta.
func products(r *rand.Rand) []product {
	var ps []product
	scalars := [][2]float32{{1, 0}, {1, 1}, {0.5, -0.25}, {-2, 0}, {0, 0.5}, {0, 0}}
	add := func(m, n, k int, i int) {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				ab := scalars[i%len(scalars)]
				i++
				p := product{ta: ta, tb: tb, m: m, n: n, k: k, alpha: ab[0], beta: ab[1]}
				p.lda, p.ldb, p.ldc = k+r.Intn(3), n+r.Intn(3), n+r.Intn(3)
				if ta {
					p.lda = m + r.Intn(3)
				}
				if tb {
					p.ldb = k + r.Intn(3)
				}
				ps = append(ps, p)
			}
		}
	}
	for i := range 120 {
		add(1+r.Intn(70), 1+r.Intn(70), 1+r.Intn(70), i)
	}
	for i, s := range [][3]int{{1, 1, 1}, {6, 16, 1}, {12, 32, 300}, {7, 17, 513}, {200, 70, 260}, {64, 600, 147}, {130, 33, 600}, {1000, 1, 512}, {1, 1000, 70}, {13, 1100, 9},
		{37, 1, 13}, {7, 1, 3}, {5, 1, 1}, {200, 1, 700}, {61, 1, 64}} { // n == 1: the gemv path
		add(s[0], s[1], s[2], i)
	}
	return ps
}

// TestSgemm compares Sgemm and PackedA.Mul with a float64 reference, on
// every kernel, for many shapes, layouts and scalars.
func TestSgemm(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(1))
		for _, p := range products(r) {
			a, b, c := p.operands(r)
			want, tol := p.reference(a, b, c)
			got := append([]float32(nil), c...)
			Sgemm(0, p.ta, p.tb, p.m, p.n, p.k, p.alpha, a, p.lda, b, p.ldb, p.beta, got, p.ldc)
			p.check(t, "Sgemm", got, want, tol)

			pa := PackA(p.ta, p.m, p.k, a, p.lda)
			got2 := append([]float32(nil), c...)
			pa.Mul(0, p.tb, p.n, p.alpha, b, p.ldb, p.beta, got2, p.ldc)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(got2[i]) && !(got[i] != got[i] && got2[i] != got2[i]) {
					t.Fatalf("PackedA.Mul %+v: element %d = %v, Sgemm gave %v", p, i, got2[i], got[i])
				}
			}
		}
	})
}

// TestSgemmZeroK: k == 0 or alpha == 0 only scales C, and beta == 0
// clears NaNs.
func TestSgemmZeroK(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		for _, k := range []int{0, 5} {
			c := []float32{1, float32(math.NaN()), 3, 4, 5, 6}
			a, b := make([]float32, 2*max(k, 1)), make([]float32, 3*max(k, 1))
			Sgemm(1, false, false, 2, 3, k, 0, a, max(k, 1), b, 3, 0, c, 3)
			for i, v := range c {
				if v != 0 {
					t.Fatalf("k=%d: beta 0 left c[%d] = %v", k, i, v)
				}
			}
			c = []float32{1, 2, 3, 4, 5, 6}
			Sgemm(1, false, false, 2, 3, k, 0, a, max(k, 1), b, 3, 2, c, 3)
			if c[5] != 12 {
				t.Fatalf("k=%d: beta 2 gave c[5] = %v, want 12", k, c[5])
			}
		}
	})
}

// TestSgemmDeterministic: the same product gives the same bits whatever
// the number of goroutines, through Sgemm and PackedA.
func TestSgemmDeterministic(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(2))
		for _, s := range [][3]int{{64, 3136 / 4, 147}, {130, 261, 300}, {512, 49, 600}, {9, 2000, 33}, {1000, 1, 512}, {97, 1030, 520}} {
			m, n, k := s[0], s[1], s[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					p := product{ta: ta, tb: tb, m: m, n: n, k: k, lda: k, ldb: n, ldc: n, alpha: 0.5, beta: 0.25}
					if ta {
						p.lda = m
					}
					if tb {
						p.ldb = k
					}
					a, b, c0 := p.operands(r)
					pa := PackA(ta, m, k, a, p.lda)
					var ref []float32
					for _, w := range []int{1, 2, 3, 4, 7, 16} {
						c := append([]float32(nil), c0...)
						Sgemm(w, ta, tb, m, n, k, p.alpha, a, p.lda, b, p.ldb, p.beta, c, n)
						c2 := append([]float32(nil), c0...)
						pa.Mul(w, tb, n, p.alpha, b, p.ldb, p.beta, c2, n)
						if ref == nil {
							ref = c
						}
						for i := range c {
							if math.Float32bits(c[i]) != math.Float32bits(ref[i]) || math.Float32bits(c2[i]) != math.Float32bits(ref[i]) {
								t.Fatalf("%v transA=%v transB=%v: element %d is %v (Sgemm) and %v (PackedA) on %d goroutines, %v on 1", s, ta, tb, i, c[i], c2[i], w, ref[i])
							}
						}
					}
				}
			}
		}
	})
}

// TestChoose: GRAFT_CPU's values and what they select.
func TestChoose(t *testing.T) {
	best := kernels[0].name
	for _, tc := range []struct{ env, want string }{
		{"", best}, {"bogus", best}, {"generic", "generic"}, {" GENERIC ", "generic"},
		{"avx512", best}, // the AVX-512 kernel where the CPU has it, else the best below it
	} {
		if got := choose(tc.env).name; got != tc.want {
			t.Errorf("GRAFT_CPU=%q chose %q, want %q", tc.env, got, tc.want)
		}
	}
	avx2 := "generic"
	for _, k := range kernels {
		if k.name == "avx2" {
			avx2 = "avx2"
		}
	}
	if got := choose("avx2").name; got != avx2 {
		t.Errorf("GRAFT_CPU=avx2 chose %q, want %q", got, avx2)
	}
	if p := Paths(); p[len(p)-1] != "generic" || Path() == "" {
		t.Errorf("Paths() = %v, Path() = %q", p, Path())
	}
}

func ExamplePath() {
	fmt.Println(Paths()[len(Paths())-1])
	// Output: generic
}

// TestSgemmEpilogue: the epilogue sees every element of C exactly once,
// each block only once its sums are complete (the bits Sgemm without
// one gives), through Sgemm and PackedA.Mul, on 1 and 3 goroutines.
func TestSgemmEpilogue(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(3))
		ps := products(r)
		for _, s := range [][3]int{{200, 1100, 600}, {64, 3136, 576}, {512, 49, 4608}} {
			ps = append(ps, product{m: s[0], n: s[1], k: s[2], lda: s[2], ldb: s[1], ldc: s[1], alpha: 1, beta: 0})
		}
		for _, p := range ps {
			a, b, c := p.operands(r)
			want := append([]float32(nil), c...)
			Sgemm(1, p.ta, p.tb, p.m, p.n, p.k, p.alpha, a, p.lda, b, p.ldb, p.beta, want, p.ldc)
			pa := PackA(p.ta, p.m, p.k, a, p.lda)
			for _, w := range []int{1, 3} {
				for _, packed := range []bool{false, true} {
					got := append([]float32(nil), c...)
					var mu sync.Mutex
					var bad string // the first failure, from whichever goroutine
					seen := make([]int, len(got))
					epi := func(i0, i1, j0, j1 int) {
						mu.Lock()
						defer mu.Unlock()
						for i := i0; i < i1; i++ {
							for j := j0; j < j1; j++ {
								x := i*p.ldc + j
								if bad == "" && math.Float32bits(got[x]) != math.Float32bits(want[x]) && !(got[x] != got[x] && want[x] != want[x]) {
									bad = fmt.Sprintf("%+v w=%d packed=%v: element (%d,%d) is %v when its block's epilogue runs, want %v", p, w, packed, i, j, got[x], want[x])
								}
								seen[x]++
								got[x] = 2*got[x] + 1
							}
						}
					}
					if packed {
						pa.MulEpi(w, p.tb, p.n, p.alpha, b, p.ldb, p.beta, got, p.ldc, epi)
					} else {
						SgemmEpi(w, p.ta, p.tb, p.m, p.n, p.k, p.alpha, a, p.lda, b, p.ldb, p.beta, got, p.ldc, epi)
					}
					if bad != "" {
						t.Fatal(bad)
					}
					for x := range got {
						i, j := x/p.ldc, x%p.ldc
						if j >= p.n {
							if seen[x] != 0 || math.Float32bits(got[x]) != math.Float32bits(c[x]) {
								t.Fatalf("%+v: the epilogue touched (%d,%d), outside C", p, i, j)
							}
							continue
						}
						if seen[x] != 1 {
							t.Fatalf("%+v w=%d packed=%v: the epilogue saw (%d,%d) %d times", p, w, packed, i, j, seen[x])
						}
					}
				}
			}
		}
	})
}

// TestSgemmFill: a product whose op(B) is made block by block by a fill
// function gives the bits of the same product from the stored matrix,
// through SgemmFill and PackedA.MulFill, on 1 and 3 goroutines.
func TestSgemmFill(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(4))
		ps := products(r)
		ps = append(ps, product{m: 64, n: 3136, k: 576, lda: 576, ldb: 3136, ldc: 3136, alpha: 1, beta: 0},
			product{m: 70, n: 1100, k: 600, lda: 600, ldb: 1100, ldc: 1100, alpha: 0.5, beta: 1})
		for _, p := range ps {
			if p.tb {
				continue // fill gives op(B), which is what transB changes
			}
			a, b, c := p.operands(r)
			want := append([]float32(nil), c...)
			Sgemm(1, p.ta, false, p.m, p.n, p.k, p.alpha, a, p.lda, b, p.ldb, p.beta, want, p.ldc)
			fill := func(dst []float32, l0, kc, j0, n, nr int) {
				panels := (n + nr - 1) / nr
				if l0 < 0 || kc <= 0 || l0+kc > p.k || j0 < 0 || n <= 0 || j0+n > p.n || len(dst) < panels*kc*nr {
					panic(fmt.Sprintf("fill asked for rows %d+%d, columns %d+%d of %dx%d into %d values", l0, kc, j0, n, p.k, p.n, len(dst)))
				}
				for i := range dst[:panels*kc*nr] {
					dst[i] = float32(math.NaN()) // the padding must be written too
				}
				for l := range kc {
					for q := range panels * nr {
						v := float32(0)
						if q < n {
							v = b[(l0+l)*p.ldb+j0+q]
						}
						dst[q/nr*kc*nr+l*nr+q%nr] = v
					}
				}
			}
			pa := PackA(p.ta, p.m, p.k, a, p.lda)
			for _, w := range []int{1, 3} {
				got := append([]float32(nil), c...)
				SgemmFill(w, p.ta, p.m, p.n, p.k, p.alpha, a, p.lda, fill, p.beta, got, p.ldc, nil)
				got2 := append([]float32(nil), c...)
				pa.MulFill(w, p.n, p.alpha, fill, p.beta, got2, p.ldc, nil)
				for i := range got {
					same := func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) || x != x && y != y }
					if !same(got[i], want[i]) || !same(got2[i], want[i]) {
						t.Fatalf("%+v w=%d: element %d is %v (SgemmFill) and %v (MulFill), Sgemm gave %v", p, w, i, got[i], got2[i], want[i])
					}
				}
			}
		}
	})
}

// TestMulTilesColumns: through MulTiles, each column of C has the same
// bits whether it is computed alone (n = 1) or among others, at any
// position.
func TestMulTilesColumns(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(7))
		for _, s := range [][3]int{{48, 8, 192}, {1152, 8, 48}, {37, 40, 300}, {5, 3, 7}} {
			m, n, k := s[0], s[1], s[2]
			a, bT := randSlice(r, m*k), randSlice(r, n*k) // B stored n×k: the columns are its rows
			pa := PackA(false, m, k, a, k)
			all := make([]float32, m*n)
			pa.MulTiles(2, true, n, 1, bT, k, 0, all, n, nil)
			for j := range n {
				one := make([]float32, m)
				pa.MulTiles(1, true, 1, 1, bT[j*k:(j+1)*k], k, 0, one, 1, nil)
				for i := range m {
					if math.Float32bits(one[i]) != math.Float32bits(all[i*n+j]) {
						t.Fatalf("%v: C[%d][%d] alone %v, among %d columns %v", s, i, j, one[i], n, all[i*n+j])
					}
				}
			}
		}
	})
}

// TestTilesSplit: the tasks tiles makes cover every panel of C once, and
// a C of few column panels over a tall A is split by rows: split by
// columns, every worker streams all of A (ResNet-18's 512x4608 weights at
// batch 1, 2 column panels: 130 GFLOP/s on two threads against 181 split
// by rows).
func TestTilesSplit(t *testing.T) {
	for _, c := range []struct{ workers, mp, np int }{{2, 37, 2}, {2, 5, 392}, {2, 1, 1}, {4, 19, 7}, {2, 10, 3}, {3, 2, 100}} {
		nbk, ppb, mbk, mpb := tiles(c.workers, c.mp, c.np)
		if nbk*ppb < c.np || (nbk-1)*ppb >= c.np || mbk*mpb < c.mp || (mbk-1)*mpb >= c.mp {
			t.Errorf("tiles(%d, %d, %d) = %d blocks of %d columns, %d of %d rows: not a cover of the panels", c.workers, c.mp, c.np, nbk, ppb, mbk, mpb)
		}
	}
	if nbk, _, mbk, _ := tiles(2, 37, 2); nbk != 1 || mbk < 2 {
		t.Errorf("512x49 on 2 workers: %d column blocks, %d row blocks; want rows split", nbk, mbk)
	}
}

// TestShortKernels: each short kernel gives its rows the bits the full
// kernel gives them (one chain of fused multiply-adds per element, then
// alpha and beta), for kc 0, 1, a group and a tail, beta 0 (C not read:
// NaNs in it vanish) and not, and writes no row past its own.
func TestShortKernels(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, kn := range kernels {
		for _, sk := range kn.short {
			for _, kc := range []int{0, 1, 4, 7, 256} {
				for _, beta := range []float32{0, 1, -0.5} {
					a, b := randSlice(r, kc*kn.mr+1), randSlice(r, kc*kn.nr+1)
					const ldc = 40
					c0 := randSlice(r, kn.mr*ldc)
					if beta == 0 {
						for i := range c0 {
							c0[i] = float32(math.NaN())
						}
					}
					full, short := append([]float32(nil), c0...), append([]float32(nil), c0...)
					kn.micro(kc, &a[0], &b[0], &full[0], ldc, 1.5, beta)
					sk.f(kc, &a[0], &b[0], &short[0], ldc, 1.5, beta)
					for i := range short {
						want := full[i]
						if i/ldc >= sk.rows || i%ldc >= kn.nr {
							want = c0[i] // not the kernel's
						}
						if math.Float32bits(short[i]) != math.Float32bits(want) {
							t.Fatalf("%s rows %d kc %d beta %v: C[%d][%d] = %v, want %v", kn.name, sk.rows, kc, beta, i/ldc, i%ldc, short[i], want)
						}
					}
				}
			}
		}
	}
}
