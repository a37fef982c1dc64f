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
		if a := alignment(&f[0]); supported && n*4 >= Min && a != 0 {
			t.Fatalf("Floats(%d) starts %d bytes before a huge page", n, hugePage-a)
		}
		for i := range f {
			if f[i] != 0 {
				t.Fatalf("Floats(%d)[%d] = %g", n, i, f[i])
			}
			f[i] = float32(i)
		}
		b := Bytes(4 * n)
		if len(b) != 4*n || cap(b) != 4*n {
			t.Fatalf("Bytes(%d): len %d cap %d", 4*n, len(b), cap(b))
		}
		if a := alignment(&b[0]); supported && 4*n >= Min && a != 0 {
			t.Fatalf("Bytes(%d) starts %d bytes before a huge page", 4*n, hugePage-a)
		}
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Bytes(%d)[%d] = %d", 4*n, i, b[i])
			}
			b[i] = byte(i)
		}
	}
}

// An arena's slices are disjoint, of the capacity asked for, and come
// from make once it is used up.
func TestArena(t *testing.T) {
	a := NewArena(100)
	x, y := a.Floats(60), a.Floats(40)
	if len(x) != 60 || cap(x) != 60 || len(y) != 40 || cap(y) != 40 {
		t.Fatalf("len/cap %d/%d and %d/%d", len(x), cap(x), len(y), cap(y))
	}
	for i := range x {
		x[i] = 1
	}
	x = append(x, 2)
	for i, v := range y {
		if v != 0 {
			t.Fatalf("y[%d] = %g after writing x", i, v)
		}
	}
	if z := a.Floats(1); len(z) != 1 || z[0] != 0 {
		t.Fatalf("past the end: %v", z)
	}
	var none *Arena
	if len(none.Floats(3)) != 3 {
		t.Fatal("a nil arena")
	}
}

// Chunks' slices are disjoint when taken concurrently, small ones from
// shared chunks and large ones on their own.
func TestChunks(t *testing.T) {
	var c Chunks
	const workers, each = 4, 200
	got := make([][][]float32, workers)
	done := make(chan bool)
	for w := range workers {
		go func() {
			for i := range each {
				n := 1 + (i*7919+w)%(ChunkFloats/3)
				s := c.Floats(n)
				if len(s) != n || cap(s) != n {
					t.Errorf("Floats(%d): len %d cap %d", n, len(s), cap(s))
				}
				s[0], s[n-1] = float32(w), float32(i)
				got[w] = append(got[w], s)
			}
			done <- true
		}()
	}
	for range workers {
		<-done
	}
	for w := range workers {
		for i, s := range got[w] {
			if s[0] != float32(w) && len(s) > 1 || s[len(s)-1] != float32(i) {
				t.Fatalf("worker %d slice %d was overwritten: %g ... %g", w, i, s[0], s[len(s)-1])
			}
		}
	}
}
