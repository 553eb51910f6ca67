package localcluster

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir, []identity{{user: "admin", groups: []string{"system:masters", "x"}}, {user: "neg-controller"}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	b, err := os.ReadFile(p.path("apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving cert for %s: %v", name, err)
		}
	}
	for _, f := range []string{"apiserver.key", "sa.key", "sa.pub"} {
		if b, err := os.ReadFile(p.path(f)); err != nil || !strings.HasPrefix(string(b), "-----BEGIN ") {
			t.Errorf("%s: %v %q", f, err, b)
		}
	}
	tokens, _ := os.ReadFile(p.path("tokens.csv"))
	want := p.tokens["admin"] + `,admin,admin-uid,"system:masters,x"` + "\n" + p.tokens["neg-controller"] + ",neg-controller,neg-controller-uid\n"
	if string(tokens) != want || p.tokens["admin"] == p.tokens["neg-controller"] || len(p.tokens["admin"]) != 32 {
		t.Errorf("tokens.csv = %q, want %q", tokens, want)
	}
}

func TestKubeconfigIsSelfContained(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := writeKubeconfig(path, "https://127.0.0.1:6443", []byte("CA"), "neg-controller", "tok"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "tok" || string(cfg.CAData) != "CA" {
		t.Errorf("rest config = %+v", cfg)
	}
}

func TestProcessStopAndExit(t *testing.T) {
	dir := t.TempDir()
	// A process that ignores SIGTERM is killed after the grace period.
	p, err := startProcess("stubborn", "/bin/sh", []string{"-c", `trap "" TERM; echo started; while :; do sleep 0.05; done`}, filepath.Join(dir, "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	pid := p.pid()
	time.Sleep(200 * time.Millisecond)
	if err := p.stop(300 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("stop = %v, want a 'killed' error", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d survives: %v", pid, err)
	}
	// The shell's sleep child got SIGKILL too; it is gone once init reaps it.
	deadline := time.Now().Add(3 * time.Second)
	for syscall.Kill(-pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d survives: %v", pid, err)
	}
	if err := p.stop(time.Second); err != nil {
		t.Errorf("second stop = %v", err)
	}

	// Waiting on a process that dies fails at once, with its log.
	q, err := startProcess("crasher", "/bin/sh", []string{"-c", "echo boom-line; exit 3"}, filepath.Join(dir, "b.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = q.waitUntil(context.Background(), "never", func(context.Context) error { return errors.New("not yet") })
	if err == nil || !strings.Contains(err.Error(), "boom-line") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("waitUntil = %v, want exit status and log tail", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waitUntil took %v to notice the exit", d)
	}
}

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 100 {
		b.WriteString(strings.Repeat("x", i) + "\n")
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
	got := strings.Split(tailFile(path, 3, 1<<20), "\n")
	if len(got) != 3 || len(got[2]) != 99 {
		t.Errorf("tail = %q", got)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p == 0 {
			t.Errorf("ports %v not distinct", ports)
		}
		seen[p] = true
	}
}

func TestSweepStaleDirs(t *testing.T) {
	// A PID that certainly no longer exists: a finished child's.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := cmd.Process.Pid

	stale, err := ownedTempDir(etcdDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, ownerFile), []byte(strconv.Itoa(deadPID)), 0o644)
	live, err := ownedTempDir(workDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)
	unmarked, err := os.MkdirTemp(tmpfsDir(), etcdDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(unmarked)

	sweepStaleDirs(klog.Background())
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale dir of dead pid %d kept: %v", deadPID, err)
		os.RemoveAll(stale)
	}
	for _, d := range []string{live, unmarked} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}
