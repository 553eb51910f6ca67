//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/test/rollout"
	"github.com/neg-controller/neg-controller/test/stack"
)

// TestRolloutZeroDowntime: a 10-replica Deployment behind an emulated load balancer (a
// health-checked backend service holding its NEGs, probed for real) is rolled out while a client
// sends about 200 requests/s through the frontend: first without the readiness gate, then with
// it. With the gate the rollout may only replace pods as fast as the load balancer finds new
// ones healthy: no request may fail. Without it the failures are reported (not asserted).
// The pieces live in test/rollout, which the bench's rollout scenario shares.
func TestRolloutZeroDowntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	st, ctrl, alive := startServingStack(ctx, t, rollout.StackOptions(), rollout.ControllerFlags()...)
	cfg := rollout.Config{
		Namespace: "default", Name: "roll", Replicas: 10, Rate: 200,
		// GCE's pace, roughly: attaching takes seconds (the emulator's default is instant), and a
		// new endpoint needs two passing probes (HealthyThreshold 2) to be HEALTHY.
		AttachLatency: rollout.GCEAttachLatency,
		Logf:          t.Logf,
		Alive:         alive,
	}
	fx, err := rollout.Setup(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	results, err := fx.Compare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	without, with := results[0], results[1]
	if with.Failed != 0 {
		t.Errorf("with readiness gates %d of %d requests failed during the rollout (first: %v)", with.Failed, with.Requests, with.FirstError)
	}
	if with.OK < 1000 {
		t.Errorf("only %d requests succeeded with readiness gates: the client did not keep up", with.OK)
	}
	stats, _ := st.GCE.Frontend(fx.Frontend)
	t.Logf("frontend: %+v", stats)
	t.Logf("summary: %d failed requests without readiness gates, %d with\n%s", without.Failed, with.Failed,
		rollout.Table(cfg.Replicas, cfg.Rate, results))
	if ctrl.Exited() {
		t.Errorf("controller exited:\n%s", ctrl.LogTail(40))
	}
}

// startServingStack starts a stack of its own with opts (stopped when the test ends) and the
// controller on it with flags after the stack's own, and returns them with the check
// rollout.Config.Alive wants (an error once the controller has exited).
func startServingStack(ctx context.Context, t *testing.T, opts stack.Options, flags ...string) (*stack.Stack, *stack.Controller, func() error) {
	t.Helper()
	st, err := stack.Start(klog.NewContext(ctx, klog.Background()), opts)
	if err != nil {
		t.Fatalf("starting a serving stack: %v", err)
	}
	t.Cleanup(st.Stop)
	ctrl, err := st.StartController("", flags...)
	if err != nil {
		t.Fatal(err)
	}
	return st, ctrl, func() error {
		if ctrl.Exited() {
			return fmt.Errorf("neg-controller exited:\n%s", ctrl.LogTail(40))
		}
		return nil
	}
}
