package graph

import (
	"fmt"
	"math"

	"github.com/graftml/graft/onnx"
)

// LRN: local response normalization across channels,
//
//	y[c] = x[c] / (bias + alpha/size * Σ x[c']²)^beta
//
// summed over c' in [c - (size-1)/2, c + ceil((size-1)/2)] ∩ [0, C).
// The op is registered in convOps (conv.go).

type lrnKernel struct {
	shape             []int
	n, c, s           int // batch, channels, spatial elements per channel
	lo, hi            int // window: channels c-lo .. c+hi
	alpha, beta, bias float64
	size              int
}

func buildLRN(c *nodeCtx) error {
	x, err := c.input(0)
	if err != nil {
		return err
	}
	if len(x.shape) < 2 {
		return c.errorf("input %q has shape %v; LRN needs (N, C, ...)", x.name, x.shape)
	}
	if !c.has("size") {
		return c.errorf("attribute \"size\" is required")
	}
	size, err := c.attrInt("size", 1)
	if err != nil {
		return err
	}
	if size < 1 {
		return c.errorf("size %d must be positive", size)
	}
	alpha, err := c.attrFloat("alpha", 1e-4)
	if err != nil {
		return err
	}
	beta, err := c.attrFloat("beta", 0.75)
	if err != nil {
		return err
	}
	bias, err := c.attrFloat("bias", 1)
	if err != nil {
		return err
	}
	return c.apply(0, newLRN(x.shape, size, alpha, beta, bias), x.shape, onnx.Float32, 0)
}

func newLRN(shape []int, size int, alpha, beta, bias float32) *lrnKernel {
	k := &lrnKernel{shape: append([]int(nil), shape...), n: shape[0], c: shape[1], size: size,
		alpha: float64(alpha), beta: float64(beta), bias: float64(bias)}
	k.s = onnx.NumElems(shape[2:])
	k.lo = (size - 1) / 2
	k.hi = size - 1 - k.lo
	return k
}

// lrnChunk is the number of spatial positions one task handles.
const lrnChunk = 1024

// scales computes s[c][p] = bias + alpha/size * Σ x[c'][p]² for the
// positions [p0, p1) of image ni; s has (p1-p0) columns per channel.
func (k *lrnKernel) scales(x []float32, ni, p0, p1 int, s []float64) {
	w := p1 - p0
	sq := make([]float64, k.c*w)
	for c := 0; c < k.c; c++ {
		xr := x[(ni*k.c+c)*k.s+p0:][:w]
		r := sq[c*w : (c+1)*w]
		for p, v := range xr {
			r[p] = float64(v) * float64(v)
		}
	}
	a := k.alpha / float64(k.size)
	for c := 0; c < k.c; c++ {
		r := s[c*w : (c+1)*w]
		for p := range r {
			r[p] = 0
		}
		for c2 := max(0, c-k.lo); c2 <= min(k.c-1, c+k.hi); c2++ {
			for p, v := range sq[c2*w : (c2+1)*w] {
				r[p] += v
			}
		}
		for p := range r {
			r[p] = k.bias + a*r[p]
		}
	}
}

func (k *lrnKernel) tasks() (chunks, total int) {
	chunks = (k.s + lrnChunk - 1) / lrnChunk
	return chunks, k.n * chunks
}

func (k *lrnKernel) forward(in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if x.DType != onnx.Float32 || len(x.F) != k.n*k.c*k.s {
		return nil, fmt.Errorf("LRN: input must be float32 of shape %v", k.shape)
	}
	out := onnx.NewFloat(k.shape, nil)
	chunks, total := k.tasks()
	forEachPar(0, total, func(t int) {
		ni, p0 := t/chunks, (t%chunks)*lrnChunk
		p1 := min(k.s, p0+lrnChunk)
		w := p1 - p0
		s := make([]float64, k.c*w)
		k.scales(x.F, ni, p0, p1, s)
		for c := 0; c < k.c; c++ {
			off := (ni*k.c+c)*k.s + p0
			xr, yr := x.F[off:][:w], out.F[off:][:w]
			for p, v := range xr {
				yr[p] = float32(float64(v) * math.Pow(s[c*w+p], -k.beta))
			}
		}
	})
	return out, nil
}

// backward: with s_c the scale and y_c = x_c s_c^-β,
//
//	dx_j = dy_j s_j^-β - (2αβ/size) x_j Σ_{c: j in window(c)} dy_c x_c s_c^(-β-1)
//
// and j is in window(c) when j-hi <= c <= j+lo.
func (k *lrnKernel) backward(_ int, in []*onnx.Tensor, _, dy *onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	g := onnx.NewFloat(k.shape, nil)
	chunks, total := k.tasks()
	coef := 2 * k.alpha * k.beta / float64(k.size)
	forEachPar(0, total, func(t int) {
		ni, p0 := t/chunks, (t%chunks)*lrnChunk
		p1 := min(k.s, p0+lrnChunk)
		w := p1 - p0
		s := make([]float64, k.c*w)
		k.scales(x.F, ni, p0, p1, s)
		tc := make([]float64, k.c*w) // dy_c x_c s_c^(-β-1)
		for c := 0; c < k.c; c++ {
			off := (ni*k.c+c)*k.s + p0
			xr, dr := x.F[off:][:w], dy.F[off:][:w]
			for p := range xr {
				sc := s[c*w+p]
				tc[c*w+p] = float64(dr[p]) * float64(xr[p]) * math.Pow(sc, -k.beta-1)
			}
		}
		acc := make([]float64, w)
		for j := 0; j < k.c; j++ {
			clear(acc)
			for c := max(0, j-k.hi); c <= min(k.c-1, j+k.lo); c++ {
				for p, v := range tc[c*w : (c+1)*w] {
					acc[p] += v
				}
			}
			off := (ni*k.c+j)*k.s + p0
			xr, dr, gr := x.F[off:][:w], dy.F[off:][:w], g.F[off:][:w]
			for p := range gr {
				gr[p] = float32(float64(dr[p])*math.Pow(s[j*w+p], -k.beta) - coef*float64(xr[p])*acc[p])
			}
		}
	})
	return g, nil
}
