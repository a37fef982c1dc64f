package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CheckOutPath checks an output path before any work starts: it refuses
// an empty path, a missing folder, a folder, an existing file unless force
// is set (ErrExists), and, force or not, the input model itself: the same
// path, a hard link to it or a symbolic link that resolves to it
// (ErrInputModel).
func CheckOutPath(in, out string, force bool) error {
	if out == "" {
		return &OptionError{Option: "Out", Err: errors.New("an output path is required")}
	}
	dir := filepath.Dir(out)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: folder %s does not exist", out, dir)
	}
	if st, err := os.Stat(out); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s: is a folder", out)
		}
		if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
			return fmt.Errorf("%s: %w; not overwriting it", out, ErrInputModel)
		}
		if !force {
			return fmt.Errorf("%s: %w; not overwriting it", out, ErrExists)
		}
	}
	return nil
}

// SafeFileName maps a tensor name to a file name: characters outside
// A-Za-z0-9._- become '_', and a name of only dots gets a leading '_', so
// the result never leaves the folder it is joined to.
func SafeFileName(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	s := string(b)
	if strings.Trim(s, ".") == "" {
		s = "_" + s
	}
	return s
}
