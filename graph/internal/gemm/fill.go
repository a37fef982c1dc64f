package gemm

import (
	"fmt"
	"math/bits"
	"unsafe"
)

// FillBitsFast reports whether FillBits runs in assembly for panels of
// nr columns: nr is the kernel's in use and it has a masked fill.
func FillBitsFast(nr int) bool { return active.fillBits != nil && active.nr == nr }

// PanelWidth is nr, the width of the panels of op(B) the kernel in use
// reads: the nr a BFill is called with.
func PanelWidth() int { return active.nr }

// FillBits writes a block of kc rows and n columns of op(B) packed in
// panels of nr columns (the BFill layout, zeros past n) from runs of src
// chosen by bit tables: value q < n of row l is src[offs[l]+q] where bit
// q0+q of tabs[l] is set and 0 where it is clear (bit b of a table is
// bit b%32 of its word b/32). A convolution's im2col rows are such runs:
// an input plane shifted by the tap's offset, the outputs whose tap
// falls in the padding masked off. A table must hold the word of bit
// q0+n-1 and two more (the assembly reads 8 bytes at a time). It panics,
// naming the row, if a table is too short or a set bit addresses a value
// outside src.
func FillBits(dst []float32, nr, kc, n int, src []float32, offs []int, tabs [][]uint32, q0 int) {
	if kc <= 0 || n <= 0 {
		return
	}
	npan := (n + nr - 1) / nr
	if nr <= 0 || nr > 32 || q0 < 0 || len(offs) < kc || len(tabs) < kc || len(dst) < npan*kc*nr {
		panic(fmt.Sprintf("gemm: FillBits: %d offsets, %d tables, %d destination values for %d rows of %d columns in %d-column panels from bit %d", len(offs), len(tabs), len(dst), kc, n, nr, q0))
	}
	for l, tab := range tabs[:kc] {
		if len(tab) < (q0+n-1)/32+3 {
			panic(fmt.Sprintf("gemm: FillBits: row %d: a table of %d words for bits %d..%d", l, len(tab), q0, q0+n-1))
		}
		lo, hi, ok := setRange(tab, q0, q0+n)
		if ok && (offs[l]+lo-q0 < 0 || offs[l]+hi-q0 >= len(src)) {
			panic(fmt.Sprintf("gemm: FillBits: row %d reads values %d..%d of %d", l, offs[l]+lo-q0, offs[l]+hi-q0, len(src)))
		}
	}
	tail := uint32(1)<<(n-(npan-1)*nr) - 1 // the last panel's columns (all 32: 0 - 1)
	if FillBitsFast(nr) {
		active.fillBits(&dst[0], unsafe.SliceData(src), &offs[0], &tabs[0], kc, npan, q0, tail)
		return
	}
	for p := range npan {
		for l := range kc {
			d := dst[p*kc*nr+l*nr:][:nr]
			for b := range d {
				q := p*nr + b
				if q < n && tabs[l][(q0+q)/32]>>((q0+q)%32)&1 != 0 {
					d[b] = src[offs[l]+q]
				} else {
					d[b] = 0
				}
			}
		}
	}
}

// setRange returns the first and last set bits of tab in [lo, hi).
func setRange(tab []uint32, lo, hi int) (first, last int, ok bool) {
	first, last = -1, -1
	for b := lo; b < hi; {
		w := tab[b/32] >> (b % 32)
		if rest := hi - b; rest < 32 {
			w &= 1<<rest - 1
		}
		if w != 0 {
			first = b + bits.TrailingZeros32(w)
			break
		}
		b += 32 - b%32
	}
	if first < 0 {
		return 0, 0, false
	}
	for b := hi - 1; b >= first; {
		w := tab[b/32] << (31 - b%32) // bits ..b at the top
		if b-first < 31 {
			w &^= 1<<(31-(b-first)) - 1
		}
		if w != 0 {
			return first, b - bits.LeadingZeros32(w), true
		}
		b -= b%32 + 1
	}
	return first, first, true
}
