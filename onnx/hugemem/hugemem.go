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

import (
	"sync"
	"unsafe"
)

// Min is the size in bytes from which buffers are marked for huge pages;
// smaller ones would not hold an aligned 2 MiB page worth its zeroing.
const Min = 4 << 20

// Floats returns n zeroed floats, in 2 MiB pages when n*4 >= Min.
func Floats(n int) []float32 {
	if !supported || n*4 < Min {
		return make([]float32, n)
	}
	s := make([]float32, padded(n*4)/4)
	off := alignment(&s[0]) / 4
	s = s[off : off+n : off+n]
	advise(&s[0], n*4)
	return s
}

// Bytes returns n zeroed bytes, in 2 MiB pages when n >= Min.
func Bytes(n int) []byte {
	if !supported || n < Min {
		return make([]byte, n)
	}
	s := make([]byte, padded(n))
	off := alignment(&s[0])
	s = s[off : off+n : off+n]
	advise(&s[0], n)
	return s
}

// hugePage is the size of the huge pages Linux gives on x86-64 and, with
// 4 KiB base pages, arm64.
const hugePage = 2 << 20

// padded returns the bytes to allocate for size bytes that start on a
// huge page boundary and fill whole huge pages: the head before the
// boundary and the tail after the buffer are never touched, so, in
// memory fresh from the system, they cost address space but no memory
// (a span Go reuses is zeroed whole, head and tail included, which
// faults them in). Unaligned, a buffer's first and last
// partial huge pages were faulted 4 KiB at a time: 6,000 of the first
// forward pass's faults.
func padded(size int) int {
	return roundUp(size) + hugePage
}

func roundUp(size int) int {
	return (size + hugePage - 1) &^ (hugePage - 1)
}

// alignment returns how many bytes after p the next huge page starts.
func alignment[T any](p *T) int {
	return int(-uintptr(unsafe.Pointer(p)) & (hugePage - 1))
}

// Arena hands out float32 slices cut from one buffer of Floats, so that
// many tensors too small to be marked on their own (a model's weights:
// 3.5 million floats in 262 tensors for mobilenet_v2, faulted page by
// page) share its 2 MiB pages. The buffer lives as long as any of its
// slices. A nil Arena hands out Floats' slices.
type Arena struct {
	free []float32
}

// NewArena returns an arena of n floats.
func NewArena(n int) *Arena {
	return &Arena{free: Floats(n)}
}

// Floats returns n zeroed floats from the arena, or from Floats once it
// has fewer left. The slice's capacity is n: appending to it does not
// reach its neighbours.
func (a *Arena) Floats(n int) []float32 {
	if a == nil || n > len(a.free) {
		return Floats(n)
	}
	s := a.free[:n:n]
	a.free = a.free[n:]
	return s
}

// Left returns how many floats the arena has left (0 for a nil one).
func (a *Arena) Left() int {
	if a == nil {
		return 0
	}
	return len(a.free)
}

// Chunks hands out floats from arenas of ChunkFloats, one after another,
// for the many buffers that are each too small for 2 MiB pages: packed
// weights, the executor's small activations. Requests of a quarter of a
// chunk or more get buffers of their own. A chunk is freed once all its
// slices are. It is safe for concurrent use.
type Chunks struct {
	mu sync.Mutex
	a  *Arena
}

// ChunkFloats is the size of Chunks' arenas: 8 MiB.
const ChunkFloats = 2 << 20

// Floats returns n zeroed floats.
func (c *Chunks) Floats(n int) []float32 {
	if n >= ChunkFloats/4 {
		return Floats(n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.a.Left() < n {
		c.a = NewArena(ChunkFloats)
	}
	return c.a.Floats(n)
}
