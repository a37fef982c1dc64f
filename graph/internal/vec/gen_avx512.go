//go:build ignore

// gen_avx512.go writes vec_avx512_amd64.s, the AVX-512F versions of the
// kernels in vec_amd64.s. Run it with go generate.
//
// Each kernel applies the same instructions to each value as its AVX2
// version, in the same order and with the same operands in the same
// places (so that NaN payloads and the sign of zero come out the same),
// 16 values to a ZMM register instead of 8 to a YMM one, with two
// exceptions that give the same bits: e^x scales the polynomial by 2^n
// with one VSCALEFPS where AVX2 multiplies by 2^(n/2) twice (both round
// once: the first AVX2 product is exact), and blends and masks use the
// mask registers (a sign test or comparison into K, then a merging or
// zeroing move). Bitwise operations are the integer ones (VPANDD, VPORD,
// VPXORD), which need AVX-512F only.
//
// A kernel loads its constants and scalar arguments into the top
// registers once, runs over groups of `unroll` vectors, then single
// vectors, then the last n%16 values with a mask (K1), which reads and
// writes nothing beyond them. Groups are interleaved instruction by
// instruction, each group in its own registers.
package main

import (
	"bytes"
	"fmt"
	"log"
	"math"
	"os"
	"strings"
)

// constants are generic.go's, by the names the kernels use.
var constants = []struct {
	name string
	v    float32
}{
	{"zero", 0},
	{"one", 1},
	{"two", 2},
	{"four", 4},     // erfMax
	{"erfMid", 2.5}, // erfMid
	{"tanhThr", 0.625},
	{"expHi", 89},
	{"expLo", -104},
	{"log2e", 1.44269504088896341},
	{"magic", 12582912},
	{"ln2Hi", 0.693359375},
	{"ln2Lo", -2.12194440e-4},
	{"e2", 0.49999994},
	{"e3", 0.166665211},
	{"e4", 0.041668389},
	{"e5", 0.00836871006},
	{"e6", 0.00138146104},
	{"negMax", -math.MaxFloat32},
	{"t0", -0.333332807},
	{"t1", 0.133314416},
	{"t2", -0.0537397154},
	{"t3", 0.0206390899},
	{"t4", -0.00570499059},
	{"p0", 1.12837911},
	{"p1", -0.37612626},
	{"p2", 0.112835854},
	{"p3", -0.0268538166},
	{"p4", 0.00518833473},
	{"p5", -0.000801024784},
	{"p6", 7.85402663e-05},
	{"r0", 0.210806817},
	{"r1", -0.0742964968},
	{"r2", 0.0251646228},
	{"r3", -0.00781163853},
	{"r4", 0.00192717696},
	{"r5", -0.00201032055},
	{"r6", -0.000825515774},
	{"r7", -0.000393788039},
}

// sign is the bit pattern 0x80000000, not a float constant.
const signBits = 0x80000000

// A kernel is one generated function.
type kernel struct {
	name   string
	doc    string
	ptrs   []string // the pointer arguments after dst, each a stream of n values
	floats []string // the float32 arguments after n, broadcast into registers
	consts []string // constants kept in registers ("sign" is the sign bit)
	temps  int      // temporaries per group
	unroll int      // vectors per step of the main loop
	// setup writes extra prologue lines (g.c names the registers).
	setup func(g *gen)
	// body computes one vector from the registers in (one per pointer
	// argument), using t; it returns the register holding the result.
	body func(g *gen, in, t []string, k string) string
}

// gen writes one kernel's code.
type gen struct {
	reg   map[string]string // constant or argument name -> register
	used  map[string]bool   // the names the code has read
	lines []string
}

func (g *gen) op(format string, a ...any) { g.lines = append(g.lines, fmt.Sprintf(format, a...)) }

// c is the register holding constant or argument name.
func (g *gen) c(name string) string {
	r, ok := g.reg[name]
	if !ok {
		log.Fatalf("constant %s is not in a register", name)
	}
	g.used[name] = true
	return r
}

// k writes an instruction whose first Go operand (Intel's last source)
// is constant name: its register if it has one, else the constant in
// memory, broadcast (the mnemonic gets .BCST). Operands in other places
// must be registers: g.c. An immediate goes after the mnemonic, as in
// "VCMPPS $0x11".
func (g *gen) k(mnemonic, name string, rest ...string) {
	mnemonic, imm, _ := strings.Cut(mnemonic, " ")
	g.used[name] = true
	c, ok := g.reg[name]
	if !ok {
		mnemonic, c = mnemonic+".BCST", m(name)
	}
	ops := append([]string{c}, rest...)
	if imm != "" {
		ops = append([]string{imm}, ops...)
	}
	g.op("%s %s", mnemonic, strings.Join(ops, ", "))
}

