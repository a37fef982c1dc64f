package vec

import "os"

// useAVX2 selects the AVX2+FMA assembly. It is set once at start-up and
// changed only by tests.
var useAVX2 = detect(os.Getenv("GRAFT_CPU"))

// detect reports whether to use the AVX2 kernels, given the value of
// GRAFT_CPU: "generic" forces pure Go; "avx2", "avx512", "" and anything
// else use AVX2 when the CPU has it (vec has no AVX-512 code: its kernels
// are memory-bound or short, and AVX2 is what could be tested).
func detect(env string) bool {
	if env == "generic" {
		return false
	}
	return hasAVX2FMA
}

// Impl names the implementation in use: "avx2" or "generic".
func Impl() string {
	if useAVX2 {
		return "avx2"
	}
	return "generic"
}
