package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftml/graft/onnx/onnxtest"
)

// TestBench runs graft bench on a fixture, in text and JSON, and with
// --compare-ort against ONNX Runtime.
func TestBench(t *testing.T) {
	c := fixture(t, "conv_bn_pool_fc")
	out, errs, code := graft(t, "bench", c.ModelPath, "--batch", "2", "-q")
	if code != 0 || !strings.Contains(out, "images/s") || !strings.Contains(out, "time per op type") || !strings.Contains(out, "Conv") {
		t.Fatalf("bench: exit %d\n%s\n%s", code, out, errs)
	}
	onnxtest.ORT(t) // skips, or fails under CI, without ONNX Runtime
	out, errs, code = graft(t, "bench", c.ModelPath, "--batch", "2", "--compare-ort", "--json", "-q")
	if code != 0 {
		t.Fatalf("bench --compare-ort: exit %d\n%s", code, errs)
	}
	var r struct {
		ImagesPerSec float64 `json:"images_per_sec"`
		PeakRSS      int64   `json:"peak_rss_bytes"`
		Batch        int     `json:"batch"`
		Rebatched    bool    `json:"rebatched"`
		Inputs       []struct {
			Shape []string `json:"shape"`
		} `json:"inputs"`
		Ops []struct {
			Op    string `json:"op"`
			Nodes int    `json:"nodes"`
		} `json:"ops"`
		ORT *struct {
			ImagesPerSec float64 `json:"images_per_sec"`
			Runs         int     `json:"runs"`
			PeakRSS      int64   `json:"peak_rss_bytes"`
		} `json:"ort"`
		Ratio float64 `json:"ratio_vs_ort"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Batch != 2 || r.ImagesPerSec <= 0 || r.PeakRSS <= 0 || len(r.Ops) == 0 || r.ORT == nil || r.ORT.Runs < 15 || r.ORT.ImagesPerSec <= 0 || r.ORT.PeakRSS <= 0 || r.Ratio <= 0 {
		t.Fatalf("bench JSON: %+v", r)
	}
	// the fixture declares batch 1: both runtimes must run batch 2, or
	// images/s would count images that were never computed
	if !r.Rebatched || len(r.Inputs) != 1 || len(r.Inputs[0].Shape) == 0 || r.Inputs[0].Shape[0] != "2" {
		t.Fatalf("bench of a batch-1 model at --batch 2: rebatched %v, inputs %+v", r.Rebatched, r.Inputs)
	}
	for _, bad := range [][]string{
		{"bench", c.ModelPath, "--batch", "0"},
		{"bench", c.ModelPath, "--rounds", "2", "--compare-ort"},
		{"bench", c.ModelPath, "--input-shape", "x=1xax3"},
	} {
		if _, errs, code := graft(t, bad...); code != 2 {
			t.Errorf("graft %s: exit %d, %q; want 2", strings.Join(bad, " "), code, errs)
		}
	}
}

// TestEveryCommandHelp: every command's --help works (no flag defined
// twice, which urfave/cli reports as a panic) and shows examples.
func TestEveryCommandHelp(t *testing.T) {
	app := newApp(nil, nil)
	for _, cmd := range app.Commands {
		out, errs, code := graft(t, cmd.Name, "--help")
		if code != 0 || strings.Contains(errs, "panic") || !strings.Contains(out, cmd.Name) {
			t.Errorf("graft %s --help: exit %d\n%s\n%s", cmd.Name, code, out, errs)
		}
	}
}

// spinForever keeps two threads busy until the process is killed.
func spinForever() {
	for range 2 {
		go func() {
			for x := 0; ; x++ {
				spinSink.Store(int64(x))
			}
		}()
	}
	select {}
}

var spinSink atomic.Int64

// TestSettle: before graft's round, bench waits for the ONNX Runtime
// process to stop using the CPU. It returns soon for an idle process and
// waits (up to its cap of 1 s) while the process keeps two threads busy.
func TestSettle(t *testing.T) {
	if _, ok := cpuTime(os.Getpid()); !ok {
		t.Skip("no process CPU clock here: settle waits a fixed 50 ms")
	}
	start := func(spin bool) *exec.Cmd {
		t.Helper()
		var cmd *exec.Cmd
		if spin {
			cmd = exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "GRAFT_TEST_SPIN=1")
		} else {
			cmd = exec.Command("sleep", "30")
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	idle := start(false)
	time.Sleep(50 * time.Millisecond) // past exec
	if d := settle(idle.Process.Pid); d >= 500*time.Millisecond {
		t.Errorf("settle on an idle process took %v", d)
	}
	// settle reads another process's CPU clock: it must move for a
	// spinning one (settle's waiting itself is TestSettleOn's, on a fake
	// clock: on a loaded machine the spinning process can lose its core
	// for a whole quiet window)
	busy := start(true)
	for t0 := time.Now(); ; {
		if c, _ := cpuTime(busy.Process.Pid); c > 20*time.Millisecond {
			break
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatal("the spinning process used no CPU in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeClock is a clock whose time moves only when settleOn sleeps.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time        { return c.t }
func (c *fakeClock) Sleep(d time.Duration) { c.t = c.t.Add(d) }

// TestSettleOn: settleOn waits out a process while it uses CPU, however
// briefly it pauses, returns three polls after it stops, and gives up
// after a second of a process that never stops.
func TestSettleOn(t *testing.T) {
	run := func(use func(now time.Duration) time.Duration) time.Duration {
		c := &fakeClock{t: time.Unix(0, 0)}
		start := c.t
		var cpu time.Duration
		return settleOn(func() (time.Duration, bool) {
			cpu += use(c.t.Sub(start))
			return cpu, true
		}, c)
	}
	busy := func(time.Duration) time.Duration { return 2 * time.Millisecond } // a core, all the time
	if d := run(busy); d < time.Second {
		t.Errorf("settled after %v on a process always busy", d)
	}
	// busy for 30 ms with a 4 ms pause at 10 ms, then idle
	stops := func(now time.Duration) time.Duration {
		if now <= 30*time.Millisecond && !(now > 10*time.Millisecond && now <= 14*time.Millisecond) {
			return 2 * time.Millisecond
		}
		return 0
	}
	if d := run(stops); d < 36*time.Millisecond || d > 40*time.Millisecond {
		t.Errorf("settled after %v on a process busy until 30 ms, want three 2 ms polls after", d)
	}
	idle := func(time.Duration) time.Duration { return 0 }
	if d := run(idle); d != 6*time.Millisecond {
		t.Errorf("settled after %v on an idle process, want 6 ms", d)
	}
}
