package dwconv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// withPath runs f with path p in use; "avx512-wide" is the avx512 path
// without its narrow kernels.
func withPath(p string, f func()) {
	old, oldNarrow := path, narrowKernels
	path = p
	if p == "avx512-wide" {
		path, narrowKernels = "avx512", false
	}
	defer func() { path, narrowKernels = old, oldNarrow }()
	f()
}

// vectorPaths returns the vector paths this machine runs, for withPath.
func vectorPaths() []string {
	p := paths()[1:]
	if hasAVX512 {
		p = append(p, "avx512-wide")
	}
	return p
}

// reference is the depthwise convolution in pure Go, straight from the
// definition (taps outside the input skipped), summed in float64, with
// a bound on each output's float32 rounding error: (K²+1)·2⁻²³·Σ|terms|.
func reference(g Geom, x, w []float32, bias float32) (want, tol []float64) {
	want = make([]float64, g.OH*g.OW)
	tol = make([]float64, len(want))
	for oh := range g.OH {
		for ow := range g.OW {
			s, a := float64(bias), math.Abs(float64(bias))
			for i := range g.K {
				ih := oh*g.S - g.PT + i
				for j := range g.K {
					iw := ow*g.S - g.PL + j
					if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
						continue
					}
					t := float64(w[i*g.K+j]) * float64(x[ih*g.W+iw])
					s += t
					a += math.Abs(t)
				}
			}
			want[oh*g.OW+ow] = s
			tol[oh*g.OW+ow] = float64(g.K*g.K+1)*0x1p-23*a + 1e-30
		}
	}
	return want, tol
}

// pureGo is the kernels' arithmetic in pure Go on the padded plane: the
// bias, then each tap's product added in row-major tap order, unfused.
func pureGo(g Geom, x, w []float32, bias float32) []float32 {
	ldx, rows := g.padded()
	buf := make([]float32, rows*ldx)
	pad(g, x, buf, ldx, rows)
	y := make([]float32, g.OH*g.OW)
	for oh := range g.OH {
		for ow := range g.OW {
			acc := bias
			for i := range g.K {
				row := buf[(oh*g.S+i)*ldx+ow*g.S:]
				for j := range g.K {
					acc += w[i*g.K+j] * row[j]
				}
			}
			y[oh*g.OW+ow] = acc
		}
	}
	return y
}

// randGeom returns a random geometry for a k×k filter at stride s:
// planes 1 to 40 wide and high (ragged against every vector width),
// pads 0 to k-1 on each side.
func randGeom(r *rand.Rand, k, s int) Geom {
	for {
		g := Geom{H: 1 + r.IntN(40), W: 1 + r.IntN(40), K: k, S: s, PT: r.IntN(k), PL: r.IntN(k)}
		pb, pr := r.IntN(k), r.IntN(k)
		spanH, spanW := g.H+g.PT+pb-k, g.W+g.PL+pr-k
		if spanH < 0 || spanW < 0 {
			continue
		}
		g.OH, g.OW = spanH/s+1, spanW/s+1
		if g.valid() == nil {
			return g
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestForward checks every path this machine runs against the float64
// reference and against pure Go on random geometries with ragged edges,
// and that the output plane is written exactly: guard values around it
// stay untouched.
func TestForward(t *testing.T) {
	for _, p := range vectorPaths() {
		for _, k := range []int{3, 5} {
			for _, s := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/k%d/s%d", p, k, s), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(k), uint64(s)))
					withPath(p, func() {
						for range 300 {
							g := randGeom(r, k, s)
							if !Supported(g) {
								t.Fatalf("%+v not supported", g)
							}
							x, w, bias := randSlice(r, g.H*g.W), randSlice(r, k*k), float32(r.NormFloat64())
							const guard = 40
							yb := make([]float32, g.OH*g.OW+2*guard)
							for i := range yb {
								yb[i] = 12345
							}
							y := yb[guard : guard+g.OH*g.OW]
							Forward(g, x, w, bias, y)
							for i := range guard {
								if yb[i] != 12345 || yb[len(yb)-1-i] != 12345 {
									t.Fatalf("%+v: wrote outside the output plane", g)
								}
							}
							want, tol := reference(g, x, w, bias)
							pg := pureGo(g, x, w, bias)
							for i, v := range y {
								if math.Abs(float64(v)-want[i]) > tol[i] || math.Abs(float64(v)-float64(pg[i])) > 2*tol[i] {
									t.Fatalf("%+v: output %d = %v, want %v (pure Go %v)", g, i, v, want[i], pg[i])
								}
							}
						}
					})
				})
			}
		}
	}
}

