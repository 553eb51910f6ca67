package app

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// lockedBuffer is a bytes.Buffer safe for the logger's writes and the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// parseLoggingFlags parses args with the flags of AddFlags and returns the options.
func parseLoggingFlags(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

// applyLoggingForTest installs the configuration writing to a buffer, and restores the
// defaults at the end of the test.
func applyLoggingForTest(t *testing.T, c *logsapi.LoggingConfiguration) *lockedBuffer {
	t.Helper()
	var buf lockedBuffer
	if err := setupLogging(c, &buf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		klog.Flush()
		log.SetOutput(os.Stderr)
		log.SetFlags(log.LstdFlags)
		if err := logsapi.ResetForTest(nil); err != nil {
			t.Error(err)
		}
	})
	return &buf
}

// TestLoggingJSON: --logging-format=json makes every log line — contextual loggers, klog's
// functions, the standard library's log — one JSON object with the message and the key/value
// pairs, honouring -v.
func TestLoggingJSON(t *testing.T) {
	o := parseLoggingFlags(t, "--logging-format=json", "-v=1")
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	buf := applyLoggingForTest(t, o.Logging)

	logger := klog.Background()
	logger.Info("Synced NEG", "neg", "k8s1-x", "endpoints", 3)
	logger.V(1).Info("Detail")
	logger.V(2).Info("Too verbose")
	logger.Error(io.EOF, "Attach failed", "zone", "us-central1-a")
	klog.InfoS("Legacy klog", "key", "value")
	log.Print("standard library")
	klog.Flush()

	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object: %s: %v", line, err)
		}
		lines = append(lines, m)
	}
	var msgs []string
	for _, m := range lines {
		msgs = append(msgs, m["msg"].(string))
	}
	want := []string{"Synced NEG", "Detail", "Attach failed", "Legacy klog", "standard library"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("messages %q, want %q:\n%s", msgs, want, buf.String())
	}
	first := lines[0]
	if first["neg"] != "k8s1-x" || first["endpoints"] != float64(3) || first["v"] != float64(0) ||
		first["ts"] == nil || !strings.HasPrefix(first["caller"].(string), "app/logging_test.go:") {
		t.Errorf("first line %v", first)
	}
	if lines[1]["v"] != float64(1) {
		t.Errorf("V(1) line %v", lines[1])
	}
	if lines[2]["err"] != "EOF" || lines[2]["zone"] != "us-central1-a" {
		t.Errorf("error line %v", lines[2])
	}
	if lines[3]["key"] != "value" {
		t.Errorf("klog line %v", lines[3])
	}
	if !klog.V(1).Enabled() || klog.V(2).Enabled() {
		t.Error("klog's verbosity is not -v=1")
	}
}

// TestLoggingText: the default stays klog's text format; --v and --vmodule are accepted.
func TestLoggingText(t *testing.T) {
	o := parseLoggingFlags(t, "--v=2", "--vmodule=sync*=4")
	if o.Logging.Format != LogFormatText || o.Logging.Verbosity != 2 || len(o.Logging.VModule) != 1 {
		t.Fatalf("parsed %+v", o.Logging)
	}
	buf := applyLoggingForTest(t, o.Logging)
	klog.Background().V(2).Info("Synced NEG", "neg", "k8s1-x")
	klog.Flush()
	if out := buf.String(); !strings.HasPrefix(out, "I") || !strings.Contains(out, `] "Synced NEG" neg="k8s1-x"`) {
		t.Errorf("text line %q", out)
	}
}

// TestLoggingInvalid: a bad logging setting is a start-up error naming the flag, and nothing
// is applied.
func TestLoggingInvalid(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"format":          {[]string{"--logging-format=xml"}, `--logging-format must be text or json, got "xml"`},
		"vmodule in json": {[]string{"--logging-format=json", "--vmodule=sync*=4"}, "--vmodule: Forbidden: Only supported for text log format"},
		"flush frequency": {[]string{"--log-flush-frequency=0s"}, "--log-flush-frequency: Invalid value"},
	}
	for name, tc := range cases {
		o := parseLoggingFlags(t, tc.args...)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate: %v, want %q", name, err, tc.want)
		}
		var buf lockedBuffer
		if err := setupLogging(o.Logging, &buf); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: setupLogging: %v, want %q", name, err, tc.want)
		}
	}
	// Nothing was applied: a valid configuration still can be (once).
	applyLoggingForTest(t, parseLoggingFlags(t).Logging)
}
