package negbinding

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// TestBindingKeepsNEGsInStep: a binding fills NEGs made by hand in the zones it lists, with the
// Service port's endpoints of each zone; scale changes follow; it records the NEGs, the
// finalizer and its conditions; endpoints in a zone it lists no NEG for are skipped with a
// warning; endpoints attached by hand are detached (exactly in step); nothing is created or
// deleted.
func TestBindingKeepsNEGsInStep(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	linkA := e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg", Description: "managed by terraform"})
	linkB := e.createNEG(zoneB, gce.NEGSpec{Name: "web-neg"})
	stray := neg.Endpoint{Instance: "node-a", IP: "10.1.9.9", Port: 8080}
	e.attachByHand(zoneA, "web-neg", []neg.Endpoint{stray})
	e.srv.ResetCounts()
	e.createService("web")
	pods := e.pods(6, "node-a", "node-b", "node-c")
	e.setEndpoints("web", pods)
	e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA, zoneB)))

	e.eventually("NEGs filled", func() error {
		for _, z := range []string{zoneA, zoneB} {
			if err := e.checkNEG(z, "web-neg", e.endpointsIn(pods, z)); err != nil {
				return err
			}
		}
		return e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached)
	})
	b := e.getBinding("web")
	if !slices.Contains(b.Finalizers, Finalizer) {
		t.Errorf("finalizers %v, want %s", b.Finalizers, Finalizer)
	}
	want := []StatusNEGRef{{ResourceURL: linkA}, {ResourceURL: linkB}}
	if d := cmp.Diff(want, b.Status.NetworkEndpointGroups); d != "" {
		t.Errorf("status.networkEndpointGroups (-want +got):\n%s", d)
	}
	if err := e.checkCondition("web", ConditionNEGsAccepted, metav1.ConditionTrue, ReasonAccepted); err != nil {
		t.Error(err)
	}
	if b.Status.LastSyncTime.IsZero() {
		t.Error("no lastSyncTime")
	}
	e.eventually("skip warning", func() error { return e.checkEvent("web", ReasonEndpointsSkipped, "ZoneWithoutNEG=2") })
	e.eventually("attach event", func() error { return e.checkEvent("web", ReasonAttach, `NEG "web-neg" in zone "us-central1-a"`) })

	// Scale down, then up in another shape.
	pods = e.pods(3, "node-a", "node-b", "node-c")
	e.setEndpoints("web", pods)
	e.eventually("scaled down", func() error {
		return errorsJoin(e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)), e.checkNEG(zoneB, "web-neg", e.endpointsIn(pods, zoneB)))
	})
	pods = e.pods(10, "node-b", "node-a")
	e.setEndpoints("web", pods)
	e.eventually("scaled up", func() error {
		return errorsJoin(e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)), e.checkNEG(zoneB, "web-neg", e.endpointsIn(pods, zoneB)))
	})
	e.settle()
	if err := e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached); err != nil {
		t.Error(err)
	}
	m := e.mutations()
	if m["insert"] != 0 || m["delete"] != 0 {
		t.Errorf("NEG inserts/deletes %v: a binding creates and deletes nothing", m)
	}
	if _, ok := e.srv.NEGEndpoints(zoneC, "web-neg"); ok {
		t.Error("a NEG was created in zone c")
	}

	// A settled binding writes nothing more: no status churn on syncs that change nothing.
	rv := e.getBinding("web").ResourceVersion
	e.ctrl.enqueueAll()
	e.settle()
	if got := e.getBinding("web").ResourceVersion; got != rv {
		t.Errorf("a no-op sync rewrote the binding (resourceVersion %s → %s)", rv, got)
	}
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestBindingRefusals: every NEG a binding may not bind is refused with NEGsAccepted False, a
// Warning event of the refusal's reason, and is never touched; the binding's other NEGs are
// synced.
func TestBindingRefusals(t *testing.T) {
	ownDesc := `{"cluster-uid":"` + clusterUID + `","namespace":"default","service-name":"other","port":"80"}`
	for _, tc := range []struct {
		name  string
		setup func(e *testEnv) // makes NEG "bad" in zone a (or not)
		neg   string
		// byHand: an endpoint attached by hand beforehand, which must stay.
		byHand bool
		tweak  func(*Config)
		reason string
	}{
		{name: "not found", neg: "bad", setup: func(*testEnv) {}, reason: ReasonNEGNotFound},
		{name: "this cluster's annotation NEG", neg: "bad", byHand: true, reason: ReasonNEGManagedByController,
			setup: func(e *testEnv) { e.createNEG(zoneA, gce.NEGSpec{Name: "bad", Description: ownDesc}) }},
		{name: "generated name", neg: "k8s1-a1b2c3d4-default-web-80-912f4002", byHand: true, reason: ReasonNEGManagedByController,
			setup: func(e *testEnv) { e.createNEG(zoneA, gce.NEGSpec{Name: "k8s1-a1b2c3d4-default-web-80-912f4002"}) }},
		{name: "hybrid NEG", neg: "bad", reason: ReasonNEGTypeMismatch,
			setup: func(e *testEnv) { e.createNEG(zoneA, gce.NEGSpec{Name: "bad", Type: gce.TypeNonGCPPrivateIPPort}) }},
		{name: "other network", neg: "bad", reason: ReasonNEGNetworkMismatch,
			setup: func(e *testEnv) {
				e.createNetwork("other")
				e.createNEG(zoneA, gce.NEGSpec{Name: "bad", Network: "other"})
			}},
		{name: "not in the allow-list", neg: "bad", byHand: true, reason: ReasonNEGNotAllowed,
			setup: func(e *testEnv) { e.createNEG(zoneA, gce.NEGSpec{Name: "bad"}) },
			tweak: func(c *Config) { c.Allow, _ = ParseAllowList("default=good|web-.*") }},
		{name: "named by a Service annotation", neg: "bad", byHand: true, reason: ReasonNEGConflict,
			setup: func(e *testEnv) {
				e.createNEG(zoneA, gce.NEGSpec{Name: "bad"})
				e.createService("annotated")
				svc, _ := e.kube.CoreV1().Services(ns).Get(e.ctx, "annotated", metav1.GetOptions{})
				svc.Annotations = map[string]string{"cloud.google.com/neg": `{"exposed_ports":{"80":{"name":"bad"}}}`}
				if _, err := e.kube.CoreV1().Services(ns).Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
					e.t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.threeZones()
			e.createNEG(zoneA, gce.NEGSpec{Name: "good"})
			tc.setup(e)
			var before []neg.Endpoint
			if tc.byHand {
				before = []neg.Endpoint{{Instance: "node-a", IP: "10.1.7.7", Port: 8080}}
				e.attachByHand(zoneA, tc.neg, before)
			}
			e.createService("web")
			pods := e.pods(4, "node-a")
			e.setEndpoints("web", pods)
			e.start(tc.tweak)
			e.createBinding(binding("web", "web", negRef("good", zoneA), SpecNEGRef{Name: tc.neg, Subnet: "s2", Zones: []string{zoneA}}))
			e.eventually("refused", func() error {
				return errorsJoin(e.checkCondition("web", ConditionNEGsAccepted, metav1.ConditionFalse, tc.reason),
					e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionFalse, ReasonNEGsRefused),
					e.checkEvent("web", tc.reason, tc.neg),
					e.checkNEG(zoneA, "good", e.endpointsIn(pods, zoneA)))
			})
			e.settle()
			if tc.name != "not found" {
				if err := e.checkNEG(zoneA, tc.neg, before); err != nil {
					t.Errorf("the refused NEG was touched: %v", err)
				}
			}
			for _, s := range e.getBinding("web").Status.NetworkEndpointGroups {
				if r, _ := refFromURL(s.ResourceURL); r.Name == tc.neg {
					t.Errorf("the refused NEG is in the status: %v", s)
				}
			}
			if n := len(e.events("web", tc.reason)); n != 1 {
				t.Errorf("%d %s events, want 1 (deduplicated)", n, tc.reason)
			}
		})
	}
}

