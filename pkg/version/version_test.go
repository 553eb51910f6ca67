package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	built := func(version string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: version}, Settings: settings}, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, tc := range []struct {
		name, v, c   string
		read         func() (*debug.BuildInfo, bool)
		wantV, wantC string
	}{
		{name: "stamped", v: "v0.3.0", c: "abc", read: none, wantV: "v0.3.0", wantC: "abc"},
		{name: "stamped wins over build info", v: "v0.3.0", c: "abc",
			read: built("v9", debug.BuildSetting{Key: "vcs.revision", Value: "zzz"}), wantV: "v0.3.0", wantC: "abc"},
		{name: "from build info", read: built("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: "def"},
			debug.BuildSetting{Key: "vcs.modified", Value: "true"}), wantV: "(devel)", wantC: "def-dirty"},
		{name: "clean checkout", read: built("v1.0.0", debug.BuildSetting{Key: "vcs.revision", Value: "def"},
			debug.BuildSetting{Key: "vcs.modified", Value: "false"}), wantV: "v1.0.0", wantC: "def"},
		{name: "nothing known", read: none, wantV: Unknown, wantC: Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.v, tc.c, tc.read)
			if got.Version != tc.wantV || got.Commit != tc.wantC || got.GoVersion != runtime.Version() {
				t.Errorf("resolve = %+v, want version %q commit %q go %q", got, tc.wantV, tc.wantC, runtime.Version())
			}
		})
	}
}

func TestUserAgentAndString(t *testing.T) {
	i := Info{Version: "v0.3.0", Commit: "0123456789abcdef0123-dirty", GoVersion: "go1.27.3"}
	if got, want := i.UserAgent(), "neg-controller/v0.3.0 (commit 0123456789ab-dirty; go1.27.3)"; got != want {
		t.Errorf("UserAgent = %q, want %q", got, want)
	}
	if s := i.String(); !strings.HasPrefix(s, "neg-controller v0.3.0 (commit 0123456789abcdef0123-dirty, go1.27.3, ") {
		t.Errorf("String = %q", s)
	}
	if got := (Info{Version: "v1", Commit: "abc", GoVersion: "go1"}).UserAgent(); got != "neg-controller/v1 (commit abc; go1)" {
		t.Errorf("short commit: %q", got)
	}
}
