package controller

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const mAggregatedList = "compute.networkEndpointGroups.aggregatedList"

// Drift found from sizes (issue 14): the periodic NEG listing compares each NEG's size with
// the endpoints the controller believes attached. The test environment lists a NEG's endpoints
// again only after NEGVerifyPeriod (an hour), so only the size check can find these changes.

// driftBound is how long a repair may take: a GC period (300 ms) to notice, a sync and an
// operation to repair — bounded generously for a loaded machine, far below NEGVerifyPeriod.
const driftBound = 20 * 300 * time.Millisecond

// TestDriftDetachedByHandRepaired: an endpoint detached by hand is attached again within a few
// GC periods.
func TestDriftDetachedByHandRepaired(t *testing.T) {
	e, pods := syncedWeb(t)
	e.waitQuiet()
	name := negName("web", 80)
	victim := e.endpointsOf(pods, 80)[zoneA][0]
	if err := e.newCloud().DetachNetworkEndpoints(e.ctx, zoneA, name, []neg.Endpoint{victim}); err != nil {
		t.Fatalf("detaching by hand: %v", err)
	}
	took := e.within(driftBound, "detached endpoint re-attached", func() error {
		return e.checkService("web", 80, name, pods, zoneA, zoneB)
	})
	t.Logf("repaired after %s", took.Round(time.Millisecond))
}

// TestDriftAttachedByHandRepaired: an endpoint attached by hand (a valid address no pod has) is
// detached again within a few GC periods.
func TestDriftAttachedByHandRepaired(t *testing.T) {
	e, pods := syncedWeb(t)
	e.waitQuiet()
	name := negName("web", 80)
	stranger := neg.Endpoint{Instance: "node-a1", IP: e.podIP("node-a1", 200), Port: int64(containerPort(80))}
	if err := e.newCloud().AttachNetworkEndpoints(e.ctx, zoneA, name, []neg.Endpoint{stranger}); err != nil {
		t.Fatalf("attaching by hand: %v", err)
	}
	took := e.within(driftBound, "stranger endpoint detached", func() error {
		return e.checkService("web", 80, name, pods, zoneA, zoneB)
	})
	t.Logf("repaired after %s", took.Round(time.Millisecond))
}

// TestDriftNEGDeletedByHandRecreated: the periodic listing notices a NEG deleted behind the
// controller's back (the index loses it, and its Service is synced), and the Service gets it
// back with its endpoints within a few GC periods.
func TestDriftNEGDeletedByHandRecreated(t *testing.T) {
	e, pods := syncedWeb(t)
	e.waitQuiet()
	name := negName("web", 80)
	if err := e.newCloud().DeleteNEG(e.ctx, zoneA, name); err != nil {
		t.Fatalf("DeleteNEG: %v", err)
	}
	took := e.within(driftBound, "re-created", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB) })
	t.Logf("repaired after %s", took.Round(time.Millisecond))
}

// TestDriftSwapLeftToTheFullListing: an endpoint swapped by hand for another keeps the NEG's
// size, so the size check cannot see it; the full listing every NEGVerifyPeriod repairs it.
func TestDriftSwapLeftToTheFullListing(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(3, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	const verify = 2 * time.Second
	reg := prometheus.NewPedanticRegistry()
	e.start(func(c *Config) { c.NEGVerifyPeriod, c.Metrics = verify, metrics.New(reg) }, 0)
	name := negName("web", 80)
	e.eventually("converge", func() error { return e.checkService("web", 80, name, pods, zoneA) })
	e.waitQuiet()
	cloud := e.newCloud()
	victim := e.endpointsOf(pods, 80)[zoneA][0]
	stranger := neg.Endpoint{Instance: "node-a1", IP: e.podIP("node-a1", 200), Port: int64(containerPort(80))}
	if err := cloud.DetachNetworkEndpoints(e.ctx, zoneA, name, []neg.Endpoint{victim}); err != nil {
		t.Fatal(err)
	}
	if err := cloud.AttachNetworkEndpoints(e.ctx, zoneA, name, []neg.Endpoint{stranger}); err != nil {
		t.Fatal(err)
	}
	took := e.within(verify+driftBound, "swap repaired by the full listing", func() error {
		return e.checkService("web", 80, name, pods, zoneA)
	})
	t.Logf("repaired after %s (NEGVerifyPeriod %s)", took.Round(time.Millisecond), verify)
	if n := gathered(t, reg, "neg_controller_drift_detected_total")["source=size,"]; n != 0 {
		t.Errorf("drift_detected_total{source=size} = %v, want 0: a swap keeps the size", n)
	}
}

// lagCloud widens the windows in which a NEG's size and the controller's view legitimately
// differ: a call returns up to callLag (random) after GCE applied it, as an operation poll would
// notice late, and a NEG listing returns listLag after GCE answered it, so calls may apply
// before it and finish after, or apply after it and finish before it returns.
type lagCloud struct {
	gce.Cloud
	callLag, listLag time.Duration
}

// The sleeps below are injected latency after GCE applied the call (as a late operation poll),
// not waits before an assertion.
func (c lagCloud) AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	err := c.Cloud.AttachNetworkEndpoints(ctx, zone, name, eps)
	time.Sleep(rand.N(c.callLag))
	return err
}

func (c lagCloud) DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error {
	err := c.Cloud.DetachNetworkEndpoints(ctx, zone, name, eps)
	time.Sleep(rand.N(c.callLag))
	return err
}

func (c lagCloud) ListNEGs(ctx context.Context) ([]gce.NEG, error) {
	negs, err := c.Cloud.ListNEGs(ctx)
	time.Sleep(c.listLag)
	return negs, err
}

// TestDriftNoRelistWhileCallsInFlight: while endpoints churn and calls are in flight across
// many NEG listings, sizes that differ only because of our own calls (in flight, or finished
// while a NEG listing was under way) never make the controller re-list a NEG. Every NEG here
// was created by the controller, so it never needs a listing at all.
func TestDriftNoRelistWhileCallsInFlight(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 20 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	e.start(func(c *Config) {
		c.Cloud = lagCloud{Cloud: c.Cloud, callLag: 60 * time.Millisecond, listLag: 30 * time.Millisecond}
		c.GCPeriod, c.GCInitialDelay, c.CallInterval = 25*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	}, 0)
	var pods []testPod
	all := e.pods(24, "node-a1", "node-b1")
	for round := 0; round < 16; round++ {
		pods = all[:4+(round*5)%20] // the counts change, so our own calls change the sizes
		e.setEndpoints("default", "web", []int32{80}, pods)
		// Input pacing (a change every few operation latencies), not a wait before an
		// assertion: the assertions below follow convergence and a quiescence barrier.
		time.Sleep(50 * time.Millisecond)
	}
	e.eventually("converge", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA, zoneB) })
	e.waitQuiet()
	counts := e.srv.Counts()
	if counts[mAggregatedList] < 10 || counts[mAttach]+counts[mDetach] < 10 {
		t.Fatalf("the test is blind: %d NEG listings, %d attach/detach calls", counts[mAggregatedList], counts[mAttach]+counts[mDetach])
	}
	if counts[mList] != 0 {
		t.Errorf("%d listNetworkEndpoints calls, want 0 (drift wrongly found from our own calls): %v", counts[mList], counts)
	}
}
