package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train"
)

// featuresResult is graft features --json.
type featuresResult struct {
	train.FeaturesResult
}

// runProcs runs the commands at once, each a separate process with one
// thread (GOMAXPROCS=1) and its Env added to the test's environment, and
// fails the test if any fails; it returns their stdout and stderr.
func runProcs(t *testing.T, cmds []*exec.Cmd) []string {
	t.Helper()
	outs := make([]string, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		cmd.Env = append(append(os.Environ(), cmd.Env...), "GOMAXPROCS=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
			}
			outs[i] = stdout.String() + stderr.String()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return outs
}

// mergeCaches copies the cache folders into dst, as `cp -r src/. dst`,
// failing if two of them hold different files under one name.
func mergeCaches(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	for _, src := range srcs {
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(src, p)
			to := filepath.Join(dst, r)
			if d.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if old, err := os.ReadFile(to); err == nil && !bytes.Equal(old, b) {
				return fmt.Errorf("%s: two shards wrote different files under one name", r)
			}
			return os.WriteFile(to, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func modelWeights(t *testing.T, path string) map[string][]byte {
	t.Helper()
	m, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	w := map[string][]byte{}
	for _, tp := range m.Proto.Graph.Initializer {
		w[tp.Name] = tp.RawData
	}
	return w
}

func sameWeights(t *testing.T, what, a, b string) {
	t.Helper()
	wa, wb := modelWeights(t, a), modelWeights(t, b)
	if len(wa) == 0 || len(wa) != len(wb) {
		t.Fatalf("%s: %d and %d weights", what, len(wa), len(wb))
	}
	for name, x := range wa {
		if !bytes.Equal(x, wb[name]) {
			t.Errorf("%s: weight %q differs", what, name)
		}
	}
}

// cacheNote matches adapt's note on the features it found in the cache.
var cacheNote = regexp.MustCompile(`cache: (\d+) hits, (\d+) misses`)

func allHits(t *testing.T, what, stderr string, total int) {
	t.Helper()
	m := cacheNote.FindStringSubmatch(stderr)
	if m == nil || m[1] != fmt.Sprint(total) || m[2] != "0" {
		t.Fatalf("%s: want %d cache hits and no miss; stderr:\n%s", what, total, stderr)
	}
}

// TestFeaturesShards: graft features --shard 0/3, 1/3 and 2/3 as three
// processes into three cache folders, copied together, give the cache
// from which adapt trains bit-identical weights to a run without it, with
// every image a hit. The cluster jobs graft cluster writes, run locally
// as separate processes, do the same through one shared folder.
func TestFeaturesShards(t *testing.T) {
	if testing.Short() {
		t.Skip("builds graft and runs it as separate processes")
	}
	tmp := t.TempDir()
	bin := buildGraft(t, tmp)
	model, data, err := models.Extract(tmp)
	if err != nil {
		t.Fatal(err)
	}
	adaptArgs := []string{"--epochs", "5", "--val-split", "0.2"}
	reference := filepath.Join(tmp, "reference.onnx")
	if out, err := exec.Command(bin, append([]string{"adapt", "-q", "--model", model, "--data", data, "--out", reference}, adaptArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("adapt without a cache: %v\n%s", err, out)
	}

	t.Run("merge", func(t *testing.T) {
		dir := t.TempDir()
		var cmds []*exec.Cmd
		var caches []string
		for i := range 3 {
			c := filepath.Join(dir, fmt.Sprintf("cache%d", i))
			caches = append(caches, c)
			cmds = append(cmds, exec.Command(bin, "features", "-q", "--json", "--model", model, "--data", data, "--cache", c, "--shard", fmt.Sprintf("%d/3", i)))
		}
		total, images := 0, 0
		for i, out := range runProcs(t, cmds) {
			var r featuresResult
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("shard %d: %v\n%s", i, err, out)
			}
			if r.Shard != fmt.Sprintf("%d/3", i) || r.Images == 0 || r.Cache.Misses != r.Images || r.CacheDir == "" {
				t.Fatalf("shard %d: %+v", i, r)
			}
			total, images = r.Total, images+r.Images
		}
		if images != total {
			t.Fatalf("the shards hold %d images of %d", images, total)
		}
		merged := filepath.Join(dir, "merged")
		mergeCaches(t, merged, caches...)
		out := filepath.Join(dir, "adapted.onnx")
		cmd := exec.Command(bin, append([]string{"adapt", "--model", model, "--data", data, "--cache", merged, "--out", out}, adaptArgs...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("adapt on the merged cache: %v\n%s", err, stderr.String())
		}
		allHits(t, "adapt on the merged cache", stderr.String(), total)
		sameWeights(t, "merged cache against no cache", out, reference)
	})

	// sharedDir lays out the folder the cluster jobs assume: model.onnx
	// and data/ under it.
	sharedDir := func(t *testing.T) string {
		dir := t.TempDir()
		m, d, err := models.Extract(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(m, filepath.Join(dir, "model.onnx")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(d, filepath.Join(dir, "data")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	cluster := func(t *testing.T, kind, dir string, extra ...string) string {
		jobs := filepath.Join(t.TempDir(), "jobs")
		args := append([]string{"cluster", kind, "--shards", "3", "--dir", dir, "--graft", bin, "--out-dir", jobs,
			"--adapt-args", strings.Join(adaptArgs, " ")}, extra...)
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("graft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return jobs
	}

	t.Run("k8s", func(t *testing.T) {
		dir := sharedDir(t)
		jobs := cluster(t, "k8s", dir, "--image", "example.com/graft:test")
		// a container's command line: its command and args lines (JSON lists)
		commandLine := func(file string) []string {
			b, err := os.ReadFile(filepath.Join(jobs, file))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"kind: Job", "mountPath: " + fmt.Sprintf("%q", dir)} {
				if !strings.Contains(string(b), want) {
					t.Fatalf("%s lacks %q:\n%s", file, want, b)
				}
			}
			var line []string
			for _, key := range []string{"command: ", "args: "} {
				m := regexp.MustCompile(`(?m)^\s*` + key + `(\[.*\])$`).FindStringSubmatch(string(b))
				var part []string
				if m == nil || json.Unmarshal([]byte(m[1]), &part) != nil {
					t.Fatalf("%s: no %s list:\n%s", file, key, b)
				}
				line = append(line, part...)
			}
			return line
		}
		b, _ := os.ReadFile(filepath.Join(jobs, "features-job.yaml"))
		for _, want := range []string{"completionMode: Indexed", "completions: 3", "parallelism: 3", "claimName: "} {
			if !strings.Contains(string(b), want) {
				t.Errorf("features-job.yaml lacks %q", want)
			}
		}
		worker := commandLine("features-job.yaml")
		var cmds []*exec.Cmd
		for i := range 3 {
			line := strings.Join(worker, "\x00")
			if !strings.Contains(line, "$(JOB_COMPLETION_INDEX)/3") {
				t.Fatalf("the worker's command line lacks its shard: %q", worker)
			}
			line = strings.ReplaceAll(line, "$(JOB_COMPLETION_INDEX)", fmt.Sprint(i)) // as Kubernetes expands it
			args := strings.Split(line, "\x00")
			cmds = append(cmds, exec.Command(args[0], args[1:]...))
		}
		runProcs(t, cmds)
		head := commandLine("head-job.yaml")
		out := runProcs(t, []*exec.Cmd{exec.Command(head[0], head[1:]...)})
		allHits(t, "the head job", out[0], countImages(t, filepath.Join(dir, "data")))
		sameWeights(t, "k8s jobs against one process", filepath.Join(dir, "adapted.onnx"), reference)
	})

	t.Run("slurm", func(t *testing.T) {
		dir := sharedDir(t)
		jobs := cluster(t, "slurm", dir)
		b, _ := os.ReadFile(filepath.Join(jobs, "features.sbatch"))
		if !strings.Contains(string(b), "#SBATCH --array=0-2") {
			t.Fatalf("features.sbatch:\n%s", b)
		}
		var cmds []*exec.Cmd
		for i := range 3 {
			cmd := exec.Command("bash", filepath.Join(jobs, "features.sbatch"))
			cmd.Env = []string{fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", i)}
			cmds = append(cmds, cmd)
		}
		runProcs(t, cmds)
		out := runProcs(t, []*exec.Cmd{exec.Command("bash", filepath.Join(jobs, "head.sbatch"))})
		allHits(t, "the head job", out[0], countImages(t, filepath.Join(dir, "data")))
		sameWeights(t, "slurm jobs against one process", filepath.Join(dir, "adapted.onnx"), reference)
	})
}

func countImages(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".png") {
			n++
		}
		return nil
	})
	return n
}

// TestFeaturesFlags: bad shards and missing flags are usage errors (exit
// 2) before anything is read; a shard with no image succeeds and says so;
// --out writes the features and labels.
func TestFeaturesFlags(t *testing.T) {
	dir := t.TempDir()
	model, data, err := models.Extract(dir)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	for _, bad := range [][]string{
		{"--shard", "3/3"}, {"--shard", "0/0"}, {"--shard", "-1/2"}, {"--shard=-1/2"}, {"--shard", "1"}, {"--shard", "a/b"},
		{"--batch", "0"}, {"--threads", "-1"},
	} {
		args := append([]string{"features", "--model", model, "--data", data, "--cache", cache}, bad...)
		if _, errs, code := graft(t, args...); code != 2 || !strings.Contains(errs, strings.SplitN(bad[0], "=", 2)[0]) {
			t.Errorf("graft %s: exit %d, %q; want 2", strings.Join(args, " "), code, errs)
		}
	}
	for _, args := range [][]string{
		{"features", "--data", data, "--cache", cache},
		{"features", "--model", model, "--cache", cache},
		{"features", "--model", model, "--data", data},
		{"cluster", "k8s", "--shards", "3", "--out-dir", dir},
		{"cluster", "slurm", "--shards", "0", "--out-dir", dir},
		{"cluster", "pbs", "--shards", "3", "--out-dir", dir},
		{"cluster", "slurm", "--shards", "3"},
	} {
		if _, errs, code := graft(t, args...); code != 2 {
			t.Errorf("graft %s: exit %d, %q; want 2", strings.Join(args, " "), code, errs)
		}
	}
	if _, err := os.Stat(cache); err == nil {
		t.Error("a usage error created the cache")
	}

	_, errs, code := graft(t, "features", "--model", model, "--data", data, "--cache", cache, "--shard", "99999/100000")
	if code != 0 || !strings.Contains(errs, "holds none of the") {
		t.Errorf("empty shard: exit %d, %q", code, errs)
	}

	out := filepath.Join(dir, "emb.npy")
	var r featuresResult
	if err := json.Unmarshal([]byte(mustGraft(t, "features", "-q", "--json", "--model", model, "--data", data, "--out", out, "--shard", "1/2")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Out != filepath.Join(dir, "emb.shard-1-of-2.npy") || r.Labels != filepath.Join(dir, "emb.shard-1-of-2.labels.txt") {
		t.Fatalf("files %s, %s", r.Out, r.Labels)
	}
	x, err := onnx.ReadNpyFile(r.Out)
	if err != nil || len(x.Shape) != 2 || x.Shape[0] != r.Extracted || x.Shape[1] != r.Dim {
		t.Fatalf("%s: %v %v", r.Out, x, err)
	}
	labels, _ := os.ReadFile(r.Labels)
	lines := strings.Split(strings.TrimSuffix(string(labels), "\n"), "\n")
	if len(lines) != r.Extracted || !regexp.MustCompile(`^\w+\t(train|test)/\w+/\d+\.png$`).MatchString(lines[0]) {
		t.Fatalf("labels: %d lines, first %q", len(lines), lines[0])
	}
	if _, errs, code := graft(t, "features", "-q", "--model", model, "--data", data, "--out", out, "--shard", "1/2"); code != 1 || !strings.Contains(errs, "--force") {
		t.Errorf("rewriting without --force: exit %d, %q", code, errs)
	}
}
