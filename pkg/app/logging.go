package app

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

// SetupLogging installs the --log-format. text keeps klog's own output. json routes klog — its
// legacy functions, client-go's logs, and every contextual logger taken from klog.Background()
// — to a logger writing one JSON object per line to stderr (ts, caller, level, logger, msg, the
// key/value pairs, error), honouring klog's -v from klogFlags. It changes process-wide state:
// call it from main, once, after parsing flags and before taking klog.Background().
func SetupLogging(format string, klogFlags *flag.FlagSet) error {
	switch format {
	case LogFormatText, "":
		return nil
	case LogFormatJSON:
	default:
		return fmt.Errorf("--log-format must be text or json, got %q", format)
	}
	v := 0
	if f := klogFlags.Lookup("v"); f != nil {
		v, _ = strconv.Atoi(f.Value.String())
	}
	klog.SetLoggerWithOptions(newJSONLogger(os.Stderr, v), klog.ContextualLogger(true))
	return nil
}

// newJSONLogger returns a logr.Logger writing JSON lines to w, enabled up to verbosity.
func newJSONLogger(w io.Writer, verbosity int) logr.Logger {
	var mu sync.Mutex
	return funcr.NewJSON(func(obj string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(w, obj+"\n")
	}, funcr.Options{LogTimestamp: true, TimestampFormat: time.RFC3339Nano, LogCaller: funcr.All, Verbosity: verbosity})
}