// TestPathsAgree checks that the vector paths give the same bits: the
// same fused multiply-adds in the same order, 16 or 8 lanes at a time.
func TestPathsAgree(t *testing.T) {
	ps := vectorPaths()
	if len(ps) < 2 {
		t.Skip("fewer than two vector paths on this machine")
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		k, s := 3+2*r.IntN(2), 1+r.IntN(2)
		g := randGeom(r, k, s)
		x, w, bias := randSlice(r, g.H*g.W), randSlice(r, k*k), float32(r.NormFloat64())
		var outs [][]float32
		for _, p := range ps {
			withPath(p, func() {
				y := make([]float32, g.OH*g.OW)
				Forward(g, x, w, bias, y)
				outs = append(outs, y)
			})
		}
		for j := 1; j < len(outs); j++ {
			for i := range outs[0] {
				if math.Float32bits(outs[0][i]) != math.Float32bits(outs[j][i]) {
					t.Fatalf("%+v: output %d: %s %v, %s %v", g, i, ps[0], outs[0][i], ps[j], outs[j][i])
				}
			}
		}
	}
}

// TestForwardN checks that each plane of a multi-plane call comes out
// with the bits Forward gives it alone, whatever the planes before it
// (of other contents, in the same padded buffer), for inputs one plane
// apart, further apart and shared (stride 0), with and without a bias,
// and that nothing outside the output planes is written.
func TestForwardN(t *testing.T) {
	for _, p := range vectorPaths() {
		t.Run(p, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			withPath(p, func() {
				for range 300 {
					k, s := 3+2*r.IntN(2), 1+r.IntN(2)
					g := randGeom(r, k, s)
					hw, ohw := g.H*g.W, g.OH*g.OW
					n := 1 + r.IntN(5)
					xs := [...]int{hw, hw + r.IntN(20), 0}[r.IntN(3)]
					x := randSlice(r, (n-1)*xs+hw)
					w := randSlice(r, n*k*k)
					var bias []float32
					if r.IntN(2) == 0 {
						bias = randSlice(r, n)
					}
					const guard = 40
					yb := make([]float32, n*ohw+2*guard)
					for i := range yb {
						yb[i] = 12345
					}
					ForwardN(g, n, x, xs, w, bias, yb[guard:guard+n*ohw])
					for i := range guard {
						if yb[i] != 12345 || yb[len(yb)-1-i] != 12345 {
							t.Fatalf("%+v, %d planes: wrote outside the output", g, n)
						}
					}
					for pl := range n {
						var b float32
						if bias != nil {
							b = bias[pl]
						}
						want := make([]float32, ohw)
						Forward(g, x[pl*xs:][:hw], w[pl*k*k:][:k*k], b, want)
						got := yb[guard+pl*ohw:][:ohw]
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%+v, plane %d of %d (input stride %d): output %d = %v, alone %v", g, pl, n, xs, i, got[i], want[i])
							}
						}
					}
				}
			})
		})
	}
}

// TestArgsLayout checks the field offsets of args and narrowTab that
// gen_amd64.go writes into the assembly.
func TestArgsLayout(t *testing.T) {
	src, err := os.ReadFile("gen_amd64.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s*off(\w+)\s*=\s*(\d+)$`).FindAllStringSubmatch(string(src), -1) {
		v, _ := strconv.Atoi(m[2])
		consts[strings.ToLower(m[1])] = v
	}
	seen := 0
	for _, c := range []struct {
		typ    reflect.Type
		prefix string
	}{{reflect.TypeFor[args](), ""}, {reflect.TypeFor[narrowTab](), "tab"}} {
		for i := range c.typ.NumField() {
			f := c.typ.Field(i)
			off, ok := consts[c.prefix+strings.ToLower(f.Name)]
			if !ok || off != int(f.Offset) {
				t.Errorf("%v.%s is at %d; gen_amd64.go says %d (present %v)", c.typ, f.Name, f.Offset, off, ok)
			}
			seen++
		}
	}
	if seen != len(consts) {
		t.Errorf("gen_amd64.go has %d offsets, args and narrowTab %d fields", len(consts), seen)
	}
}

func TestChoose(t *testing.T) {
	if got := choose("generic"); got != "generic" {
		t.Errorf("choose(generic) = %s", got)
	}
	best := paths()[len(paths())-1]
	for _, env := range []string{"", "AVX512", "bogus"} {
		if got := choose(env); got != best {
			t.Errorf("choose(%q) = %s, want %s", env, got, best)
		}
	}
	if hasAVX2 && choose("avx2") != "avx2" {
		t.Errorf("choose(avx2) = %s", choose("avx2"))
	}
	withPath("generic", func() {
		if Supported(Geom{H: 8, W: 8, K: 3, S: 1, PT: 1, PL: 1, OH: 8, OW: 8}) {
			t.Error("Supported on the generic path")
		}
	})
}

// pad writes x into buf (rows×ldx) at row PT, column PL, and zeros around
// it.
func pad(g Geom, x, buf []float32, ldx, rows int) {
	clear(buf[:rows*ldx])
	for r := range g.H {
		copy(buf[(g.PT+r)*ldx+g.PL:][:g.W], x[r*g.W:][:g.W])
	}
}
