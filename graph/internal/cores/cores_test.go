package cores

import (
	"runtime"
	"testing"
)

func TestN(t *testing.T) {
	defer Set(0)
	p := runtime.GOMAXPROCS(0)
	if N() != p {
		t.Fatalf("default N() = %d, want GOMAXPROCS %d", N(), p)
	}
	Set(1)
	if N() != 1 {
		t.Errorf("after Set(1): N() = %d", N())
	}
	Set(p + 5)
	if N() != p {
		t.Errorf("after Set(%d): N() = %d, want the GOMAXPROCS cap %d", p+5, N(), p)
	}
	Set(-3)
	if N() != p {
		t.Errorf("after Set(-3): N() = %d, want the default %d", N(), p)
	}
}