// TestBindingNEGCreatedLater: a NEG missing in a zone is refused (NEGNotFound); once someone
// creates it, the binding fills it without any event on the binding.
func TestBindingNEGCreatedLater(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(4, "node-a", "node-b")
	e.setEndpoints("web", pods)
	e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA, zoneB)))
	e.eventually("zone b refused, zone a filled", func() error {
		return errorsJoin(e.checkCondition("web", ConditionNEGsAccepted, metav1.ConditionFalse, ReasonNEGNotFound),
			e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)))
	})
	e.createNEG(zoneB, gce.NEGSpec{Name: "web-neg"})
	e.eventually("zone b filled", func() error {
		return errorsJoin(e.checkNEG(zoneB, "web-neg", e.endpointsIn(pods, zoneB)),
			e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached))
	})
}

// TestBindingTwoOnOneNEG: of two bindings naming one NEG the first keeps it; the second is
// refused (NEGConflict naming the first) and takes over once the first is deleted (and has
// detached its endpoints).
func TestBindingTwoOnOneNEG(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "shared"})
	e.createService("one")
	e.createService("two")
	onePods, twoPods := e.pods(2, "node-a"), e.pods(5, "node-a")[2:]
	e.setEndpoints("one", onePods)
	e.setEndpoints("two", twoPods)
	e.start(nil)
	e.createBinding(binding("one", "one", negRef("shared", zoneA)))
	e.eventually("first binding attached", func() error {
		return errorsJoin(e.checkNEG(zoneA, "shared", e.endpointsIn(onePods, zoneA)),
			e.checkCondition("one", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached))
	})
	e.createBinding(binding("two", "two", negRef("shared", zoneA)))
	e.eventually("second refused", func() error {
		return errorsJoin(e.checkCondition("two", ConditionNEGsAccepted, metav1.ConditionFalse, ReasonNEGConflict),
			e.checkEvent("two", ReasonNEGConflict, "default/one"))
	})
	e.settle()
	if err := e.checkNEG(zoneA, "shared", e.endpointsIn(onePods, zoneA)); err != nil {
		t.Errorf("the second binding touched the NEG: %v", err)
	}
	e.deleteBinding("one")
	e.eventually("second takes over", func() error {
		return errorsJoin(e.checkNEG(zoneA, "shared", e.endpointsIn(twoPods, zoneA)),
			e.checkCondition("two", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached))
	})
}

