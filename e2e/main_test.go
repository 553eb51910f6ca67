//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/stack"
)

// env is the one stack shared by every test of the run (tests run sequentially).
var env *stack.Stack

// controllerFlags are the flags every e2e controller runs with: short periods so that
// garbage collection and resyncs happen within a test's patience, and no leader election (on
// by default): the suite runs one controller and restarts it often; TestHA turns it on.
var controllerFlags = []string{"--gc-period=3s", "--resync-period=30s", "--v=2", "--leader-elect=false"}

// controllerKubeconfig is the identity the suite's controller runs as: user "neg-controller",
// granted exactly the RBAC of manifests/ (TestMain applies it), so a permission the code needs
// and the manifests lack fails the suite.
var controllerKubeconfig string

// Zones: nodes start in a, b and c; zone f exists in GCE for the "node in a new zone" test.
var (
	initialZones = []string{"us-central1-a", "us-central1-b", "us-central1-c"}
	spareZone    = "us-central1-f"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	var err error
	env, err = stack.Start(klog.NewContext(ctx, klog.Background()), stack.Options{
		GCE: fakegce.Config{
			Zones:            append(append([]string(nil), initialZones...), spareZone),
			OperationLatency: 20 * time.Millisecond,
			// Duplicate attaches and detaches of absent endpoints fail, so any the controller
			// sends shows up as a failed request.
			StrictEndpointOps: true,
		},
		NodeZones:    initialZones,
		NodesPerZone: 2,
		PodMaxGrace:  time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the stack:", err)
		return 1
	}
	defer env.Stop()
	// The manifests' Namespace, CRD and RBAC (bound to the controller's identity) before the
	// controller starts.
	if err := env.InstallControllerManifests(ctx, "neg-controller"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: applying the manifests:", err)
		return 1
	}
	controllerKubeconfig = env.Cluster.ControllerKubeconfig
	if _, err := env.StartController(controllerKubeconfig, controllerFlags...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting neg-controller:", err)
		return 1
	}
	fmt.Printf("e2e: stack ready in %s (work dir %s)\n", time.Since(t0).Round(time.Millisecond), env.WorkDir)
	code := m.Run()
	if lines := forbiddenLogLines(); len(lines) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: the controller, running with the RBAC of manifests/, was refused:\n%s\n", strings.Join(lines, "\n"))
		code = 1
	}
	if code != 0 {
		if c := env.Controller(); c != nil {
			fmt.Fprintf(os.Stderr, "e2e: last controller log lines (%s):\n%s\n", c.LogPath, c.LogTail(60))
		}
	}
	return code
}
