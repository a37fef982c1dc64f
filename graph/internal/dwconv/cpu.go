package dwconv

import (
	"os"
	"strings"
)

// path is the kernel set in use, chosen once at start-up (tests change
// it).
var path = choose(os.Getenv("GRAFT_CPU"))

// choose returns the best path this CPU runs that is no wider than the
// one GRAFT_CPU's value env asks for (empty or unknown: the best).
func choose(env string) string {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "generic":
		return "generic"
	case "avx2":
		if hasAVX2 {
			return "avx2"
		}
		return "generic"
	}
	switch {
	case hasAVX512:
		return "avx512"
	case hasAVX2:
		return "avx2"
	}
	return "generic"
}

// Path returns the kernels in use: "avx512", "avx2" or "generic" (no
// vector kernels: Supported is false).
func Path() string { return path }

// paths lists the paths this CPU and build run.
func paths() []string {
	p := []string{"generic"}
	if hasAVX2 {
		p = append(p, "avx2")
	}
	if hasAVX512 {
		p = append(p, "avx512")
	}
	return p
}
