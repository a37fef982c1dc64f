package hugemem

import "testing"

// The buffers are make's: the length asked for, zeroed, writable, on
// both sides of Min and at sizes not a whole number of pages.
func TestSizes(t *testing.T) {
	for _, n := range []int{1, 1000, Min/4 - 1, Min / 4, Min/4 + 12345, 3 << 20} {
		f := Floats(n)
		if len(f) != n || cap(f) != n {
			t.Fatalf("Floats(%d): len %d cap %d", n, len(f), cap(f))
		}
		for i := range f {
			if f[i] != 0 {
				t.Fatalf("Floats(%d)[%d] = %g", n, i, f[i])
			}
			f[i] = float32(i)
		}
		b := Bytes(4 * n)
		if len(b) != 4*n {
			t.Fatalf("Bytes(%d): len %d", 4*n, len(b))
		}
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Bytes(%d)[%d] = %d", 4*n, i, b[i])
			}
			b[i] = byte(i)
		}
	}
}
