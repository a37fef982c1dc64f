package train

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/graftml/graft/train/dataset"
)

// The helper process of TestCacheFillSIGKILL: GRAFT_CACHE_HELPER=dir fills
// the cache under dir with entries "e<k>" holding k in every value, over
// and over, until killed.
func init() {
	dir := os.Getenv("GRAFT_CACHE_HELPER")
	if dir == "" {
		return
	}
	c, err := OpenFeatureCache(dir, "model", "cut", killPrep)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	// the entries are made first, so that nearly all the time is Put's
	var entries [killEntries][]float32
	for k := range entries {
		entries[k] = make([]float32, killDim)
		for j := range entries[k] {
			entries[k][j] = float32(k)
		}
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		k := i % killEntries
		if err := c.Put("e"+strconv.Itoa(k), entries[k]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
}

// waitForTemp polls dir until an atomic writer's temporary file is in it,
// or until limit has passed.
func waitForTemp(dir string, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end); {
		if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(tmp) > 0 {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

var killPrep = &dataset.Preprocess{Channels: 3, Height: 4, Width: 4}

const (
	killEntries = 50
	killDim     = 64 << 10 // 256 KiB per entry, so writes take a while
)

// TestCacheFillSIGKILL kills a process filling a feature cache at random
// moments, 100 times; after each kill every entry the cache returns holds
// exactly what was written for it, and a torn one, if any, is reported
// as corrupt, never returned.
func TestCacheFillSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 100 processes")
	}
	dir := t.TempDir()
	c, err := OpenFeatureCache(dir, "model", "cut", killPrep)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	during := 0
	maxDelay := 300 * time.Microsecond
	for kill := 0; kill < 100; kill++ {
		cmd := exec.Command(os.Args[0], "-test.run=XXX_NONE")
		cmd.Env = append(os.Environ(), "GRAFT_CACHE_HELPER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper did not start: %q %v", line, err)
		}
		// kill at a random moment, most of the time while a write is under
		// way: wait for a temporary file, then a random delay below a bound
		// that adapts to how long writes take on this machine (shrinking by
		// a quarter after a kill that missed, growing by an eighth after one
		// that landed, which settles near 70% landing whatever the disk)
		waitForTemp(c.Dir(), time.Second)
		time.Sleep(time.Duration(rng.Int63n(int64(maxDelay) + 1)))
		cmd.Process.Kill()
		cmd.Wait()
		tmp, _ := filepath.Glob(filepath.Join(c.Dir(), ".*.tmp-*"))
		if len(tmp) == 0 {
			maxDelay = max(maxDelay*3/4, 5*time.Microsecond)
		} else {
			maxDelay = maxDelay * 9 / 8
			during++
			for _, p := range tmp {
				os.Remove(p)
			}
		}
		for k := range killEntries {
			f, ok, err := c.Get("e"+strconv.Itoa(k), killDim)
			switch {
			case errors.Is(err, ErrCorrupt):
				t.Fatalf("kill %d: entry %d is torn: %v", kill, k, err)
			case err != nil:
				t.Fatal(err)
			case ok && (f[0] != float32(k) || f[killDim-1] != float32(k)):
				t.Fatalf("kill %d: entry %d returned another entry's values", kill, k)
			}
		}
	}
	t.Logf("100 kills, %d during a write; every entry was whole or absent", during)
	if during < 40 {
		t.Fatalf("only %d of 100 kills landed during a write", during)
	}
}
