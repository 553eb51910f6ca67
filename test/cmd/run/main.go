// Command run is `make run`: it brings up a local control plane, the fakegce emulator, the pod
// simulator (dual-stack nodes and pods unless --dual-stack=false) and neg-controller, applies
// manifests/examples/sample-app.yaml and a NetworkEndpointGroupBinding of NEGs it created as
// Terraform would (manifests/examples/negbinding.yaml), waits until the sample Service's NEGs and
// the bound ones hold exactly its pods, prints where to look, and runs until Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

func main() {
	klog.InitFlags(nil)
	dir := flag.String("dir", ".run", "directory for kubeconfig and logs (emptied at start, removed after Ctrl-C, kept after a failure)")
	gceListen := flag.String("gce-listen", "127.0.0.1:8085", "fakegce listen address (a free port is used if it is taken)")
	manifest := flag.String("manifest", "manifests/examples/sample-app.yaml", "sample app to apply")
	binding := flag.String("binding-manifest", "manifests/examples/negbinding.yaml", "NetworkEndpointGroupBinding to apply, for NEGs created beforehand as Terraform would (\"\": none; not with --hybrid)")
	hybrid := flag.Bool("hybrid", false, "nodes outside Google Cloud (zone labels eu-west-1a/b/c, no instances), hybrid NEGs served through an emulated load balancer")
	dualStack := flag.Bool("dual-stack", true, "dual-stack nodes and pods (IPv4 and IPv6 addresses; fakegce's default subnetwork IPV4_IPV6); Services stay IPv4 unless they ask for IPv6")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, runOptions{dir: *dir, gceListen: *gceListen, manifest: *manifest, bindingManifest: *binding, hybrid: *hybrid, dualStack: *dualStack})
	if ctx.Err() != nil {
		// Ctrl-C (or SIGTERM) is how the user stops it, at any stage: a normal stop, exit 0.
		// Everything run started is stopped by now; its directory goes too.
		_ = os.RemoveAll(*dir)
		fmt.Println("==> stopped; removed", *dir)
		return
	}
	if err != nil {
		// Failed on its own: the directory stays, with the logs the error points to.
		fmt.Fprintf(os.Stderr, "make run: %v (logs kept in %s)\n", err, *dir)
		os.Exit(1)
	}
}