// load sets register dst to constant name.
func (g *gen) load(name, dst string) {
	g.used[name] = true
	if c, ok := g.reg[name]; ok {
		g.op("VMOVAPS %s, %s", c, dst)
	} else {
		g.op("VBROADCASTSS %s, %s", m(name), dst)
	}
}

// m is constant name as a memory operand (for VBROADCASTSS and .BCST).
func m(name string) string { return "k" + name + "<>(SB)" }

var out bytes.Buffer

func p(format string, a ...any) { fmt.Fprintf(&out, "\t"+format+"\n", a...) }
func label(l string)            { fmt.Fprintf(&out, "%s:\n", l) }

// exp sets x = e^x (exp32 in generic.go), clobbering t[0:3]: x is
// clamped to [expLo, expHi], n = round(x·log2e), r = x - n·ln2 in two
// parts, p = 1 + r + r²·q(r), and x = p·2^n. A clamp that cannot change
// x, given what the caller knows of it, is left out with hi or lo false:
// each returns x when x is NaN, so only the range matters.
func exp(g *gen, x string, t []string, hi, lo bool) {
	if hi {
		g.op("VMINPS %s, %s, %s", x, g.c("expHi"), x)
	}
	if lo {
		g.op("VMAXPS %s, %s, %s", x, g.c("expLo"), x)
	}
	g.load("log2e", t[0])
	g.k("VFMADD213PS", "magic", x, t[0])
	g.k("VSUBPS", "magic", t[0], t[0])
	g.k("VFNMADD231PS", "ln2Hi", t[0], x)
	g.k("VFNMADD231PS", "ln2Lo", t[0], x)
	poly(g, t[2], x, "e6", "e5", "e4", "e3", "e2")
	g.op("VMULPS %s, %s, %s", x, x, t[1])
	g.op("VFMADD213PS %s, %s, %s", x, t[1], t[2])
	g.k("VADDPS", "one", t[2], t[2])
	g.op("VSCALEFPS %s, %s, %s", t[0], t[2], x)
}

// expConsts are the constants exp reads, but for expHi and expLo.
var expConsts = []string{"one", "log2e", "magic", "ln2Hi", "ln2Lo", "e2", "e3", "e4", "e5", "e6"}

// sigmoid sets x = sigmoid(x), clobbering t[0:3] and k: e = e^-|x|, then
// 1/(1+e) for x >= 0 and e/(1+e) for x < 0 (k: x's sign bit).
func sigmoid(g *gen, x string, t []string, k string) {
	g.k("VPTESTMD", "sign", x, k)
	g.k("VPORD", "sign", x, x)
	exp(g, x, t, false, true) // -|x| <= 0
	g.k("VADDPS", "one", x, t[0])
	g.op("VBLENDMPS %s, %s, %s, %s", x, g.c("one"), k, x)
	g.op("VDIVPS %s, %s, %s", t[0], x, x)
}

// poly sets dst = the polynomial with coefficients cs (highest degree
// first) at z, by Horner's rule.
func poly(g *gen, dst, z string, cs ...string) {
	g.load(cs[0], dst)
	for _, c := range cs[1:] {
		g.k("VFMADD213PS", c, z, dst)
	}
}

func with(a []string, b ...string) []string { return append(append([]string(nil), a...), b...) }

