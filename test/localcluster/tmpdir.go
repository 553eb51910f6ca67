package localcluster

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

// Temporary directories Start creates carry a file naming the PID of the process that created
// them. A process that dies without Stop (SIGKILL, a test binary's timeout panic) leaves its
// directories behind (etcd's alone is ~120 MB of tmpfs); the next Start removes those whose
// owner is gone.
const (
	ownerFile       = ".owner-pid"
	workDirPrefix   = "neg-localcluster-"
	etcdDirPrefix   = "neg-etcd-"
	etcdDataSubdir  = "data"
	staleDirPattern = "neg-*"
)

// ownedTempDir creates a temporary directory on tmpfs (when available) marked with this
// process's PID.
func ownedTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(tmpfsDir(), prefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweepStaleDirs removes directories made by ownedTempDir whose owner process no longer exists.
// Directories without a readable owner file are left alone.
func sweepStaleDirs(logger klog.Logger) {
	matches, _ := filepath.Glob(filepath.Join(tmpfsDir(), staleDirPattern))
	for _, dir := range matches {
		base := filepath.Base(dir)
		if !strings.HasPrefix(base, workDirPrefix) && !strings.HasPrefix(base, etcdDirPrefix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // alive (or not ours to judge)
		}
		if err := os.RemoveAll(dir); err != nil {
			logger.Error(err, "Removing a stale directory", "dir", dir)
			continue
		}
		logger.V(1).Info("Removed a stale directory of a dead process", "dir", dir, "ownerPID", pid)
	}
}

// tmpfsDir is /dev/shm when it is a writable directory, else the default temporary directory.
func tmpfsDir() string {
	const shm = "/dev/shm"
	if st, err := os.Stat(shm); err == nil && st.IsDir() {
		if f, err := os.CreateTemp(shm, ".probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return shm
		}
	}
	return os.TempDir()
}
