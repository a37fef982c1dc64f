package cores

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spreadAll runs Spread(n) with a barrier every call must reach: it
// fails (instead of hanging) if the n calls do not run at the same time.
func spreadAll(t *testing.T, n int) {
	t.Helper()
	var arrived atomic.Int64
	var calls atomic.Int64
	Spread(n, func() {
		calls.Add(1)
		arrived.Add(1)
		for end := time.Now().Add(5 * time.Second); arrived.Load() < int64(n); {
			if time.Now().After(end) {
				return
			}
			time.Sleep(10 * time.Microsecond)
		}
	})
	if calls.Load() != int64(n) || arrived.Load() != int64(n) {
		t.Fatalf("Spread(%d): %d calls, %d at the barrier", n, calls.Load(), arrived.Load())
	}
}

// TestSpread: Spread makes n calls at once, returns after all of them,
// and does so again with helpers that are spinning, parked (after Spin)
// or busy in other Spreads (nested and concurrent ones).
func TestSpread(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8} {
		spreadAll(t, n)
	}
	// helpers spinning: calls back to back
	for range 200 {
		spreadAll(t, 2)
	}
	// helpers parked: past their spin
	for range 5 {
		time.Sleep(3 * Spin)
		spreadAll(t, 3)
	}
	// nested: each call spreads again
	var inner atomic.Int64
	Spread(3, func() {
		Spread(2, func() { inner.Add(1) })
	})
	if inner.Load() != 6 {
		t.Fatalf("nested Spread made %d inner calls, want 6", inner.Load())
	}
	// concurrent callers
	var wg sync.WaitGroup
	var total atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				Spread(2, func() { total.Add(1) })
			}
		}()
	}
	wg.Wait()
	if total.Load() != 8*100*2 {
		t.Fatalf("concurrent Spreads made %d calls, want %d", total.Load(), 8*100*2)
	}
}

// TestSpreadWrites: whatever a helper's call writes is visible to the
// caller when Spread returns (the race detector checks the ordering).
func TestSpreadWrites(t *testing.T) {
	for round := range 50 {
		out := make([]int, 4)
		var next atomic.Int64
		Spread(4, func() {
			i := next.Add(1) - 1
			out[i] = round + int(i)
		})
		for i, v := range out {
			if v != round+i {
				t.Fatalf("round %d: out[%d] = %d", round, i, v)
			}
		}
		if round%10 == 0 {
			time.Sleep(2 * Spin)
		}
	}
}
