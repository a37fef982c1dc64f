package onnx

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSafeFileName: whatever an output is called, its file stays inside
// the folder it is written to.
func TestSafeFileName(t *testing.T) {
	for name, want := range map[string]string{
		"logits":           "logits",
		"../../etc/passwd": ".._.._etc_passwd",
		"/abs/path":        "_abs_path",
		"..":               "_..",
		".":                "_.",
		"":                 "_",
		"a:b c*?":          "a_b_c__",
		`dir\file`:         "dir_file",
		"onnx::Gemm_12":    "onnx__Gemm_12",
	} {
		got := SafeFileName(name)
		if got != want {
			t.Errorf("SafeFileName(%q) = %q, want %q", name, got, want)
		}
		p := filepath.Join("out", got+".pb")
		if filepath.Dir(p) != "out" || strings.Contains(got, "/") {
			t.Errorf("%q escapes the folder as %q", name, p)
		}
	}
}
