//go:build goexperiment.simd && amd64

package graph

import (
	"math"
	"math/rand"
	"simd/archsimd"
	"testing"
)

// simdKernels returns the micro-kernels this CPU can run, by name.
func simdKernels() map[string]simdKernel {
	ks := map[string]simdKernel{}
	if archsimd.X86.AVX512() {
		ks["avx512"] = simdKernel{nr: 32, kern: kern5x32, packRow: packRow32}
	}
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		ks["avx2"] = simdKernel{nr: 16, kern: kern5x16, packRow: packRow16}
	}
	return ks
}

// TestGemmPacked checks every micro-kernel the CPU has against a float64
// triple loop, on shapes with partial panels in m and n, odd k, several
// k-blocks, all transpositions and leading dimensions wider than the
// matrices; then that the result does not depend on the number of
// goroutines or on the kernel, bit for bit, and that a NaN in A or an Inf
// in B reaches only the row or column of C it belongs to (padding must
// not spread it).
func TestGemmPacked(t *testing.T) {
	ks := simdKernels()
	if len(ks) == 0 {
		t.Skip("no AVX2+FMA or AVX-512 on this CPU")
	}
	if gemmFast == nil {
		t.Fatal("gemmFast not set although the CPU has a SIMD kernel")
	}
	r := rand.New(rand.NewSource(5))
	sizes := [][3]int{{5, 32, 2}, {4, 4, 1}, {7, 33, 3}, {11, 17, 257}, {23, 70, 600}, {64, 300, 147}, {130, 75, 40}, {6, 1100, 9}, {97, 48, 513}}
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				alpha := float32(0.75)
				lda, ldb, ldc := k+3, n+2, n+1
				ar, br := m, k
				if ta {
					lda, ar = m+2, k
				}
				if tb {
					ldb, br = k+1, n
				}
				a := randTensor(r, ar*lda).F
				b := randTensor(r, br*ldb).F
				c0 := randTensor(r, m*ldc).F
				want := refGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, 1, c0, ldc)
				var ref []float32
				for name, kn := range ks {
					for _, workers := range []int{1, 2, 3} {
						c := append([]float32(nil), c0...)
						gemmPacked(kn, workers, ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc)
						for i, w := range want {
							if d := math.Abs(float64(c[i]) - w); !(d <= 1e-4*(1+math.Abs(w))) {
								t.Fatalf("%s %v transA=%v transB=%v workers=%d: element %d = %v, want %v", name, sz, ta, tb, workers, i, c[i], w)
							}
						}
						if ref == nil {
							ref = c
							continue
						}
						for i := range c {
							if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
								t.Fatalf("%s %v transA=%v transB=%v workers=%d: element %d = %v, another run gave %v", name, sz, ta, tb, workers, i, c[i], ref[i])
							}
						}
					}
				}
				// a NaN in A and an Inf in B
				ni, nl, ij := m/2, k/2, n/3
				a2 := append([]float32(nil), a...)
				b2 := append([]float32(nil), b...)
				if ta {
					a2[nl*lda+ni] = float32(math.NaN())
				} else {
					a2[ni*lda+nl] = float32(math.NaN())
				}
				if tb {
					b2[ij*ldb+nl] = float32(math.Inf(1))
				} else {
					b2[nl*ldb+ij] = float32(math.Inf(1))
				}
				for name, kn := range ks {
					c := append([]float32(nil), c0...)
					gemmPacked(kn, 2, ta, tb, m, n, k, alpha, a2, lda, b2, ldb, c, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < ldc; j++ {
							v := c[i*ldc+j]
							bad := math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)
							if expect := j < n && (i == ni || j == ij); bad != expect {
								t.Fatalf("%s %v transA=%v transB=%v: C[%d,%d] = %v with a NaN at A[%d,%d] and an Inf at B[%d,%d]", name, sz, ta, tb, i, j, v, ni, nl, nl, ij)
							}
						}
					}
				}
			}
		}
	}
}

// TestSimdTiles checks that the tiling covers every panel once and that
// the column blocks are a multiple of the workers when it says so.
func TestSimdTiles(t *testing.T) {
	for _, w := range []int{1, 2, 3, 4} {
		for _, mp := range []int{1, 2, 13, 103} {
			for _, np := range []int{1, 2, 7, 16, 17, 98, 392, 784} {
				nbk, ppb, mbk, mpb := simdTiles(w, mp*simdMR, np*32, mp, np, 16)
				if ppb < 1 || ppb > 16 || nbk != (np+ppb-1)/ppb || mbk != (mp+mpb-1)/mpb {
					t.Fatalf("simdTiles(%d, mp=%d, np=%d) = %d, %d, %d, %d", w, mp, np, nbk, ppb, mbk, mpb)
				}
			}
		}
	}
}
