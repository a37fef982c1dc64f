package gemm

import "unsafe"

// genericKernel is the pure-Go micro-kernel: 4×4, sixteen scalar
// accumulators. It serves CPUs without a kernel of their own and the
// purego build.
var genericKernel = &kernel{name: "generic", mr: 4, nr: 4, micro: microGeneric}

func microGeneric(kc int, a, b, c *float32, ldc int, alpha, beta float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	if kc > 0 {
		ap := unsafe.Slice(a, kc*4)
		bp := unsafe.Slice(b, kc*4)
		for l := 0; l < kc; l++ {
			av := (*[4]float32)(ap[l*4:])
			bv := (*[4]float32)(bp[l*4:])
			a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
			b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
		}
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	store4(cs[0:4], alpha, beta, c00, c01, c02, c03)
	store4(cs[ldc:ldc+4], alpha, beta, c10, c11, c12, c13)
	store4(cs[2*ldc:2*ldc+4], alpha, beta, c20, c21, c22, c23)
	store4(cs[3*ldc:3*ldc+4], alpha, beta, c30, c31, c32, c33)
}

func store4(r []float32, alpha, beta, s0, s1, s2, s3 float32) {
	r = r[:4]
	if beta == 0 {
		r[0], r[1], r[2], r[3] = alpha*s0, alpha*s1, alpha*s2, alpha*s3
		return
	}
	r[0] = alpha*s0 + beta*r[0]
	r[1] = alpha*s1 + beta*r[1]
	r[2] = alpha*s2 + beta*r[2]
	r[3] = alpha*s3 + beta*r[3]
}
