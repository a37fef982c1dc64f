package onnx

import (
	"runtime/debug"
	"sync"
)

// modulePath is graft's module, looked up in the build info both when graft
// is the main program and when it is a library of another one.
const modulePath = "github.com/graftml/graft"

var graftVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return versionOf(bi)
})

// GraftVersion is graft's version: the module version recorded in the
// binary's build info (a tag such as v0.2.0, or a pseudo-version), or
// "devel" plus the VCS revision for a build from a work tree. The CLI's
// --version and the metadata of every model graft writes both use it.
func GraftVersion() string { return graftVersion() }

func versionOf(bi *debug.BuildInfo) string {
	v := ""
	if bi.Main.Path == modulePath {
		v = bi.Main.Version
	} else {
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				v = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					v = d.Replace.Version
				}
			}
		}
	}
	if v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "devel"
	case dirty:
		return "devel+" + rev + "-dirty"
	}
	return "devel+" + rev
}
