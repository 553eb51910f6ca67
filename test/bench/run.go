package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func newResult(name string) *scenarioResult {
	return &scenarioResult{Name: name, Calls: map[string]gceCalls{}}
}

// fail records a harness or controller failure with the controller's recent log lines.
func (r *scenarioResult) fail(e *env, err error) {
	r.Error = err.Error()
	if e != nil {
		if ex := e.logExcerpt(30); ex != "" {
			r.LogExcerpts = append(r.LogExcerpts, ex)
		}
	}
	say("%s: FAILED: %v", r.Name, err)
}

// withStack starts a stack in a fresh work directory on /dev/shm (etcd is fsync-heavy), runs
// fn, stops the stack and copies its logs to outDir/logs/<name>.
func (b *bench) withStack(name string, nodesPerZone int, fn func(e *env) error) error {
	return b.withStackFrom(name, nodesPerZone, func(dir string) (*env, error) { return startEnv(b.ctx, dir, nodesPerZone) }, fn)
}

// withStackFrom is withStack with the stack started by start in the work directory it gets.
func (b *bench) withStackFrom(name string, nodesPerZone int, start func(workDir string) (*env, error), fn func(e *env) error) error {
	base := "/dev/shm"
	if _, err := os.Stat(base); err != nil {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "neg-bench-"+name+"-")
	if err != nil {
		return err
	}
	say("%s: starting stack (%d nodes per zone) in %s", name, nodesPerZone, dir)
	t0 := time.Now()
	e, err := start(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("starting stack: %w", err)
	}
	say("%s: stack ready in %s", name, time.Since(t0).Round(time.Millisecond))
	ferr := fn(e)
	e.stop()
	dst := filepath.Join(b.outDir, "logs", name)
	_ = os.RemoveAll(dst)
	_ = os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, err := exec.Command("cp", "-r", logDir(dir), dst).CombinedOutput(); err != nil {
		say("copying logs: %v: %s", err, out)
	}
	if !b.keep {
		_ = os.RemoveAll(dir)
	}
	return ferr
}

// restart starts a fresh controller with extra flags and waits until its start-up pass is over:
// every NEG listed once and no mutating GCE call for 3 s. The time it took is reported.
func (b *bench) restart(e *env, res *scenarioResult, extra []string) error {
	start := e.callWindow()
	if err := e.startController(extra...); err != nil {
		return err
	}
	res.Controller = e.controllerArgs()
	negs := len(e.zones) * len(e.allServices)
	last, lastChange := -1, time.Now()
	var listed time.Time
	err := poll(b.ctx, 250*time.Millisecond, 5*time.Minute, func() (bool, string) {
		if err := e.controllerAlive(); err != nil {
			return true, ""
		}
		c := e.st.GCE.Counts()
		mut := 0
		for m, n := range c {
			if !isRead(m) {
				mut += n
			}
		}
		if mut != last {
			last, lastChange = mut, time.Now()
		}
		lists := c[mList]
		if lists >= negs && listed.IsZero() {
			listed = time.Now()
		}
		return lists >= negs && time.Since(lastChange) > 3*time.Second, fmt.Sprintf("%d of %d NEGs listed", lists, negs)
	})
	if err == nil {
		err = e.controllerAlive()
	}
	if err != nil {
		return fmt.Errorf("controller start-up pass: %w", err)
	}
	res.add("controller restart: every NEG re-listed", "after %.1f s", listed.Sub(start).Seconds())
	r := e.check(e.allServices)
	if !r.exact() {
		res.note("After the restart the NEGs were not exact: %s.", r)
	}
	return nil
}
