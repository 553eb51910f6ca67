package app

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// readmeFlagSection is the README section whose first table lists the flags.
const readmeFlagSection = "## Configuration"

// TestREADMEFlagTable: README.md's flag table names every flag AddFlags registers (component-base's
// logging flags -v, --vmodule, ... included), and every flag it names exists, so the table
// cannot drift from the code. A row may name several flags; each is spelled out in full.
func TestREADMEFlagTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table, err := readmeFlags(string(b))
	if err != nil {
		t.Fatal(err)
	}

	fs := pflag.NewFlagSet("neg-controller", pflag.ContinueOnError)
	NewOptions().AddFlags(fs)
	ours := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { ours[f.Name] = true })

	names := slices.Sorted(maps.Keys(ours))
	for _, name := range names {
		if !slices.Contains(table, name) {
			t.Errorf("--%s is missing from README.md's flag table (%q)", name, readmeFlagSection)
		}
	}
	for _, name := range table {
		if !ours[name] {
			t.Errorf("README.md's flag table names %q, which is no flag of neg-controller", "--"+name)
		}
	}
}

// readmeFlag is one flag in the first column of the table: `--name` or `-v`.
var readmeFlag = regexp.MustCompile("`(-{1,2}[^`]*)`")

// readmeFlags returns the flags (without dashes) named in the first column of the first table
// after readmeFlagSection. A name that is not a plain flag name (say, `--webhook-*`) is
// returned as written, so it matches no flag.
func readmeFlags(readme string) ([]string, error) {
	_, rest, ok := strings.Cut(readme, "\n"+readmeFlagSection+"\n")
	if !ok {
		return nil, fmt.Errorf("README.md has no %q section", readmeFlagSection)
	}
	var rows []string
	for _, line := range strings.Split(rest, "\n") {
		if strings.HasPrefix(line, "## ") {
			break
		}
		if strings.HasPrefix(line, "|") {
			rows = append(rows, line)
		} else if len(rows) > 0 {
			break // the end of the first table
		}
	}
	if len(rows) < 3 || !strings.HasPrefix(rows[0], "| Flag |") {
		return nil, fmt.Errorf("no flag table (| Flag | ... |) in README.md's %q section", readmeFlagSection)
	}
	var out []string
	for _, row := range rows[2:] { // header and separator
		cells := strings.Split(row, "|")
		for _, m := range readmeFlag.FindAllStringSubmatch(cells[1], -1) {
			out = append(out, strings.TrimLeft(m[1], "-"))
		}
	}
	return out, nil
}
