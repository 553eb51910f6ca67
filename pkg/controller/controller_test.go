package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// checkService returns nil when every NEG of Service port p holds exactly the endpoints of pods
// in each of zones.
func (e *testEnv) checkService(svc string, p int32, name string, pods []testPod, zones ...string) error {
	want := e.endpointsOf(pods, p)
	for _, z := range zones {
		if err := e.checkNEG(z, name, want[z]); err != nil {
			return err
		}
	}
	return nil
}

func TestCreate(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 5 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.addNode("node-a2", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{},"443":{"name":"web-https"}}}`, 80, 443))
	pods := e.pods(9, "node-a1", "node-a2", "node-b1")
	e.setEndpoints("default", "web", []int32{80, 443}, pods)
	e.start(nil, 0)

	name80 := negName("web", 80)
	e.eventually("NEGs converge", func() error {
		if err := e.checkService("web", 80, name80, pods, zoneA, zoneB); err != nil {
			return err
		}
		return e.checkService("web", 443, "web-https", pods, zoneA, zoneB)
	})
	if err := e.checkNoNEG(zoneC, name80); err != nil {
		t.Errorf("zone without nodes: %v", err)
	}
	// Creating a NEG costs its insert and attach only: the insert's operation describes it
	// (no get) and a new NEG is empty (no list).
	if c := e.srv.Counts(); c[mInsert] != 4 || c[mGet] != 0 || c[mList] != 0 || c[mAttach] != 4 {
		t.Errorf("calls to create and fill 4 NEGs: %d insert, %d get, %d list, %d attach; want 4, 0, 0, 4",
			c[mInsert], c[mGet], c[mList], c[mAttach])
	}
	e.eventually("neg-status", func() error {
		st, ok := e.status("default", "web")
		if !ok {
			return fmt.Errorf("no neg-status")
		}
		want := map[string]string{"80": name80, "443": "web-https"}
		if d := cmp.Diff(want, st.NetworkEndpointGroups); d != "" {
			return fmt.Errorf("network_endpoint_groups (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{zoneA, zoneB}, st.Zones); d != "" {
			return fmt.Errorf("zones (-want +got):\n%s", d)
		}
		return nil
	})
	// Descriptions are GKE's ownership JSON.
	n, err := e.newCloud().GetNEG(e.ctx, zoneA, name80)
	if err != nil {
		t.Fatalf("GetNEG: %v", err)
	}
	wantDesc := naming.Description{ClusterUID: clusterUID, Namespace: "default", ServiceName: "web", Port: "80"}.String()
	if n.Description != wantDesc || n.Type != "GCE_VM_IP_PORT" {
		t.Errorf("NEG description %q type %q, want %q GCE_VM_IP_PORT", n.Description, n.Type, wantDesc)
	}
	e.eventually("events", func() error {
		if err := e.checkEvent("default", "web", ReasonCreate, fmt.Sprintf("Created NEG %q", name80)); err != nil {
			return err
		}
		return e.checkEvent("default", "web", ReasonAttach, fmt.Sprintf("Attached 6 network endpoint(s) to NEG %q in zone %q", name80, zoneA))
	})
	if got := e.srv.Counts()[mInsert]; got != 4 {
		t.Errorf("insert calls = %d, want 4 (2 ports × 2 zones)", got)
	}
}

func TestEndpointSelection(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(6, "node-a1")
	pods[0].terminating = true // dropped
	pods[1].notReady = true    // kept
	unmapped := testPod{name: "ghost", node: "no-such-node", ip: "10.99.0.1"}
	e.setEndpoints("default", "web", []int32{80}, append(pods, unmapped))
	e.start(nil, 0)
	e.eventually("converge", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA) })
	e.eventually("skipped event", func() error {
		return e.checkEvent("default", "web", ReasonEndpointsSkipped, "UnknownNode=1")
	})
}

func TestScaleUpAndDown(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-a2", zoneA)
	e.createService(service("default", "big", `{"exposed_ports":{"80":{}}}`, 80))
	e.start(nil, 0)
	name := negName("big", 80)
	e.eventually("NEG created", func() error { return e.checkNEG(zoneA, name, nil) })

	steps := []struct {
		n              int
		attach, detach int
	}{
		{n: 1200, attach: 3}, // ceil(1200/500)
		{n: 150, detach: 3},  // 1050 removed
		{n: 2001, attach: 4}, // 1851 added
		{n: 0, detach: 5},    // 2001 removed
	}
	for _, s := range steps {
		e.srv.ResetCounts()
		pods := e.pods(s.n, "node-a1", "node-a2")
		e.setEndpoints("default", "big", []int32{80}, pods)
		e.eventually(fmt.Sprintf("%d endpoints", s.n), func() error { return e.checkService("big", 80, name, pods, zoneA) })
		c := e.srv.Counts()
		if c[mAttach] != s.attach || c[mDetach] != s.detach {
			t.Errorf("to %d endpoints: attach calls %d detach calls %d, want %d and %d", s.n, c[mAttach], c[mDetach], s.attach, s.detach)
		}
	}
}

func TestZoneAddedAndRemoved(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	e.start(nil, 0)
	name := negName("web", 80)
	e.eventually("NEG in zone A", func() error { return e.checkNEG(zoneA, name, nil) })

	e.addNode("node-b1", zoneB)
	pods := e.pods(10, "node-a1", "node-b1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.eventually("zone B gets its NEG and endpoints", func() error {
		return e.checkService("web", 80, name, pods, zoneA, zoneB)
	})
	e.eventually("status lists zone B", func() error {
		if st, _ := e.status("default", "web"); !cmp.Equal(st.Zones, []string{zoneA, zoneB}) {
			return fmt.Errorf("zones %v", st.Zones)
		}
		return nil
	})

	// Zone B loses its only candidate node: its endpoints are detached, the NEG is kept.
	n, err := e.kube.CoreV1().Nodes().Get(e.ctx, "node-b1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n = n.DeepCopy()
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := e.kube.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("zone B emptied, zone A intact", func() error {
		if err := e.checkNEG(zoneB, name, nil); err != nil {
			return err
		}
		return e.checkService("web", 80, name, pods, zoneA)
	})
	if e.srv.Counts()[mDelete] != 0 {
		t.Errorf("a NEG was deleted")
	}
}

func TestRestartWithNEGsPresent(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{},"81":{"name":"custom-81"}}}`, 80, 81))
	pods := e.pods(700, "node-a1", "node-b1")
	e.setEndpoints("default", "web", []int32{80, 81}, pods)
	e.start(nil, 0)
	e.eventually("converge", func() error {
		if err := e.checkService("web", 80, negName("web", 80), pods, zoneA, zoneB); err != nil {
			return err
		}
		return e.checkService("web", 81, "custom-81", pods, zoneA, zoneB)
	})
	e.stop()
	e.srv.ResetCounts()

	c := e.start(nil, 0)
	refs := []neg.Ref{{Zone: zoneA, Name: negName("web", 80)}, {Zone: zoneB, Name: negName("web", 80)},
		{Zone: zoneA, Name: "custom-81"}, {Zone: zoneB, Name: "custom-81"}}
	e.eventually("new controller synced every NEG", func() error {
		for _, ref := range refs {
			if p := c.negs.Progress(ref, nil); !p.Known || p.InFlight > 0 {
				return fmt.Errorf("%s not synced yet", ref)
			}
		}
		return nil
	})
	e.waitQuiet() // any (wrong) call has landed
	counts := e.srv.Counts()
	if counts[mInsert] != 0 || counts[mAttach] != 0 || counts[mDetach] != 0 || counts[mDelete] != 0 {
		t.Errorf("restart made mutating calls: %v", counts)
	}
}

