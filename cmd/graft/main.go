package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM cancel the context the library checks between
	// batches; a second signal kills the process the usual way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	tuneGC()
	stopProfile := startProfile(os.Stderr)
	code := runContext(ctx, os.Args, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// tuneGC collects garbage once the heap has grown by half since the last
// collection, instead of Go's default of doubling, unless GOGC is set.
// graft's live heap is large (a model's weights, packed twice, its
// activations, the images of a fine-tuning), and what the heap grows into
// is memory fresh from the system, whose page faults cost more here than
// the collections (1-3% of the CPU). Measured with mobilenet_v2 on 300
// photos, three runs each: head-only adapt 1.98-2.15 s and 330-359 MB
// with GOGC=100, 1.86-2.02 s and 337-338 MB with 50 (1.94-2.05 s with
// 25); fine-tuning adapt 6.37-7.10 s and 1.04 GB with 100, 7.15-7.17 s
// and 917-921 MB with 50 (7.50-7.57 s and 776 MB with 25).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}
