package hugemem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// advise marks the whole 2 MiB pages inside the size bytes at p for huge
// pages. The Go heap maps its memory untouched; pages already touched
// keep their 4 KiB pages. Errors (a kernel without transparent huge
// pages) change nothing and are ignored.
func advise[T any](p *T, size int) {
	start := (uintptr(unsafe.Pointer(p)) + hugePage - 1) &^ (hugePage - 1)
	end := (uintptr(unsafe.Pointer(p)) + uintptr(size)) &^ (hugePage - 1)
	if end > start {
		unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_HUGEPAGE)
	}
}
