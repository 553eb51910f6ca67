package helmcheck

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated parts of the chart and the e2e golden file")

// checkFile compares the file with want, or writes want with -update.
func checkFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if *update {
		if err != nil || string(got) != want {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("updated %s", path)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is stale: run `make chart-gen` (go test ./... -update in hack/helmcheck) and review the diff.\n%s",
			path, firstDifference(string(got), want))
	}
}

// firstDifference describes the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n  have: " + gl + "\n  want: " + wl
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestFlagsDocumented: every flag is a value of the chart at its default, in the values.yaml
// block, the README table and files/flag-defaults.yaml — all three generated from the binary's
// flags, so none can drift.
func TestFlagsDocumented(t *testing.T) {
	flags := Flags()
	if len(flags) < 50 {
		t.Fatalf("only %d flags found", len(flags))
	}
	dir := ChartDir()
	values, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := replaceBetween(string(values), "# BEGIN GENERATED FLAGS", "# END GENERATED FLAGS", ValuesBlock(flags))
	if err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	checkFile(t, filepath.Join(dir, "values.yaml"), want)

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err = replaceBetween(string(readme), "<!-- BEGIN GENERATED FLAGS TABLE -->", "<!-- END GENERATED FLAGS TABLE -->", READMETable(flags))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	checkFile(t, filepath.Join(dir, "README.md"), want)

	checkFile(t, filepath.Join(dir, "files", "flag-defaults.yaml"), DefaultsFile(flags))
	checkFile(t, filepath.Join(dir, "values.schema.json"), SchemaFile(flags))
}
