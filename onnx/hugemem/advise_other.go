//go:build !linux

package hugemem

// without transparent huge pages: make's buffers
const supported = false

func advise[T any](p *T, size int) {}
