// Command fakegce serves the in-memory Compute Engine emulator of package fakegce over HTTP:
// the Compute API under /compute/v1/, the metadata server under /computeMetadata/v1/ and the
// admin API under /admin/. It prints its base URL as the first line on stdout once listening
// and stops cleanly on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, pflag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts, os.Stdout); err != nil {
		klog.ErrorS(err, "fakegce failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
