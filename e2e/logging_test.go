//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestJSONLogging: with --logging-format=json every line the controller writes is one JSON
// object — klog's, client-go's and the controller's logs alike — carrying the contextual
// key/value pairs (the NEG and zone of "Created NEG"); an unknown format stops the binary at
// start with a message naming the flag.
func TestJSONLogging(t *testing.T) {
	bin, err := env.ControllerBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--logging-format=xml").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `--logging-format must be text or json, got "xml"`) {
		t.Errorf("--logging-format=xml: %v, output %q; want exit status 2 and a message naming the flag", err, out)
	}

	restartController(t, "--logging-format=json")
	t.Cleanup(func() { restartController(t) }) // back to the suite's text logs
	c := env.Controller()
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 2, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 2, 90*time.Second)

	var started, created bool
	waitFor(t, 10*time.Second, "JSON log lines of the start and the NEG's creation", func() (bool, string) {
		b, err := os.ReadFile(c.LogPath)
		if err != nil {
			return false, err.Error()
		}
		b = b[:bytes.LastIndexByte(b, '\n')+1] // whole lines only: the controller is writing
		if len(b) == 0 {
			return false, "empty log"
		}
		started, created = false, false
		for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %d of %s is not a JSON object: %q (%v)", i+1, c.LogPath, line, err)
			}
			if _, ok := m["ts"].(float64); !ok || m["msg"] == nil {
				t.Fatalf("line %d of %s has no ts or msg: %q", i+1, c.LogPath, line)
			}
			switch m["msg"] {
			case "Starting neg-controller":
				started = started || m["project"] == env.Project && m["region"] == env.Region
			case "Created NEG":
				zone, _ := m["zone"].(string)
				created = created || m["neg"] == name && strings.HasPrefix(zone, env.Region+"-")
			}
		}
		return started && created, fmt.Sprintf("start logged: %t, NEG creation logged: %t", started, created)
	})
}