func TestSteadyStateMakesNoMutatingCalls(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(40, "node-a1", "node-b1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	name := negName("web", 80)
	// The windows below are counted in syncs of the Service (the sync duration histogram), not
	// in wall time: each must hold the number of resyncs it is about.
	var reg *prometheus.Registry
	start := func(tweak func(*Config), resync time.Duration) {
		reg = prometheus.NewPedanticRegistry()
		m := metrics.New(reg)
		e.start(func(c *Config) {
			c.Metrics = m
			if tweak != nil {
				tweak(c)
			}
		}, resync)
	}
	syncs := func() float64 { return gathered(t, reg, "neg_controller_sync_duration_seconds")["result=success,"] }
	// window waits for n more syncs (and until, if set) and returns the calls made meanwhile.
	// It starts once the controller is quiet, or, with a verify period so short that it never
	// is, once the NEGs are exact.
	window := func(what string, n float64, until func() error) map[string]int {
		t.Helper()
		if until == nil {
			e.waitQuiet()
		} else {
			e.eventually("converge", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB) })
		}
		e.srv.ResetCounts()
		from := syncs()
		e.eventually(what, func() error {
			if got := syncs() - from; got < n {
				return fmt.Errorf("%v syncs so far, want %v", got, n)
			}
			if until != nil {
				return until()
			}
			return nil
		})
		return e.srv.Counts()
	}

	start(nil, time.Second) // informer resync every second (the minimum)
	e.eventually("converge", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB) })
	counts := window("two resyncs", 2, nil)
	if m := mutations(counts); m != 0 || counts[mList] != 0 {
		t.Errorf("steady state made %d mutating calls and %d lists: %v", m, counts[mList], counts)
	}

	// With a short verify period resyncs re-list, still without mutating.
	e.stop()
	start(func(c *Config) { c.NEGVerifyPeriod = 100 * time.Millisecond }, time.Second)
	listed := func() error {
		if e.srv.Counts()[mList] == 0 {
			return fmt.Errorf("no list yet")
		}
		return nil
	}
	counts = window("two resyncs that list", 2, listed)
	if m := mutations(counts); m != 0 {
		t.Errorf("verify: %d mutating calls, want 0: %v", m, counts)
	}

	// Without informer resyncs, each sync schedules its NEGs' next verify itself (so the
	// controller is never quiet for long: no waitQuiet here).
	e.stop()
	start(func(c *Config) { c.NEGVerifyPeriod = 200 * time.Millisecond }, 0)
	e.eventually("converge", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB) })
	e.srv.ResetCounts()
	from := syncs()
	e.eventually("self-scheduled verifies", func() error {
		if got := syncs() - from; got < 3 {
			return fmt.Errorf("%v syncs so far", got)
		}
		return listed()
	})
	if m := mutations(e.srv.Counts()); m != 0 {
		t.Errorf("self-scheduled verify: %d mutating calls, want 0: %v", m, e.srv.Counts())
	}
}