// TestBindingDeletionDetaches: deleting a binding detaches every endpoint of its NEGs (endpoints
// the binding attached; it keeps the NEGs exactly in step, so that is all of them), removes the
// finalizer and leaves the NEGs in place, empty.
func TestBindingDeletionDetaches(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createNEG(zoneB, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(6, "node-a", "node-b")
	e.setEndpoints("web", pods)
	e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA, zoneB)))
	e.eventually("filled", func() error {
		return e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached)
	})
	e.deleteBinding("web")
	for _, z := range []string{zoneA, zoneB} {
		if err := e.checkNEG(z, "web-neg", nil); err != nil {
			t.Errorf("after deletion: %v", err)
		}
	}
	e.eventually("CleanedUp event", func() error { return e.checkEvent("web", ReasonCleanedUp, "detached") })
	// Nothing else happens to the NEGs afterwards, even as the Service's endpoints change.
	e.setEndpoints("web", e.pods(2, "node-a"))
	e.settle()
	if err := e.checkNEG(zoneA, "web-neg", nil); err != nil {
		t.Errorf("after deletion and a scale change: %v", err)
	}
}

// TestBindingCleanupBounded: when the endpoints cannot be detached (every detach fails), the
// finalizer is removed anyway once the cleanup timeout has passed, with a CleanupTimedOut
// warning naming the NEG.
func TestBindingCleanupBounded(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(2, "node-a")
	e.setEndpoints("web", pods)
	e.start(func(c *Config) { c.CleanupTimeout = 2 * time.Second })
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA)))
	e.eventually("filled", func() error { return e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)) })
	e.srv.InjectFault(fakegce.Fault{Method: mDetach, Code: 503})
	start := time.Now()
	e.deleteBinding("web")
	// The deletion timestamp has a resolution of one second.
	if d := time.Since(start); d < time.Second {
		t.Errorf("the finalizer went after %s, before the timeout, though nothing could be detached", d)
	}
	e.eventually("CleanupTimedOut event", func() error {
		return e.checkEvent("web", ReasonCleanupTimedOut, "us-central1-a/web-neg")
	})
	if err := e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)); err != nil {
		t.Errorf("the NEG changed although every detach failed: %v", err)
	}
}

// TestBindingServiceMissing: a binding whose Service does not exist (or lost the port) leaves
// its NEGs as they are, with BackendRefAttached False; the Service coming back resumes the sync.
func TestBindingServiceMissing(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(3, "node-a")
	e.setEndpoints("web", pods)
	e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA)))
	e.eventually("filled", func() error { return e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)) })
	if err := e.kube.CoreV1().Services(ns).Delete(e.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.kube.DiscoveryV1().EndpointSlices(ns).Delete(e.ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("BackendNotFound", func() error {
		return e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionFalse, ReasonBackendNotFound)
	})
	e.settle()
	if err := e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)); err != nil {
		t.Errorf("the Service's deletion changed the NEG: %v", err)
	}
	e.createService("web")
	pods = e.pods(1, "node-a")
	e.setEndpoints("web", pods)
	e.eventually("resumed", func() error {
		return errorsJoin(e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)),
			e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached))
	})
}

