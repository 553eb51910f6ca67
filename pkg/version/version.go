// Package version is the identity of a neg-controller build: its release version, the commit it
// was built from and the Go release that compiled it.
//
// The Makefile stamps the version and commit with the linker
// (-ldflags "-X github.com/neg-controller/neg-controller/pkg/version.version=v0.1.0 -X …commit=abc123");
// a plain `go build` leaves them empty, and Get falls back to what the Go toolchain records in
// the binary (the module version, and the VCS revision when built from a git checkout). The
// variables are written only by the linker; everything else reads Get and passes plain values
// on (pkg/app puts the user agent into gce.Config, the build info into the metrics).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); see the package documentation.
var (
	version string
	commit  string
)

// Unknown stands for a version or commit nobody recorded.
const Unknown = "unknown"

// Info is the identity of the running binary.
type Info struct {
	// Version is the release (git describe, e.g. v0.3.0 or v0.3.0-4-gabc1234-dirty), or the
	// module version Go recorded ("(devel)" for a build from a checkout), or Unknown.
	Version string
	// Commit is the full git revision, with "-dirty" when the tree had changes, or Unknown.
	Commit string
	// GoVersion is the Go release that compiled the binary (runtime.Version()).
	GoVersion string
}

// Get returns the identity of the running binary.
func Get() Info {
	return resolve(version, commit, debug.ReadBuildInfo)
}

// resolve fills what the linker left empty from the Go build information.
func resolve(v, c string, read func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: v, Commit: c, GoVersion: runtime.Version()}
	if info.Version != "" && info.Commit != "" {
		return info
	}
	bi, ok := read()
	if ok {
		if info.Version == "" && bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			var rev, dirty string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					if s.Value == "true" {
						dirty = "-dirty"
					}
				}
			}
			if rev != "" {
				info.Commit = rev + dirty
			}
		}
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	return info
}

// String is what `neg-controller --version` prints.
func (i Info) String() string {
	return fmt.Sprintf("neg-controller %s (commit %s, %s, %s/%s)", i.Version, i.Commit, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// UserAgent is the user agent the controller sends to Compute Engine, which records it in the
// project's audit logs: "neg-controller/VERSION (commit COMMIT; GOVERSION)".
func (i Info) UserAgent() string {
	return fmt.Sprintf("neg-controller/%s (commit %s; %s)", i.Version, shortCommit(i.Commit), i.GoVersion)
}

// shortCommit is the first 12 characters of a revision (and its -dirty mark).
func shortCommit(c string) string {
	const n = 12
	base, dirty := c, ""
	if len(c) > len("-dirty") && c[len(c)-len("-dirty"):] == "-dirty" {
		base, dirty = c[:len(c)-len("-dirty")], "-dirty"
	}
	if len(base) > n {
		base = base[:n]
	}
	return base + dirty
}
