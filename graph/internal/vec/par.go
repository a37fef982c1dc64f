package vec

import (
	"sync/atomic"

	"github.com/graftml/graft/graph/internal/cores"
)

// Chunk is the number of values [Par] hands to a goroutine at a time.
const Chunk = 16384

// ParMin is the length below which [Par] stays on the caller's goroutine:
// starting goroutines costs more than they save on shorter slices.
const ParMin = 4 * Chunk

// Par calls f(lo, hi) for consecutive chunks [lo, hi) of [0, n), each of
// Chunk values but the last, on up to cores.N() goroutines (the caller's
// included); for n < ParMin it calls f(0, n) once. The chunk bounds depend
// only on n, never on the number of goroutines, so a kernel applied per
// chunk, or a reduction done per chunk and combined in chunk order, gives
// the same bits on any machine. Calls may run concurrently and in any
// order; a panic in f on another goroutine crashes the program.
func Par(n int, f func(lo, hi int)) {
	if n < ParMin {
		if n > 0 {
			f(0, n)
		}
		return
	}
	chunks := (n + Chunk - 1) / Chunk
	workers := min(cores.N(), chunks)
	if workers <= 1 {
		for lo := 0; lo < n; lo += Chunk {
			f(lo, min(n, lo+Chunk))
		}
		return
	}
	var next atomic.Int64
	cores.Spread(workers, func() {
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			lo := c * Chunk
			f(lo, min(n, lo+Chunk))
		}
	})
}
