package onnxtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layerImports is graft's layering: for each package (a folder relative to
// the repository root), the graft packages its non-test files may import.
// The flow is onnx -> onnx/surgery -> graph -> train -> cmd; train/dataset
// reads images and needs only onnx; graph/native exports gorgonia graphs
// and sits beside graph. A package that is not listed takes the rule of
// its nearest listed parent folder (graph/internal/x follows graph, and may
// also import its own subpackages), so a new package cannot slip through.
var layerImports = map[string][]string{
	"onnx":          {},
	"models":        {"onnx"},
	"onnx/onnxtest": {"onnx"},
	"onnx/surgery":  {"onnx"},
	"graph":         {"onnx", "onnx/surgery"},
	"graph/native":  {"onnx", "onnx/surgery", "graph"},
	"train/dataset": {"onnx"},
	"train":         {"onnx", "onnx/surgery", "graph", "graph/native", "train/dataset"},
	"cmd":           {"onnx", "onnx/surgery", "graph", "graph/native", "train", "train/dataset", "models"},
}

// testOnly may be imported by any package's tests on top of its layer.
var testOnly = []string{"onnx/onnxtest", "models"}

// ruleFor returns the listed folder whose rule applies to pkg.
func ruleFor(pkg string) (string, bool) {
	for p := pkg; p != "."; p = filepath.ToSlash(filepath.Dir(p)) {
		if _, ok := layerImports[p]; ok {
			return p, true
		}
	}
	return "", false
}

// importAllowed says whether package pkg (following rule) may import dep.
func importAllowed(pkg, rule, dep string, test bool) bool {
	if depRule, ok := ruleFor(dep); ok && depRule == rule {
		return true // a package of the same layer, e.g. graph/internal/gemm from graph
	}
	if slices.Contains(layerImports[rule], dep) {
		return true
	}
	if depRule, ok := ruleFor(dep); ok && depRule != dep && slices.Contains(layerImports[rule], depRule) && !strings.Contains(dep, "/internal/") {
		return true // a new subpackage of an allowed layer, e.g. train/batch from cmd
	}
	return test && slices.Contains(testOnly, dep)
}

// walkGoFiles calls f for every .go file of the repository, leaving out
// hidden folders, testdata and node_modules.
func walkGoFiles(root string, f func(path string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		return f(path)
	})
}

// TestImportsGoOneWay parses every Go file of the repository and fails on
// an import that goes against the flow, and on a package no rule covers.
func TestImportsGoOneWay(t *testing.T) {
	root := RepoRoot()
	checked := 0
	err := walkGoFiles(root, func(path string) error {
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		rule, ok := ruleFor(pkg)
		if !ok {
			t.Errorf("%s: package %s is in no layer; add it to layerImports", path, pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		test := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			dep, ok := strings.CutPrefix(p, modulePath+"/")
			if !ok {
				continue
			}
			checked++
			if !importAllowed(pkg, rule, dep, test) {
				t.Errorf("%s imports %s: against the flow onnx -> onnx/surgery -> graph -> train -> cmd (package %s may import %v)", rel+"/"+filepath.Base(path), dep, pkg, layerImports[rule])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("only %d graft imports found under %s: the walk is broken", checked, root)
	}
}

// TestLayerRules checks the rule itself on imports that must be refused.
func TestLayerRules(t *testing.T) {
	for _, c := range []struct {
		pkg, dep string
		test     bool
		want     bool
	}{
		{"onnx", "graph", false, false},
		{"onnx/surgery", "graph", false, false},
		{"graph", "train", false, false},
		{"graph", "train/dataset", false, false},
		{"graph", "graph/native", false, false},
		{"train/dataset", "graph", false, false},
		{"train", "cmd/graft", false, false},
		{"graph/internal/gemm", "train", false, false},
		{"graph", "onnx/onnxtest", false, false},
		{"graph", "onnx/onnxtest", true, true},
		{"graph", "graph/internal/gemm", false, true},
		{"train", "graph", false, true},
		{"cmd/graft", "train/batch", false, true},
		{"train", "graph/internal/gemm", false, false},
	} {
		rule, ok := ruleFor(c.pkg)
		if !ok {
			t.Fatalf("no rule for %s", c.pkg)
		}
		if got := importAllowed(c.pkg, rule, c.dep, c.test); got != c.want {
			t.Errorf("%s importing %s (test %v): allowed %v, want %v", c.pkg, c.dep, c.test, got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(RepoRoot(), "go.mod")); err != nil {
		t.Fatal(err)
	}
}

// writeCalls are the standard-library calls that create or write files.
var writeCalls = map[string]bool{
	"os.Create": true, "os.WriteFile": true, "os.OpenFile": true, "os.CreateTemp": true,
	"ioutil.WriteFile": true, "ioutil.TempFile": true, "os.Rename": true,
}

// generator tells whether f carries the //go:build ignore constraint.
func generator(f *ast.File) bool {
	for _, g := range f.Comments {
		if g.Pos() > f.Package {
			break
		}
		for _, c := range g.List {
			if strings.TrimSpace(c.Text) == "//go:build ignore" {
				return true
			}
		}
	}
	return false
}

// TestOneWriter: outside onnx/write.go, no non-test code creates, writes
// or renames files itself; everything goes through onnx.AtomicFile, which
// never tears a file, never writes the input model, and honours the umask.
func TestOneWriter(t *testing.T) {
	root := RepoRoot()
	found := 0
	err := walkGoFiles(root, func(path string) error {
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		// code generators (//go:build ignore, run by go generate while
		// developing) write source files, not graft's outputs
		if generator(f) {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok || !writeCalls[id.Name+"."+sel.Sel.Name] {
				return true
			}
			found++
			if filepath.ToSlash(rel) != "onnx/write.go" {
				t.Errorf("%s: %s.%s writes a file directly; use onnx.CreateAtomic or onnx.WriteAtomic", rel, id.Name, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no file-writing call found at all, not even in onnx/write.go: the scan is broken")
	}
}
