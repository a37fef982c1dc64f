package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAtomicFileModes: new files get 0666 minus the umask, like os.Create.
func TestAtomicFileModes(t *testing.T) {
	for _, c := range []struct {
		umask int
		want  os.FileMode
	}{{0o022, 0o644}, {0o077, 0o600}, {0o002, 0o664}} {
		old := syscall.Umask(c.umask)
		path := filepath.Join(t.TempDir(), "m.bin")
		err := WriteAtomic(path, []byte("x"), false)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != c.want {
			t.Errorf("umask %03o: mode %03o, want %03o", c.umask, got, c.want)
		}
	}
}

// TestAtomicFileAbortAndErrors: Abort leaves nothing behind, an existing
// file is kept without replace, and a write error leaves the old file.
func TestAtomicFileAbortAndErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.onnx")
	if err := WriteAtomic(path, []byte("old"), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(path, []byte("new"), false); !errors.Is(err, ErrExists) {
		t.Fatalf("existing file without replace: %v", err)
	}
	f, err := CreateAtomic(path, true)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	f.Abort()
	f.Abort()
	if err := f.Commit(); err != nil {
		t.Fatalf("commit after abort: %v", err)
	}
	assertOnly(t, dir, map[string]string{"out.onnx": "old"})
	if err := WriteAtomic(dir, []byte("x"), true); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("folder as target: %v", err)
	}
	if err := WriteAtomic(filepath.Join(dir, "no", "x"), []byte("x"), true); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing folder: %v", err)
	}
}

// assertOnly checks that dir holds exactly the files in want, with those
// contents (no temporary files left over).
func assertOnly(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(entries) != len(want) {
		t.Fatalf("%s holds %v, want %d files", dir, names, len(want))
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v (folder holds %v)", name, err, names)
		}
		if string(b) != content {
			t.Fatalf("%s holds %q, want %q", name, b, content)
		}
	}
}

// TestCheckOutPathInput: the input model is never an output, whether named
// by the same path, a hard link or a symbolic link, force or not.
func TestCheckOutPathInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.onnx")
	if err := os.WriteFile(in, []byte("model"), 0o644); err != nil {
		t.Fatal(err)
	}
	hard, sym := filepath.Join(dir, "hard.onnx"), filepath.Join(dir, "sym.onnx")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(in, sym); err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(dir, ".", "sub", "..", "in.onnx")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for _, out := range []string{in, hard, sym, rel} {
		for _, force := range []bool{false, true} {
			if err := CheckOutPath(in, out, force); !errors.Is(err, ErrInputModel) {
				t.Errorf("out %s force %v: %v, want ErrInputModel", out, force, err)
			}
			// and the other way round: the input given through a link
			if err := CheckOutPath(out, in, force); !errors.Is(err, ErrInputModel) {
				t.Errorf("in %s force %v: %v, want ErrInputModel", out, force, err)
			}
		}
	}
	other := filepath.Join(dir, "other.onnx")
	os.WriteFile(other, []byte("x"), 0o644)
	if err := CheckOutPath(in, other, false); !errors.Is(err, ErrExists) {
		t.Errorf("existing file without force: %v", err)
	}
	if err := CheckOutPath(in, other, true); err != nil {
		t.Errorf("existing file with force: %v", err)
	}
	var oe *OptionError
	if err := CheckOutPath(in, "", true); !errors.As(err, &oe) || oe.Option != "Out" {
		t.Errorf("empty out: %v", err)
	}
}

// The helper process of the tests below: GRAFT_WRITE_HELPER=path writes
// to path through WriteAtomic as the subprocess is told.
func init() {
	path := os.Getenv("GRAFT_WRITE_HELPER")
	if path == "" {
		return
	}
	switch os.Getenv("GRAFT_WRITE_MODE") {
	case "big":
		// one 4 MiB write, for the file-size limit test
		err := WriteAtomic(path, bytes.Repeat([]byte{7}, 4<<20), true)
		fmt.Println(err)
		os.Exit(0)
	case "loop":
		// write versions 0, 1, ..., 9, 0, 1, ... of a 2 MiB file until
		// killed, made beforehand so nearly all the time is spent writing
		var versions [10][]byte
		for i := range versions {
			versions[i] = versionBytes(i)
		}
		fmt.Println("ready")
		for i := 0; ; i++ {
			if err := WriteAtomic(path, versions[i%10], true); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
	}
}

// versionBytes is version i of the loop's file: 2 MiB whose every byte
// says which version it belongs to, so a torn file shows.
func versionBytes(i int) []byte {
	b := bytes.Repeat([]byte{byte(i % 251)}, 2<<20)
	copy(b, strconv.Itoa(i)+"\n")
	return b
}

// TestAtomicFileSizeLimit: a write that hits the file-size limit (as a
// full disk would) fails with the path, and leaves neither a partial
// target nor a temporary file.
func TestAtomicFileSizeLimit(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to set ulimit -f")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "big.onnx")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `ulimit -f 1024 && exec "$0" -test.run=XXX_NONE`, os.Args[0])
	cmd.Env = append(os.Environ(), "GRAFT_WRITE_HELPER="+path, "GRAFT_WRITE_MODE=big")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	msg := strings.TrimSpace(string(out))
	if !strings.Contains(msg, path) || !strings.Contains(msg, "file too large") {
		t.Fatalf("error %q should name %s and the cause", msg, path)
	}
	assertOnly(t, dir, map[string]string{"big.onnx": "old"})
}

// TestAtomicFileSIGKILL kills a process that keeps rewriting a file, at
// random moments, and checks after each kill that the file is one
// complete version. Kills that leave a temporary file behind landed during
// a write; at least half must, or the test proves little.
func TestAtomicFileSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 100 processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	rng := rand.New(rand.NewSource(1))
	// a complete version exists before the first writer starts, so that a
	// kill during the first write must leave it in place
	if err := WriteAtomic(path, versionBytes(0), false); err != nil {
		t.Fatal(err)
	}
	const kills = 100
	during := 0
	for k := 0; k < kills; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=XXX_NONE")
		cmd.Env = append(os.Environ(), "GRAFT_WRITE_HELPER="+path, "GRAFT_WRITE_MODE=loop")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// once it is writing, kill it at a random moment
		ready := make([]byte, 6)
		if _, err := io.ReadFull(stdout, ready); err != nil || string(ready) != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("writer did not start: %v %q %s", err, ready, stderr.String())
		}
		// kill at a random moment, most of the time while a write is under
		// way: wait for a temporary file, then a random fraction of a write
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Microsecond) {
			if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(tmp) > 0 {
				break
			}
		}
		time.Sleep(time.Duration(rng.Intn(8000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Fatalf("writer failed: %s", stderr.String())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		v, err := strconv.Atoi(string(line))
		if err != nil || !bytes.Equal(b, versionBytes(v)) {
			t.Fatalf("kill %d: the file is torn (%d bytes, header %q)", k, len(b), line)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) > 1 {
			during++
			for _, e := range entries {
				if e.Name() != "model.onnx" {
					os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	t.Logf("%d kills, %d during a write; the file was a complete version after each", kills, during)
	if during < kills/2 {
		t.Fatalf("only %d of %d kills landed during a write", during, kills)
	}
}
