package gemm

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

// TestFillBits: every kernel's masked fill writes, for random bit tables
// (all set, none, runs, scattered bits), first bits and offsets, the
// values the definition gives, zeros past n included; lanes masked off
// read as 0 even where a run starts before src or ends past it (src is
// cut from a larger slice of NaNs, so a read outside it would show).
func TestFillBits(t *testing.T) {
	saved := active
	defer func() { active = saved }()
	r := rand.New(rand.NewSource(9))
	for _, kn := range kernels {
		active = kn
		for _, nr := range []int{16, 32} {
			for it := range 400 {
				kc, n, q0 := 1+r.Intn(20), 1+r.Intn(6*nr), r.Intn(100)
				npan := (n + nr - 1) / nr
				size := n + 2*nr
				back := make([]float32, size+4*nr)
				for i := range back {
					back[i] = float32(math.NaN())
				}
				src := back[2*nr : 2*nr+size]
				for i := range src {
					src[i] = float32(i + 1)
				}
				offs := make([]int, kc)
				tabs := make([][]uint32, kc)
				for l := range kc {
					offs[l] = r.Intn(2*nr+1) - nr // runs start up to nr before src
					tab := make([]uint32, (q0+npan*nr+31)/32+2)
					kind := r.Intn(4)
					lo, hi := r.Intn(n+1), r.Intn(n+1)
					for q := range n {
						set := false
						switch kind {
						case 0:
							set = true
						case 2:
							set = q >= lo && q < hi
						case 3:
							set = r.Intn(2) == 0
						}
						if s := offs[l] + q; s < 0 || s >= size {
							set = false // would read outside src
						}
						if set {
							tab[(q0+q)/32] |= 1 << ((q0 + q) % 32)
						}
					}
					// bits past n are set: they must not be read
					for q := n; q < npan*nr+32; q++ {
						if w := (q0 + q) / 32; w < len(tab) {
							tab[w] |= 1 << ((q0 + q) % 32)
						}
					}
					tabs[l] = tab
				}
				got := make([]float32, npan*kc*nr)
				for i := range got {
					got[i] = float32(math.NaN())
				}
				FillBits(got, nr, kc, n, src, offs, tabs, q0)
				for l := range kc {
					for q := range npan * nr {
						want := float32(0)
						if q < n && tabs[l][(q0+q)/32]>>((q0+q)%32)&1 != 0 {
							want = src[offs[l]+q]
						}
						if v := got[(q/nr*kc+l)*nr+q%nr]; v != want {
							t.Fatalf("%s nr %d case %d: row %d column %d (of %d, from bit %d) = %v, want %v", kn.name, nr, it, l, q, n, q0, v, want)
						}
					}
				}
			}
		}
	}
}

// TestFillBitsBounds: a set bit that addresses a value outside src, or a
// table too short, panics with a message that names the row, before
// anything is read.
func TestFillBitsBounds(t *testing.T) {
	for _, c := range []struct {
		off  int
		tab  []uint32
		want string
	}{
		{-1, []uint32{1, 0, 0}, "row 0 reads values -1..-1 of 8"},
		{0, []uint32{1 << 8, 0, 0}, "row 0 reads values 8..8 of 8"},
		{-5, []uint32{0xffff0000, 0, 0}, "row 0 reads values 11..26 of 8"},
		{0, []uint32{1, 0}, "row 0: a table of 2 words"},
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, "gemm: FillBits: "+c.want) {
					t.Errorf("offset %d table %#x: panic %q, want %q", c.off, c.tab, msg, c.want)
				}
			}()
			FillBits(make([]float32, 32), 32, 1, 32, make([]float32, 8), []int{c.off}, [][]uint32{c.tab}, 0)
		}()
	}
}

// TestSetRange checks the first and last set bits of a range against a
// bit-by-bit scan.
func TestSetRange(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for range 2000 {
		tab := make([]uint32, 4)
		for i := range tab {
			switch r.Intn(3) {
			case 0:
				tab[i] = r.Uint32()
			case 1:
				tab[i] = 1 << r.Intn(32)
			}
		}
		lo := r.Intn(128)
		hi := lo + r.Intn(128-lo+1)
		first, last, ok := setRange(tab, lo, hi)
		wf, wl, wok := -1, -1, false
		for b := lo; b < hi; b++ {
			if tab[b/32]>>(b%32)&1 != 0 {
				if !wok {
					wf = b
				}
				wl, wok = b, true
			}
		}
		if ok != wok || ok && (first != wf || last != wl) {
			t.Fatalf("%#x [%d,%d): %d %d %v, want %d %d %v", tab, lo, hi, first, last, ok, wf, wl, wok)
		}
	}
}
