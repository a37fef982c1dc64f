//go:build !linux

package hugemem

func advise[T any](p *T, size int) {}
