package vec

import (
	"os"
	"strings"
)

// An isa is one implementation of the kernels, ordered by width.
type isa uint8

const (
	generic isa = iota // pure Go
	avx2               // AVX2+FMA assembly, 8 lanes, pure Go for the tail
	avx512             // AVX-512F assembly, 16 lanes, masked tail
)

func (p isa) String() string {
	switch p {
	case avx512:
		return "avx512"
	case avx2:
		return "avx2"
	}
	return "generic"
}

// impl is the implementation in use. It is set once at start-up and
// changed only by tests.
var impl = choose(os.Getenv("GRAFT_CPU"))

// choose returns the widest implementation this CPU and build run that is
// no wider than the one GRAFT_CPU's value env names: "generic" forces
// pure Go, "avx2" the AVX2 assembly (pure Go without it), and "avx512",
// "" or anything else the best there is.
func choose(env string) isa {
	want := avx512
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "generic":
		want = generic
	case "avx2":
		want = avx2
	}
	for _, p := range []isa{avx512, avx2} {
		if p <= want && has(p) {
			return p
		}
	}
	return generic
}

// has reports whether this CPU and build run implementation p.
func has(p isa) bool {
	switch p {
	case avx512:
		return hasAVX512
	case avx2:
		return hasAVX2FMA
	}
	return true
}

// Impl names the implementation in use: "avx512" (AVX-512F assembly),
// "avx2" (AVX2 and FMA assembly) or "generic" (pure Go: other
// architectures and the purego build tag). GRAFT_CPU=avx2 or
// GRAFT_CPU=generic at start-up forces a slower one; a path the CPU
// lacks is never used (the best below it runs instead).
func Impl() string { return impl.String() }
