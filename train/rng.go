package train

// Stream is a portable random number stream: SplitMix64 (Steele, Lea and
// Flood, "Fast splittable pseudorandom number generators", 2014) started
// from a state derived from a seed, a stage name and an epoch. Each
// (seed, stage, epoch) has its own stream, so an epoch's order does not
// depend on how many numbers earlier epochs drew, and a run can resume at
// any epoch and draw exactly what an uninterrupted run would.
//
// The algorithm is fixed and documented so that other programs can
// reproduce graft's batch order (train/testdata/gen_train.py does, in
// Python, for the PyTorch reference). All arithmetic is on unsigned 64-bit
// integers, wrapping:
//
//	mix(z):  z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
//	         z = (z ^ z>>27) * 0x94D049BB133111EB
//	         return z ^ z>>31
//	fnv(s):  FNV-1a 64 of the bytes of s (offset 0xCBF29CE484222325,
//	         prime 0x100000001B3)
//	state:   mix(mix(mix(uint64(seed) + 0x9E3779B97F4A7C15) ^ fnv(stage)) ^ uint64(epoch))
//	next():  state += 0x9E3779B97F4A7C15; return mix(state)
//	below(n): the first next() < 2^64 - (2^64 mod n), mod n (no bias)
//	perm(n): p = [0, 1, ..., n-1]; for i = n-1 down to 1:
//	         j = below(i+1); swap p[i], p[j]
//
// A negative seed converts to uint64 as two's complement.
type Stream struct {
	state uint64
}

const golden = 0x9E3779B97F4A7C15

func splitmix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

func fnv1a(s string) uint64 {
	h := uint64(0xCBF29CE484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001B3
	}
	return h
}

// NewStream returns the stream of (seed, stage, epoch).
func NewStream(seed int64, stage string, epoch int) *Stream {
	s := splitmix(uint64(seed) + golden)
	s = splitmix(s ^ fnv1a(stage))
	s = splitmix(s ^ uint64(epoch))
	return &Stream{state: s}
}

// Uint64 returns the next number of the stream.
func (r *Stream) Uint64() uint64 {
	r.state += golden
	return splitmix(r.state)
}

// Below returns a uniform number in [0, n); n must be positive.
func (r *Stream) Below(n int) int {
	if n <= 0 {
		panic("train: Stream.Below of a non-positive n")
	}
	un := uint64(n)
	limit := -(-un % un) // 2^64 - (2^64 mod n), as 0 when n divides 2^64
	for {
		x := r.Uint64()
		if limit == 0 || x < limit {
			return int(x % un)
		}
	}
}

// Perm returns a permutation of [0, n) by Fisher-Yates from the end.
func (r *Stream) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.Below(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// BatchOrder is the order in which Run visits n training examples in an
// epoch (counted from 1) of the given stage: NewStream(seed, stage,
// epoch).Perm(n).
func BatchOrder(seed int64, stage string, epoch, n int) []int {
	return NewStream(seed, stage, epoch).Perm(n)
}