// TestTrickleIsPacedWhileTheBudgetIsShort: while the GCE budget is short, endpoints added one
// at a time, faster than the operation latency and much faster than CallInterval, cost at most
// about one attach call per CallInterval, not one per operation latency. (With room in the
// budget calls go out whenever none is in flight: pkg/negsync's TestPacingOnlyWhenBudgetShort.)
func TestTrickleIsPacedWhileTheBudgetIsShort(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 30 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	const interval = 400 * time.Millisecond
	e.start(func(c *Config) { c.CallInterval, c.BudgetShort = interval, func() bool { return true } }, 0)
	name := negName("web", 80)
	e.eventually("NEG created", func() error { return e.checkNEG(zoneA, name, nil) })
	e.srv.ResetCounts()

	all := e.pods(80, "node-a1")
	start := time.Now()
	for i := range all {
		e.setEndpoints("default", "web", []int32{80}, all[:i+1])
		time.Sleep(10 * time.Millisecond) // input pacing (the trickle), not a wait before an assertion
	}
	e.eventually("all 80 attached", func() error { return e.checkService("web", 80, name, all, zoneA) })
	took := time.Since(start)
	// One call per started interval of the trickle, plus the pacer's burst of two and the last.
	limit := int(took/interval) + plan.PacerBurst + 1
	if n := e.srv.Counts()[mAttach]; n > limit {
		t.Errorf("%d attach calls for 80 endpoints over %s; want at most %d (one per %s)", n, took.Round(time.Millisecond), limit, interval)
	} else {
		t.Logf("%d attach calls for 80 endpoints over %s", n, took.Round(time.Millisecond))
	}
}
