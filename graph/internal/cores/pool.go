package cores

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Spin is how long a helper goroutine keeps looking for its next call of
// Spread after finishing one, before it parks. A forward pass makes
// hundreds of parallel calls a few microseconds apart; waking a parked
// goroutine on another core takes tens of microseconds (the Go scheduler
// wakes a thread, which then steals the goroutine), which at batch 1 is
// as long as a small layer's share of work.
const Spin = 100 * time.Microsecond

// helper is a pooled goroutine: Spread hands it a call through slot and,
// when it has parked, wakes it through wake.
type helper struct {
	slot   atomic.Pointer[call]
	parked atomic.Bool
	wake   chan struct{}
}

type call struct {
	f       func()
	pending atomic.Int64  // helpers' calls not yet returned
	done    chan struct{} // closed when pending reaches 0
}

var (
	mu   sync.Mutex
	idle []*helper // helpers waiting for a call
)

// Spread runs f on n goroutines at once, the caller's and n-1 helpers
// taken from a pool, and returns when every call has returned. Helpers
// are made as needed, so nested and concurrent Spreads never wait for
// one another; a helper spins for Spin after each call (yielding its core
// to any other goroutine that wants it) and then parks. A panic in f on
// a helper crashes the program: callers that must survive one recover
// inside f.
func Spread(n int, f func()) {
	if n <= 1 {
		f()
		return
	}
	c := &call{f: f, done: make(chan struct{})}
	c.pending.Store(int64(n - 1))
	for range n - 1 {
		give(c)
	}
	f()
	// wait spinning first, then parked: a caller parked in a WaitGroup is
	// woken onto the last helper's P, and the Go scheduler then often
	// leaves the caller and that helper sharing one P while the other P
	// sleeps (measured: half of mobilenet_v2's batch-1 runs took 1.5x as
	// long as the rest)
	for deadline := time.Now().Add(Spin); c.pending.Load() > 0; {
		if time.Now().After(deadline) {
			<-c.done
			break
		}
		runtime.Gosched()
	}
}

// give hands c to an idle helper, or to a new one.
func give(c *call) {
	mu.Lock()
	var h *helper
	if k := len(idle); k > 0 {
		h = idle[k-1]
		idle = idle[:k-1]
	}
	mu.Unlock()
	if h == nil {
		h = &helper{wake: make(chan struct{}, 1)}
		h.slot.Store(c)
		go h.loop()
		return
	}
	h.slot.Store(c)
	// the helper sets parked before its last look at slot, and this reads
	// parked after storing slot: one of the two sees the other's write
	if h.parked.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

func (h *helper) loop() {
	for {
		deadline := time.Now().Add(Spin)
		for {
			if c := h.slot.Swap(nil); c != nil {
				h.run(c)
				deadline = time.Now().Add(Spin)
				continue
			}
			if time.Now().After(deadline) {
				break
			}
			runtime.Gosched()
		}
		h.parked.Store(true)
		if c := h.slot.Swap(nil); c != nil {
			h.parked.Store(false)
			h.run(c)
			continue
		}
		<-h.wake // a stale token only costs one more round of spinning
		h.parked.Store(false)
	}
}

// run calls c.f and goes back to the idle list before it reports done,
// so that the caller's next Spread finds it there.
func (h *helper) run(c *call) {
	c.f()
	mu.Lock()
	idle = append(idle, h)
	mu.Unlock()
	if c.pending.Add(-1) == 0 {
		close(c.done)
	}
}
