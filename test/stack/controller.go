package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Controller is a running neg-controller process.
type Controller struct {
	cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	mu      sync.Mutex
	waitErr error
}

// ControllerBinary returns the neg-controller executable Start would use.
func (s *Stack) ControllerBinary() (string, error) {
	if s.opts.ControllerBinary != "" {
		return s.opts.ControllerBinary, nil
	}
	if d := os.Getenv("NEG_BIN_DIR"); d != "" {
		return filepath.Join(d, "neg-controller"), nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the module root")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "bin", "neg-controller"), nil
}

// ControllerArgs returns the flags that point a controller at this stack. extra flags are
// appended (later flags win).
func (s *Stack) ControllerArgs(kubeconfig string, extra ...string) []string {
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--project=" + s.Project,
		"--region=" + s.Region,
		"--gce-endpoint=" + s.GCEURL,
		"--gce-operation-poll-interval=50ms",
		"--cluster-name=local",
		// A free port per process: several controllers (HA pairs, peers, other checkouts) share
		// the host. Controller.MetricsURL reads the port from the log.
		"--metrics-bind-address=127.0.0.1:0",
		// Likewise the readiness gate webhook (tests that need it pass a port of their own).
		"--webhook-bind-address=127.0.0.1:0",
	}
	return append(args, extra...)
}

// StartController runs the neg-controller binary against the stack with the admin kubeconfig
// (or, if kubeconfig is non-empty, with that one) and extra flags. Its output goes to
// logs/neg-controller-N.log. Only one controller started through the stack runs at a time.
func (s *Stack) StartController(kubeconfig string, extra ...string) (*Controller, error) {
	if s.controller != nil && !s.controller.Exited() {
		return nil, errors.New("a controller is already running")
	}
	bin, err := s.ControllerBinary()
	if err != nil {
		return nil, err
	}
	if kubeconfig == "" {
		kubeconfig = s.Cluster.Kubeconfig
	}
	c, err := startController(bin, s.ControllerArgs(kubeconfig, extra...), s.nextLogPath())
	if err != nil {
		return nil, err
	}
	s.controller = c
	return c, nil
}

// Controller returns the controller last started through the stack, or nil.
func (s *Stack) Controller() *Controller { return s.controller }

// StartExtraController runs one more neg-controller process, like StartController but
// alongside the one StartController tracks (which Controller keeps returning): for leader
// election tests, several replicas must run at once. Stack.Stop stops extra controllers too.
func (s *Stack) StartExtraController(kubeconfig string, extra ...string) (*Controller, error) {
	bin, err := s.ControllerBinary()
	if err != nil {
		return nil, err
	}
	if kubeconfig == "" {
		kubeconfig = s.Cluster.Kubeconfig
	}
	c, err := startController(bin, s.ControllerArgs(kubeconfig, extra...), s.nextLogPath())
	if err != nil {
		return nil, err
	}
	s.extraControllers = append(s.extraControllers, c)
	return c, nil
}

func (s *Stack) nextLogPath() string {
	for i := 1; ; i++ {
		p := filepath.Join(s.WorkDir, "logs", fmt.Sprintf("neg-controller-%d.log", i))
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return p
		}
	}
}

func startController(bin string, args []string, logPath string) (*Controller, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	c := &Controller{cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		c.mu.Lock()
		c.waitErr = err
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// PID returns the process id.
func (c *Controller) PID() int { return c.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (c *Controller) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL (as a crash would) and waits for the process to be gone.
func (c *Controller) Kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// Stop sends SIGTERM and waits up to grace before SIGKILL.
func (c *Controller) Stop(grace time.Duration) error {
	if c.Exited() {
		return nil
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.Kill()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) && ee.Exited() && ee.ExitCode() != 0 {
		return fmt.Errorf("neg-controller exited with %d", ee.ExitCode())
	}
	return nil
}

// Wait blocks until the process exits or ctx ends.
func (c *Controller) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// metricsAddress matches the log line of the metrics server's address, in text and JSON logs.
var metricsAddress = regexp.MustCompile(`Serving metrics and health checks.*?"?address"?[=:]"?([^"\s]+:[0-9]+)`)

// MetricsURL returns the base URL (http://host:port) of the controller's metrics and health
// server, read from its log; it waits up to timeout for the server to start.
func (c *Controller) MetricsURL(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(c.LogPath)
		if m := metricsAddress.FindSubmatch(b); m != nil {
			return "http://" + string(m[1]), nil
		}
		if c.Exited() {
			return "", fmt.Errorf("neg-controller exited before serving metrics:\n%s", c.LogTail(20))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no metrics server address in %s after %s", c.LogPath, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pprofAddress matches the log line of the profiling server's address (--enable-pprof).
var pprofAddress = regexp.MustCompile(`Serving Go profiles.*?"?address"?[=:]"?([^"\s]+:[0-9]+)`)

// PprofURL returns the base URL (http://host:port) of the controller's profiling server (run
// with --enable-pprof), read from its log; it waits up to timeout for the server to start.
func (c *Controller) PprofURL(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(c.LogPath)
		if m := pprofAddress.FindSubmatch(b); m != nil {
			return "http://" + string(m[1]), nil
		}
		if c.Exited() {
			return "", fmt.Errorf("neg-controller exited before serving profiles:\n%s", c.LogTail(20))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no profiling server address in %s after %s", c.LogPath, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogTail returns the last n lines of the controller's log.
func (c *Controller) LogTail(n int) string {
	b, _ := os.ReadFile(c.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
