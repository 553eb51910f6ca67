package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func newResult(name string) *Result {
	return &Result{Name: name, Calls: map[string]gceCalls{}}
}

// fail records a harness or controller failure with the controller's recent log lines.
func (r *Result) fail(e *env, err error) {
	r.Error = err.Error()
	if e != nil {
		if ex := e.logExcerpt(30); ex != "" {
			r.LogExcerpts = append(r.LogExcerpts, ex)
		}
	}
	say("%s: FAILED: %v", r.Name, err)
}

// stackRun is one started stack and its work directory.
type stackRun struct {
	name, dir string
	e         *env
}

// withStack starts a stack in a fresh work directory on /dev/shm (etcd is fsync-heavy), runs
// fn, stops the stack and copies its logs to outDir/logs/<name>.
func (b *Bench) withStack(name string, nodesPerZone int, fn func(e *env) error) error {
	return b.withStackFrom(name, nodesPerZone, func(dir string) (*env, error) { return startEnv(b.ctx, dir, nodesPerZone) }, fn)
}

// withStackFrom is withStack with the stack started by start in the work directory it gets.
// The shared stack is stopped first: one stack at a time.
func (b *Bench) withStackFrom(name string, nodesPerZone int, start func(workDir string) (*env, error), fn func(e *env) error) error {
	b.closeShared()
	s, err := b.openStack(name, nodesPerZone, start)
	if err != nil {
		return err
	}
	ferr := fn(s.e)
	b.closeStack(s)
	return ferr
}

// openStack starts a stack with start in a fresh work directory on /dev/shm (etcd is
// fsync-heavy); closeStack stops it.
func (b *Bench) openStack(name string, nodesPerZone int, start func(workDir string) (*env, error)) (*stackRun, error) {
	base := "/dev/shm"
	if _, err := os.Stat(base); err != nil {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "neg-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	say("%s: starting stack (%d nodes per zone) in %s", name, nodesPerZone, dir)
	t0 := time.Now()
	e, err := start(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting stack: %w", err)
	}
	say("%s: stack ready in %s", name, time.Since(t0).Round(time.Millisecond))
	e.profileDir = b.profileDir
	return &stackRun{name: name, dir: dir, e: e}, nil
}

// closeStack stops the stack, copies its logs to outDir/logs/<name> and removes its work
// directory (unless keep).
func (b *Bench) closeStack(s *stackRun) {
	s.e.stop()
	dst := filepath.Join(b.outDir, "logs", s.name)
	_ = os.RemoveAll(dst)
	_ = os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, err := exec.Command("cp", "-r", logDir(s.dir), dst).CombinedOutput(); err != nil {
		say("copying logs: %v: %s", err, out)
	}
	if !b.keep {
		_ = os.RemoveAll(s.dir)
	}
}

// restart starts a fresh controller with extra flags and waits until its start-up pass is over:
// every NEG listed once and no mutating GCE call for 3 s. The time it took is reported.
func (b *Bench) restart(e *env, res *Result, extra []string) error {
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
