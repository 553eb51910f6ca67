package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// FindBinDir returns the directory holding etcd, kube-apiserver, kube-controller-manager and
// kubectl of the pinned Kubernetes release. It runs hack/k8s/build.sh, which builds them once
// into the user's cache directory (about 6 minutes on 2 cores; instant afterwards) and prints
// the directory; the script's progress is streamed to stderr.
//
// The script is found from this package's source (test/localcluster → ../../hack/k8s) or, when
// the binary was built with -trimpath, by walking up from the working directory to the module
// root.
func FindBinDir() (string, error) {
	script, err := buildScript()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", script)
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s printed %q, which lacks %s: %w", script, dir, b, err)
		}
	}
	return dir, nil
}

// buildScript locates hack/k8s/build.sh.
func buildScript() (string, error) {
	const rel = "hack/k8s/build.sh"
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), "..", "..", rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if p := filepath.Join(dir, rel); fileExists(p) {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find " + rel + " above the working directory; set Options.BinDir")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it into place, so a
// reader never sees a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, perm)); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
