package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// pprofFlags are added to the controller's flags when the bench runs with --pprof: the
// profiling server on a free loopback port (stack.Controller.PprofURL reads it from the log).
var pprofFlags = []string{"--enable-pprof", "--pprof-bind-address=127.0.0.1:0"}

// profiles are what dumpProfiles writes, by file suffix: the heap profile after a GC (both
// sample types: inuse_space for what is held, alloc_space for what was allocated since the
// start; `go tool pprof -sample_index=alloc_space`), the goroutines with their stacks, and the
// heap profile's text form, which ends with runtime.MemStats (heap in use against what the
// runtime holds from the OS).
var profiles = []struct{ suffix, path string }{
	{"heap.pb.gz", "/debug/pprof/heap?gc=1"},
	{"goroutine.txt", "/debug/pprof/goroutine?debug=1"},
	{"memstats.txt", "/debug/pprof/heap?debug=1"},
}

// fetchProfile GETs base+path.
func fetchProfile(ctx context.Context, base, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s", base, path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// dumpProfiles writes the running controller's profiles as <profileDir>/<name>.<suffix>; a
// no-op unless the bench runs with --pprof. Failures are reported, never fatal.
func (e *env) dumpProfiles(ctx context.Context, name string) {
	if e.profileDir == "" || e.ctrl == nil {
		return
	}
	base, err := e.ctrl.PprofURL(10 * time.Second)
	if err != nil {
		say("profiles %s: %v", name, err)
		return
	}
	for _, p := range profiles {
		b, err := fetchProfile(ctx, base, p.path)
		if err == nil {
			err = os.WriteFile(filepath.Join(e.profileDir, name+"."+p.suffix), b, 0o644)
		}
		if err != nil {
			say("profiles %s: %v", name, err)
		}
	}
	say("profiles %s written to %s", name, e.profileDir)
}

// hwmStep is how much the controller's VmHWM must have grown since the last peak profile for
// watchPeak to take another.
const hwmStep = 4 << 10 // KiB

// watchPeak takes the controller's heap profile (no forced GC: the heap as of the last one)
// and /proc/<pid>/status each time its VmHWM has grown by hwmStep, so the last ones taken show
// the heap and the RSS split (RssAnon: heap, stacks, runtime; RssFile: the binary's pages) when
// RSS peaked; the returned stop writes them as <profileDir>/<name>-peak.heap.pb.gz and
// <name>-peak.status.txt. A no-op unless the bench runs with --pprof.
func (e *env) watchPeak(ctx context.Context, name string) (stop func()) {
	if e.profileDir == "" || e.ctrl == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var peak, status []byte
	var peakHWM int64
	wg.Go(func() {
		base, err := e.ctrl.PprofURL(10 * time.Second)
		if err != nil {
			say("peak profile %s: %v", name, err)
			return
		}
		pid := e.ctrl.PID()
		for ctx.Err() == nil {
			if s, err := readProc(pid); err == nil && s.hwmKiB >= peakHWM+hwmStep {
				st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
				if b, err := fetchProfile(ctx, base, "/debug/pprof/heap"); err == nil {
					peak, status, peakHWM = b, st, s.hwmKiB
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		if peak == nil {
			return
		}
		for suffix, b := range map[string][]byte{"-peak.heap.pb.gz": peak, "-peak.status.txt": status} {
			if err := os.WriteFile(filepath.Join(e.profileDir, name+suffix), b, 0o644); err != nil {
				say("peak profile %s: %v", name, err)
				return
			}
		}
		say("peak profile %s: taken at VmHWM %d MiB", name, peakHWM>>10)
	}
}
