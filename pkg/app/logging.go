package app

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
)

// loggingFlags are the flags of component-base's logging configuration that neg-controller
// offers, by the LoggingConfiguration field they set. The alpha --log-text-* and --log-json-*
// options are left out: they need the LoggingAlphaOptions feature gate, which has no flag here.
var loggingFlags = map[string]string{
	"format":         "logging-format",
	"flushFrequency": logsapi.LogFlushFreqFlagName,
	"verbosity":      "v",
	"vmodule":        "vmodule",
}

// addLoggingFlags binds o.Logging to component-base's logging flags, as kube-controller-manager
// does: --logging-format, --log-flush-frequency, -v (also --v) and --vmodule.
func (o *Options) addLoggingFlags(fs *pflag.FlagSet) {
	all := pflag.NewFlagSet("logging", pflag.ContinueOnError)
	logsapi.AddFlags(o.Logging, all)
	for _, name := range []string{"logging-format", logsapi.LogFlushFreqFlagName, "v", "vmodule"} {
		fs.AddFlag(all.Lookup(name))
	}
	fs.Lookup("logging-format").Usage = "Log format: text (klog's) or json (one JSON object per line on stderr, " +
		"for log collectors: ts, caller, msg, v, the key/value pairs, err)."
	fs.Lookup("v").Usage = "Log verbosity: 2 logs every GCE change, 4 every sync, 5 every GCE call."
	fs.Lookup(logsapi.LogFlushFreqFlagName).Usage = "Maximum time between two flushes of buffered log lines."
}

// validateLogging checks the logging configuration with component-base's rules, naming the
// flags rather than the configuration's fields.
func validateLogging(c *logsapi.LoggingConfiguration) []error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, e := range logsapi.Validate(c, nil, nil) {
		name, _, _ := strings.Cut(e.Field, ".")
		name, _, _ = strings.Cut(name, "[")
		flag, ok := loggingFlags[name]
		switch {
		case name == "format" && e.Type == field.ErrorTypeInvalid && c.Format != LogFormatText && c.Format != LogFormatJSON:
			errs = append(errs, fmt.Errorf("--logging-format must be %s or %s, got %q", LogFormatText, LogFormatJSON, c.Format))
		case ok:
			errs = append(errs, fmt.Errorf("--%s: %s", flag, e.ErrorBody()))
		default:
			errs = append(errs, fmt.Errorf("logging: %w", e))
		}
	}
	return errs
}

// SetupLogging installs the logging configuration (--logging-format, -v, ...) process-wide
// through component-base, as Kubernetes components do: klog's functions, client-go's logs,
// every contextual logger taken from klog.Background() and the standard library's log package
// then write in that format to stderr. Call it from main, once, after parsing flags and before
// anything logs or starts goroutines; flush with klog.Flush before exiting.
func SetupLogging(c *logsapi.LoggingConfiguration) error {
	return setupLogging(c, os.Stderr)
}

func setupLogging(c *logsapi.LoggingConfiguration, w io.Writer) error {
	if err := errors.Join(validateLogging(c)...); err != nil {
		return err
	}
	if err := logsapi.ValidateAndApplyWithOptions(c, &logsapi.LoggingOptions{ErrorStream: w, InfoStream: w}, nil); err != nil {
		return err
	}
	log.SetOutput(logs.KlogWriter{})
	log.SetFlags(0)
	return nil
}