// TestBindingSpecEdit: a zone removed from the spec releases that NEG — emptied, out of the
// status, Normal Released — while the other zone stays in step; a zone added is filled.
func TestBindingSpecEdit(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	for _, z := range []string{zoneA, zoneB, zoneC} {
		e.createNEG(z, gce.NEGSpec{Name: "web-neg"})
	}
	e.createService("web")
	pods := e.pods(6, "node-a", "node-b", "node-c")
	e.setEndpoints("web", pods)
	e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA, zoneB)))
	e.eventually("filled", func() error {
		return e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached)
	})
	e.updateBinding("web", func(b *NetworkEndpointGroupBinding) {
		b.Spec.NetworkEndpointGroups[0].Zones = []string{zoneA, zoneC}
		b.Generation++
	})
	e.eventually("b released, c filled", func() error {
		var urls []string
		for _, s := range e.getBinding("web").Status.NetworkEndpointGroups {
			urls = append(urls, s.ResourceURL)
		}
		if len(urls) != 2 || slices.ContainsFunc(urls, func(u string) bool { r, _ := refFromURL(u); return r.Zone == zoneB }) {
			return fmt.Errorf("status NEGs %v", urls)
		}
		return errorsJoin(e.checkNEG(zoneB, "web-neg", nil), e.checkNEG(zoneC, "web-neg", e.endpointsIn(pods, zoneC)),
			e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)), e.checkEvent("web", ReasonReleased, zoneB),
			e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached))
	})
}

// TestBindingBound: the readiness hook lists the zonal NEGs recorded by the bindings of a
// namespace.
func TestBindingBound(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	e.setEndpoints("web", e.pods(1, "node-a"))
	c := e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA, zoneB)))
	e.eventually("bound", func() error {
		want := []Bound{{Service: "web", Port: svcPort, NEG: neg.Ref{Zone: zoneA, Name: "web-neg"}}}
		if d := cmp.Diff(want, c.Bound(ns)); d != "" {
			return fmt.Errorf("Bound (-want +got):\n%s", d)
		}
		return nil
	})
	if got := c.Bound("other"); len(got) != 0 {
		t.Errorf("Bound(other) = %v", got)
	}
}

// TestBindingWaitsForCRD: without the CRD the controller runs, serves nothing, and starts once
// the CRD is installed.
func TestBindingWaitsForCRD(t *testing.T) {
	e := newTestEnv(t)
	disc := e.client.disc.(*stubDiscovery)
	disc.installed.Store(false)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(2, "node-a")
	e.setEndpoints("web", pods)
	c := e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA)))
	if c.HasSynced() || c.Bound(ns) != nil {
		t.Fatal("the controller serves bindings without the CRD")
	}
	disc.installed.Store(true)
	e.eventually("filled once the CRD is there", func() error { return e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)) })
}

// TestBindingRepairsDrift: an endpoint attached by hand to a bound NEG is found at the next read
// of the NEG (its size differs from what the controller believes, every resync period) and
// detached.
func TestBindingRepairsDrift(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(2, "node-a")
	e.setEndpoints("web", pods)
	e.start(func(c *Config) { c.ResyncPeriod = time.Second })
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA)))
	e.eventually("filled", func() error { return e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)) })
	e.attachByHand(zoneA, "web-neg", []neg.Endpoint{{Instance: "node-a", IP: "10.1.9.9", Port: 8080}})
	e.eventually("stray endpoint detached", func() error { return e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)) })
}

// TestBindingKeepsNEGAgainstLaterAnnotation: a Service annotation naming a NEG a binding already
// holds does not take it away (the annotation side refuses it): the NEG stays in step.
func TestBindingKeepsNEGAgainstLaterAnnotation(t *testing.T) {
	e := newTestEnv(t)
	e.threeZones()
	e.createNEG(zoneA, gce.NEGSpec{Name: "web-neg"})
	e.createService("web")
	pods := e.pods(3, "node-a")
	e.setEndpoints("web", pods)
	e.start(nil)
	e.createBinding(binding("web", "web", negRef("web-neg", zoneA)))
	e.eventually("filled", func() error {
		return e.checkCondition("web", ConditionBackendRefAttached, metav1.ConditionTrue, ReasonAttached)
	})
	e.createService("late")
	svc, _ := e.kube.CoreV1().Services(ns).Get(e.ctx, "late", metav1.GetOptions{})
	svc.Annotations = map[string]string{"cloud.google.com/neg": `{"exposed_ports":{"80":{"name":"web-neg"}}}`}
	if _, err := e.kube.CoreV1().Services(ns).Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if err := e.checkNEG(zoneA, "web-neg", e.endpointsIn(pods, zoneA)); err != nil {
		t.Error(err)
	}
	if err := e.checkCondition("web", ConditionNEGsAccepted, metav1.ConditionTrue, ReasonAccepted); err != nil {
		t.Error(err)
	}
}
