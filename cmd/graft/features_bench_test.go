package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftml/graft/models"
)

// BenchmarkFeaturesShards compares two ways of using two cores for
// graft features on the shipped sample (its images copied 4 times under
// other names, 1,920 images): two shard processes of one thread each
// (GOMAXPROCS=1, --threads 1) against one process with two threads,
// filling a fresh cache (one fsynced file per image) or writing only a
// .npy file (the backbone's work alone); images/s counts all images.
//
//	go test ./cmd/graft -run '^$' -bench FeaturesShards -benchtime 3x
func BenchmarkFeaturesShards(b *testing.B) {
	tmp := b.TempDir()
	bin := filepath.Join(tmp, "graft")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	model, sample, err := models.Extract(tmp)
	if err != nil {
		b.Fatal(err)
	}
	// the sample's images, 4 times over under other names
	data := filepath.Join(tmp, "data")
	images := 0
	err = filepath.Walk(sample, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".png") {
			return err
		}
		rel, _ := filepath.Rel(sample, p)
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for k := range 4 {
			to := filepath.Join(data, strings.TrimSuffix(rel, ".png")+fmt.Sprintf("-%d.png", k))
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(to, raw, 0o644); err != nil {
				return err
			}
			images++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, to string, procs, threads int) {
		for i := range b.N {
			out := filepath.Join(b.TempDir(), fmt.Sprint(i))
			if to == "--out" {
				out += ".npy"
			}
			cmds := make([]*exec.Cmd, procs)
			for s := range procs {
				args := []string{"features", "-q", "--model", model, "--data", data, to, out, "--threads", fmt.Sprint(threads)}
				if procs > 1 {
					args = append(args, "--shard", fmt.Sprintf("%d/%d", s, procs))
				}
				cmds[s] = exec.Command(bin, args...)
				cmds[s].Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", threads))
				if err := cmds[s].Start(); err != nil {
					b.Fatal(err)
				}
			}
			for _, c := range cmds {
				if err := c.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(images*b.N)/b.Elapsed().Seconds(), "images/s")
	}
	for _, to := range []string{"--cache", "--out"} {
		b.Run(to[2:]+"/2shards-1thread", func(b *testing.B) { run(b, to, 2, 1) })
		b.Run(to[2:]+"/1process-2threads", func(b *testing.B) { run(b, to, 1, 2) })
	}
}
