package app

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readmeReasonSection is the README section that lists every event and condition reason.
const readmeReasonSection = "### Troubleshooting by event reason"

// reasonPackages are the packages whose Reason… string constants the controller records as
// event or condition reasons.
var reasonPackages = []string{"controller", "backends", "readiness", "negbinding", "annotation", "svcneg"}

// TestREADMEEventReasons: every Reason… string constant of the packages that record events or
// set conditions appears, in backquotes, in README.md's troubleshooting section, so a new
// reason cannot ship undocumented.
func TestREADMEEventReasons(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+readmeReasonSection+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", readmeReasonSection)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	reasons := map[string]string{} // value -> package.Name
	for _, pkg := range reasonPackages {
		for name, value := range reasonConstants(t, filepath.Join("..", pkg)) {
			reasons[value] = pkg + "." + name
		}
	}
	if len(reasons) < 30 {
		t.Fatalf("found only %d reasons; is the parsing broken?", len(reasons))
	}
	for value, name := range reasons {
		if !strings.Contains(section, "`"+value+"`") {
			t.Errorf("reason %q (%s) is missing from README.md's %q", value, name, readmeReasonSection)
		}
	}
}

// reasonConstants returns the constants named Reason… with a string literal value declared in
// the non-test Go files of dir.
func reasonConstants(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Reason") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if v, err := strconv.Unquote(lit.Value); err == nil {
						out[id.Name] = v
					}
				}
			}
		}
	}
	return out
}