var kernels = []kernel{
	{
		name: "exp", doc: "dst = e^x.", ptrs: []string{"x"},
		consts: with(expConsts, "expHi", "expLo"), temps: 3, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			exp(g, in[0], t, true, true)
			return in[0]
		},
	},
	{
		name: "sigmoid", doc: "dst = 1/(1+e^-x).", ptrs: []string{"x"},
		consts: with(expConsts, "expLo", "sign"), temps: 3, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			sigmoid(g, in[0], t, k)
			return in[0]
		},
	},
	{
		name: "silu", doc: "dst = max(x, -MaxFloat32)·sigmoid(x).", ptrs: []string{"x"},
		// 4 groups of 5 registers leave 12 for constants: e2 is read from
		// memory.
		consts: with(expConsts[:5], "e3", "e4", "e5", "e6", "expLo", "sign", "negMax"), temps: 4, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			x := in[0]
			g.op("VMAXPS %s, %s, %s", x, g.c("negMax"), t[3])
			sigmoid(g, x, t, k)
			g.op("VMULPS %s, %s, %s", t[3], x, x)
			return x
		},
	},
	{
		name: "tanh", doc: "dst = tanh(x): with a = |x|, a + a·z·Q(z), z = a², for a < 0.625,\n// else 1 - 2/(e^2a + 1); then x's sign.", ptrs: []string{"x"},
		consts: []string{"expHi", "one", "two", "sign"}, temps: 6, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			x, sgn, a, small := in[0], t[3], t[4], t[5]
			g.k("VPANDD", "sign", x, sgn)
			g.op("VPANDND %s, %s, %s", x, g.c("sign"), a)
			g.op("VMULPS %s, %s, %s", a, a, t[0])
			poly(g, small, t[0], "t4", "t3", "t2", "t1", "t0")
			g.op("VMULPS %s, %s, %s", t[0], small, small)
			g.op("VFMADD213PS %s, %s, %s", a, a, small)
			g.op("VADDPS %s, %s, %s", a, a, x)
			exp(g, x, t, true, false) // 2|x| >= 0
			g.k("VADDPS", "one", x, x)
			g.op("VDIVPS %s, %s, %s", x, g.c("two"), t[0])
			g.op("VSUBPS %s, %s, %s", t[0], g.c("one"), x)
			g.k("VCMPPS $0x11", "tanhThr", a, k)
			g.op("VBLENDMPS %s, %s, %s, %s", small, x, k, x)
			g.op("VPORD %s, %s, %s", sgn, x, x)
			return x
		},
	},
	{
		name: "erf", doc: "dst = erf(x): with a = |x|, a·P(a²) for a < 1, else\n// 1 - e^(-c²)·R(c-2.5) with c = min(a, 4); then x's sign.", ptrs: []string{"x"},
		consts: with(expConsts, "sign", "four"), temps: 7, unroll: 2,
		body: func(g *gen, in, t []string, k string) string {
			x, sgn, a, small, r := in[0], t[3], t[4], t[5], t[6]
			g.k("VPANDD", "sign", x, sgn)
			g.op("VPANDND %s, %s, %s", x, g.c("sign"), a)
			g.op("VMULPS %s, %s, %s", a, a, t[0])
			poly(g, small, t[0], "p6", "p5", "p4", "p3", "p2", "p1", "p0")
			g.op("VMULPS %s, %s, %s", a, small, small)
			g.op("VMINPS %s, %s, %s", a, g.c("four"), t[1])
			g.k("VSUBPS", "erfMid", t[1], t[0])
			poly(g, r, t[0], "r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0")
			g.op("VMULPS %s, %s, %s", t[1], t[1], x)
			g.k("VPXORD", "sign", x, x)
			exp(g, x, t, false, false) // -min(|x|, 4)² is in [-16, 0]
			g.k("VFNMADD213PS", "one", r, x)
			g.k("VCMPPS $0x11", "one", a, k) // erfThr is 1
			g.op("VBLENDMPS %s, %s, %s, %s", small, x, k, x)
			g.op("VPORD %s, %s, %s", sgn, x, x)
			return x
		},
	},
	{
		name: "affineClamp", doc: "dst = min(max(x·a+b, lo), hi).", ptrs: []string{"x"}, floats: []string{"a", "b", "lo", "hi"},
		unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			x := in[0]
			g.op("VFMADD213PS %s, %s, %s", g.c("b"), g.c("a"), x)
			g.op("VMAXPS %s, %s, %s", x, g.c("lo"), x)
			g.op("VMINPS %s, %s, %s", x, g.c("hi"), x)
			return x
		},
	},
	{
		name: "affineClampMul", doc: "dst = x·min(max(x·a+b, lo), hi).", ptrs: []string{"x"}, floats: []string{"a", "b", "lo", "hi"},
		temps: 1, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			x := in[0]
			g.op("VMOVAPS %s, %s", x, t[0])
			g.op("VFMADD213PS %s, %s, %s", g.c("b"), g.c("a"), x)
			g.op("VMAXPS %s, %s, %s", x, g.c("lo"), x)
			g.op("VMINPS %s, %s, %s", x, g.c("hi"), x)
			g.op("VMULPS %s, %s, %s", t[0], x, x)
			return x
		},
	},
	{
		name: "leakyRelu", doc: "dst = max(x, 0) + alpha·min(x, 0).", ptrs: []string{"x"}, floats: []string{"alpha"},
		consts: []string{"zero"}, temps: 2, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			x := in[0]
			g.op("VMAXPS %s, %s, %s", x, g.c("zero"), t[0])
			g.op("VMINPS %s, %s, %s", x, g.c("zero"), t[1])
			g.op("VFMADD231PS %s, %s, %s", g.c("alpha"), t[1], t[0])
			return t[0]
		},
	},
	{
		name: "rangeMask", doc: "dst = dy where lo <= x <= hi, else 0.", ptrs: []string{"x", "dy"}, floats: []string{"lo", "hi"},
		unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			x, dy := in[0], in[1]
			g.op("VCMPPS $0x1d, %s, %s, %s", g.c("lo"), x, k)
			g.op("VCMPPS $0x12, %s, %s, %s, %s", g.c("hi"), x, k, k)
			g.op("VMOVAPS.Z %s, %s, %s", dy, k, x)
			return x
		},
	},
	arith("add", "VADDPS", "a + b"),
	arith("sub", "VSUBPS", "a - b"),
	arith("mul", "VMULPS", "a · b"),
	arith("div", "VDIVPS", "a / b"),
	{
		name: "max", doc: "dst = max(a, b) as maxAVX2 computes it: m = min(-a, -b), then\n// -(m | min(m, -a)).", ptrs: []string{"a", "b"},
		consts: []string{"sign"}, temps: 2, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			a, b := in[0], in[1]
			g.op("VPXORD %s, %s, %s", g.c("sign"), a, a)
			g.op("VPXORD %s, %s, %s", g.c("sign"), b, b)
			maxTail(g, a, b, t)
			return a
		},
	},
	{
		name: "maxFloor", doc: "dst = max(x, floor), with maxAVX2's rules.", ptrs: []string{"x"}, floats: []string{"floor"},
		consts: []string{"sign"}, temps: 2, unroll: 4,
		setup: func(g *gen) { g.op("VPXORD %s, %s, %s", g.c("sign"), g.c("floor"), g.c("floor")) },
		body: func(g *gen, in, t []string, k string) string {
			x := in[0]
			g.op("VPXORD %s, %s, %s", g.c("sign"), x, x)
			maxTail(g, x, g.c("floor"), t)
			return x
		},
	},
	{
		name: "sigmoidGrad", doc: "dst = b·(a·(1-a)): the sigmoid gradient from its output a and dy b.", ptrs: []string{"y", "dy"},
		consts: []string{"one"}, temps: 1, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			y, dy := in[0], in[1]
			g.op("VSUBPS %s, %s, %s", y, g.c("one"), t[0])
			g.op("VMULPS %s, %s, %s", t[0], y, y)
			g.op("VMULPS %s, %s, %s", dy, y, y)
			return y
		},
	},
	{
		name: "tanhGrad", doc: "dst = b·(1-a²): the tanh gradient from its output a and dy b.", ptrs: []string{"y", "dy"},
		consts: []string{"one"}, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			y, dy := in[0], in[1]
			g.op("VFNMADD213PS %s, %s, %s", g.c("one"), y, y)
			g.op("VMULPS %s, %s, %s", dy, y, y)
			return y
		},
	},
}

