package onnx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Every file graft writes (models, tensors, feature-cache entries, logs,
// reports, checkpoints) goes through AtomicFile: the data goes to a
// temporary file in the target's folder, which is synced, closed and
// renamed over the target, and then the folder is synced. A reader, or a
// later run after a crash or a SIGKILL, sees either the old file or the
// complete new one, never a torn one. New files get mode 0666 minus the
// process's umask, as with os.Create. A failed write (disk full, a file
// size limit) removes the temporary file and names the target.

// AtomicFile is a file being written atomically: Write to it, then Commit
// to put it in place, or Abort to drop it. Abort after Commit does
// nothing, so `defer f.Abort()` is the idiom.
type AtomicFile struct {
	path string
	f    *os.File
	err  error // first write error
	done bool
}

// CreateAtomic starts writing path. The folder must exist; an existing
// file at path is replaced on Commit only when replace is set (else the
// error wraps ErrExists), and a folder at path is refused.
func CreateAtomic(path string, replace bool) (*AtomicFile, error) {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: folder %s does not exist", path, dir)
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("%s: is a folder", path)
		}
		if !replace {
			return nil, fmt.Errorf("%s: %w; not overwriting it", path, ErrExists)
		}
	}
	for range 100 {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(r[:]))
		// 0666: the kernel applies the umask, as for os.Create.
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &AtomicFile{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("%s: no free temporary file name in %s", path, dir)
}

// Write appends p; after the first error every Write and Commit fails.
func (a *AtomicFile) Write(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	if a.done {
		return 0, fmt.Errorf("%s: write after commit", a.path)
	}
	n, err := a.f.Write(p)
	if err != nil {
		a.err = fmt.Errorf("%s: %w", a.path, err)
	}
	return n, a.err
}

// Name is the target path.
func (a *AtomicFile) Name() string { return a.path }

// TempName is the temporary file the data goes to before Commit, for a
// caller that checks what it wrote before putting it in place.
func (a *AtomicFile) TempName() string { return a.f.Name() }

// Commit syncs the data, renames the file into place and syncs the
// folder. On any error the temporary file is removed and the target is
// left as it was.
func (a *AtomicFile) Commit() error {
	if a.done {
		return a.err
	}
	a.done = true
	tmp := a.f.Name()
	err := a.err
	if err == nil {
		if e := a.f.Sync(); e != nil {
			err = fmt.Errorf("%s: %w", a.path, e)
		}
	}
	if e := a.f.Close(); e != nil && err == nil {
		err = fmt.Errorf("%s: %w", a.path, e)
	}
	if err == nil {
		if e := os.Rename(tmp, a.path); e != nil {
			err = fmt.Errorf("%s: %w", a.path, e)
		}
	}
	if err != nil {
		os.Remove(tmp)
		a.err = err
		return err
	}
	return syncDir(filepath.Dir(a.path))
}

// Abort drops the temporary file; after Commit it does nothing.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// folder (EINVAL) are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !isEINVAL(err) {
		return fmt.Errorf("%s: syncing the folder: %w", dir, err)
	}
	return nil
}

// WriteAtomic writes data to path through an AtomicFile. An existing file
// is replaced only when replace is set.
func WriteAtomic(path string, data []byte, replace bool) error {
	f, err := CreateAtomic(path, replace)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// WriteFile encodes mp and writes it to path atomically (WriteAtomic).
func WriteFile(path string, mp *ModelProto, replace bool) error {
	data, err := Encode(mp)
	if err != nil {
		return fmt.Errorf("%s: encoding model: %w", path, err)
	}
	return WriteAtomic(path, data, replace)
}

// CreateScratch creates a temporary file in dir (the system's temporary
// folder when empty) for data a run writes and reads back itself, never
// an output: the file is unlinked at once where the system allows it
// (Unix), so a killed process leaves nothing behind; elsewhere the caller
// removes it after closing.
func CreateScratch(dir, pattern string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // fails on Windows while the file is open
	return f, nil
}
