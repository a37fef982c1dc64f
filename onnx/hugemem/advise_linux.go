package hugemem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const supported = true

// advise marks the huge pages that hold the size bytes at p, which start
// a huge page, for huge pages: all of them when the last one is mostly
// used (the kernel backs a huge page whole, so marking it costs its
// unused part in memory), else all but the last, which then faults 4 KiB
// at a time. The Go heap maps its memory untouched; pages already
// touched keep their 4 KiB pages. Errors (a kernel without transparent
// huge pages) change nothing and are ignored.
func advise[T any](p *T, size int) {
	n := roundUp(size)
	if n-size > size/8 {
		n -= hugePage
	}
	unix.Syscall(unix.SYS_MADVISE, uintptr(unsafe.Pointer(p)), uintptr(n), unix.MADV_HUGEPAGE)
}