// maxTail sets a = -(m | min(m, a)) with m = min(a, b), for a and b
// holding the negated operands of max.
func maxTail(g *gen, a, b string, t []string) {
	g.op("VMINPS %s, %s, %s", b, a, t[0])
	g.op("VMINPS %s, %s, %s", a, t[0], t[1])
	g.op("VPORD %s, %s, %s", t[1], t[0], t[0])
	g.op("VPXORD %s, %s, %s", g.c("sign"), t[0], a)
}

// arith is a same-shape arithmetic kernel: dst = a op b.
func arith(name, op, what string) kernel {
	return kernel{
		name: name, doc: "dst = " + what + ".", ptrs: []string{"a", "b"}, unroll: 4,
		body: func(g *gen, in, t []string, k string) string {
			g.op("%s %s, %s, %s", op, in[1], in[0], in[0])
			return in[0]
		},
	}
}

// ptrRegs holds the pointer arguments after dst.
var ptrRegs = []string{"SI", "BX"}

func main() {
	out.WriteString(`// Code generated by gen_avx512.go; DO NOT EDIT.

//go:build amd64 && !purego

#include "textflag.h"

// AVX-512F kernels over any n >= 1 values (see gen_avx512.go): Z16-Z31
// hold constants and scalar arguments, Z0-Z15 the values in flight, K1
// the mask of the last partial vector, K2-K5 per-group masks.

`)
	for _, c := range constants {
		fmt.Fprintf(&out, "DATA k%s<>+0(SB)/4, $%#08x\n", c.name, math.Float32bits(c.v))
		fmt.Fprintf(&out, "GLOBL k%s<>(SB), RODATA|NOPTR, $4\n", c.name)
	}
	fmt.Fprintf(&out, "DATA ksign<>+0(SB)/4, $%#08x\n", signBits)
	fmt.Fprintf(&out, "GLOBL ksign<>(SB), RODATA|NOPTR, $4\n")
	for _, k := range kernels {
		write(k)
	}
	if err := os.WriteFile("vec_avx512_amd64.s", out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

func write(k kernel) {
	name := k.name + "AVX512"
	args := "dst, " + strings.Join(k.ptrs, ", ") + " *float32, n int"
	if len(k.floats) > 0 {
		args += ", " + strings.Join(k.floats, ", ") + " float32"
	}
	nOff := 8 * (1 + len(k.ptrs))
	frame := nOff + 8 + 4*len(k.floats)
	fmt.Fprintf(&out, "\n// func %s(%s)\n// %s\nTEXT ·%s(SB), NOSPLIT, $0-%d\n", name, args, k.doc, name, frame)

	g := &gen{reg: map[string]string{}, used: map[string]bool{}}
	top := 31
	take := func() string {
		r := fmt.Sprintf("Z%d", top)
		top--
		return r
	}
	p("MOVQ dst+0(FP), DI")
	for i, a := range k.ptrs {
		p("MOVQ %s+%d(FP), %s", a, 8*(1+i), ptrRegs[i])
	}
	p("MOVQ n+%d(FP), CX", nOff)
	for i, f := range k.floats {
		g.reg[f] = take()
		p("VBROADCASTSS %s+%d(FP), %s", f, nOff+8+4*i, g.reg[f])
	}
	for _, c := range k.consts {
		g.reg[c] = take()
		p("VBROADCASTSS %s, %s", m(c), g.reg[c])
	}
	if k.setup != nil {
		k.setup(g)
		flush(g)
	}
	per := len(k.ptrs) + k.temps
	if k.unroll*per > top+1 || k.unroll > 4 {
		log.Fatalf("%s: %d groups of %d registers do not fit below Z%d", name, k.unroll, per, top)
	}
	group := func(j int) (in, t []string, mask string) {
		for i := 0; i < per; i++ {
			r := fmt.Sprintf("Z%d", j*per+i)
			if i < len(k.ptrs) {
				in = append(in, r)
			} else {
				t = append(t, r)
			}
		}
		return in, t, fmt.Sprintf("K%d", 2+j)
	}
	// step writes the loads, the bodies of groups 0..groups-1 interleaved,
	// and the stores, at AX; mask is "" or "K1".
	step := func(groups int, mask string) {
		var res []string
		var bodies [][]string
		for j := 0; j < groups; j++ {
			in, t, km := group(j)
			for i, r := range in {
				if mask != "" {
					p("VMOVUPS.Z (%s)(AX*4), %s, %s", ptrRegs[i], mask, r)
				} else {
					p("VMOVUPS %d(%s)(AX*4), %s", 64*j, ptrRegs[i], r)
				}
			}
			gj := &gen{reg: g.reg, used: g.used}
			res = append(res, k.body(gj, in, t, km))
			bodies = append(bodies, gj.lines)
		}
		for i := 0; ; i++ {
			more := false
			for _, b := range bodies {
				if i < len(b) {
					p("%s", b[i])
					more = true
				}
			}
			if !more {
				break
			}
		}
		for j, r := range res {
			if mask != "" {
				p("VMOVUPS %s, %s, (DI)(AX*4)", r, mask)
			} else {
				p("VMOVUPS %s, %d(DI)(AX*4)", r, 64*j)
			}
		}
	}
	p("XORQ AX, AX")
	if k.unroll > 1 {
		p("MOVQ CX, DX")
		p("ANDQ $-%d, DX", 16*k.unroll)
		p("JZ one")
		label("loop")
		step(k.unroll, "")
		p("ADDQ $%d, AX", 16*k.unroll)
		p("CMPQ AX, DX")
		p("JLT loop")
		label("one")
	}
	p("MOVQ CX, DX")
	p("ANDQ $-16, DX")
	p("CMPQ AX, DX")
	p("JGE tail")
	label("loop1")
	step(1, "")
	p("ADDQ $16, AX")
	p("CMPQ AX, DX")
	p("JLT loop1")
	label("tail")
	p("ANDQ $15, CX")
	p("JZ done")
	p("MOVL $1, DX")
	p("SHLL CX, DX")
	p("DECL DX")
	p("KMOVW DX, K1")
	step(1, "K1")
	label("done")
	p("VZEROUPPER")
	p("RET")
	for _, c := range with(k.floats, k.consts...) {
		if !g.used[c] {
			log.Fatalf("%s: %s is loaded into a register but never read", name, c)
		}
	}
}

// flush writes g's pending lines.
func flush(g *gen) {
	for _, l := range g.lines {
		p("%s", l)
	}
	g.lines = nil
}
