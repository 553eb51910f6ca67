// Command neg-controller keeps zonal GCE_VM_IP_PORT network endpoint groups in sync with the
// pods of Kubernetes Services annotated cloud.google.com/neg, as GKE's NEG controller does.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/app"
	"github.com/neg-controller/neg-controller/pkg/version"
)

func main() {
	opts := app.NewOptions()
	fs := pflag.NewFlagSet("neg-controller", pflag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: neg-controller [flags]\n\nFlags:\n%s", fs.FlagUsages())
	}
	opts.AddFlags(fs)
	printVersion := fs.Bool("version", false, "Print the version, commit and Go version, and exit.")
	_ = fs.Parse(os.Args[1:])
	if *printVersion {
		fmt.Println(version.Get())
		return
	}
	if err := app.SetupLogging(opts.Logging); err != nil {
		fmt.Fprintln(os.Stderr, "neg-controller:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	if err := app.Run(ctx, opts); err != nil {
		if ctx.Err() != nil {
			// Stopped (SIGTERM, Ctrl-C) before start-up finished: a step that was waiting
			// returned the cancellation. That is a clean stop, not a failure.
			klog.Background().Info("Stopped during start-up", "reason", err.Error())
			klog.Flush()
			return
		}
		klog.Background().Error(err, "neg-controller failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
