// Package hugemem allocates the large buffers of graft (activations,
// weights, image batches) so that the kernel backs them with 2 MiB pages
// where it can.
//
// Memory fresh from the system costs a page fault at the first touch of
// every 4 KiB page. On the 2-core VM graft is measured on, a fault took
// about 7 µs: the first batch-8 forward pass of mobilenet_v2 touched
// 26,000 new pages and took 213 ms instead of 35, and the page faults of a
// whole `graft adapt` (114,000) cost more time than decoding its 300
// images. Linux's transparent huge pages, when the system leaves them to
// each program (the "madvise" setting, a common default), back a range
// the program marks with MADV_HUGEPAGE with one 2 MiB page per fault.
package hugemem

// Min is the size in bytes from which buffers are marked for huge pages;
// smaller ones would not hold an aligned 2 MiB page worth its zeroing.
const Min = 4 << 20

// Floats returns make([]float32, n), marked for huge pages when it is
// large.
func Floats(n int) []float32 {
	s := make([]float32, n)
	if n*4 >= Min {
		advise(&s[0], n*4)
	}
	return s
}

// Bytes returns make([]byte, n), marked for huge pages when it is large.
func Bytes(n int) []byte {
	s := make([]byte, n)
	if n >= Min {
		advise(&s[0], n)
	}
	return s
}
