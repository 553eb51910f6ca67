package controller

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// stubDiscovery answers discovery of networking.gke.io/v1beta1 from a list the test can change
// while the controller runs, and counts the calls.
type stubDiscovery struct {
	*fakediscovery.FakeDiscovery
	mu        sync.Mutex
	resources []metav1.APIResource // nil: the group/version is not served
	calls     int
}

func (d *stubDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.resources == nil || gv != svcneg.GroupVersion.String() {
		return nil, apierrors.NewNotFound(schema.GroupResource{}, gv)
	}
	return &metav1.APIResourceList{GroupVersion: gv, APIResources: d.resources}, nil
}

func (d *stubDiscovery) install(subresource bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resources = []metav1.APIResource{{Name: svcneg.Resource, Namespaced: true, Kind: svcneg.Kind}}
	if subresource {
		d.resources = append(d.resources, metav1.APIResource{Name: svcneg.Resource + "/status", Namespaced: true, Kind: svcneg.Kind})
	}
}

func (d *stubDiscovery) callCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// svcNEGFake is the ServiceNetworkEndpointGroup API of a test: a fake dynamic client and a
// discovery stub.
type svcNEGFake struct {
	dyn    *dynamicfake.FakeDynamicClient
	disc   *stubDiscovery
	client *svcneg.Client
	// clock is the writer's: the real clock, moved forward by advance.
	clock *offsetClock
}

// offsetClock is the real clock plus an offset a test moves forward, "as if time passed", for
// the periods of the svcneg writer only.
type offsetClock struct {
	clock.RealClock
	offset atomic.Int64
}

func (c *offsetClock) Now() time.Time                  { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *offsetClock) advance(d time.Duration)         { c.offset.Add(int64(d)) }

// newSvcNEGFake returns the fake API; installed says whether the CRD is served (with a status
// subresource if subresource).
func newSvcNEGFake(installed, subresource bool) *svcNEGFake {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{svcneg.GroupVersionResource: svcneg.ListKind})
	disc := &stubDiscovery{FakeDiscovery: &fakediscovery.FakeDiscovery{Fake: &k8stesting.Fake{}}}
	if installed {
		disc.install(subresource)
	}
	return &svcNEGFake{dyn: dyn, disc: disc, client: svcneg.NewClient(dyn, disc), clock: &offsetClock{}}
}

// tweak gives the controller a writer of the fake API.
func (f *svcNEGFake) tweak(cfg *Config) {
	w, err := svcneg.NewWriter(svcneg.WriterConfig{Client: f.client, ResyncPeriod: cfg.ResyncPeriod, Clock: f.clock})
	if err != nil {
		panic(err)
	}
	cfg.SvcNEG = w
}

func (f *svcNEGFake) get(t *testing.T, name string) (*svcneg.ServiceNetworkEndpointGroup, error) {
	t.Helper()
	return f.client.Get(t.Context(), "default", name)
}

// writes returns the mutating calls made since the last ClearActions, as "verb[/sub] name".
func (f *svcNEGFake) writes() []string {
	var out []string
	for _, a := range f.dyn.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			what := a.GetVerb()
			if a.GetSubresource() != "" {
				what += "/" + a.GetSubresource()
			}
			out = append(out, what)
		}
	}
	return out
}

// svcNEGWeb starts a controller writing svcnegs with Service default/web exposing 80 and 443 in
// zones A and B, and waits until both objects report synced NEGs.
func svcNEGWeb(t *testing.T, f *svcNEGFake) (*testEnv, []testPod) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{},"443":{}}}`, 80, 443))
	pods := e.pods(8, "node-a1", "node-b1")
	e.setEndpoints("default", "web", []int32{80, 443}, pods)
	e.start(f.tweak, 0)
	for _, p := range []int32{80, 443} {
		e.eventually(fmt.Sprintf("svcneg of port %d synced", p), func() error {
			return e.checkSvcNEG(f, p, zoneA, zoneB)
		})
	}
	return e, pods
}

// checkSvcNEG returns nil when the object of web's port p is complete: labels, owner, one NEG
// reference per zone as GCE has them, and both conditions True.
func (e *testEnv) checkSvcNEG(f *svcNEGFake, p int32, zones ...string) error {
	name := negName("web", p)
	o, err := f.get(e.t, name)
	if err != nil {
		return err
	}
	svc := e.getService("default", "web")
	if d := cmp.Diff(map[string]string{svcneg.LabelManagedBy: "neg-controller", svcneg.LabelServiceName: "web",
		svcneg.LabelServicePort: fmt.Sprint(p), svcneg.LabelCreatedBy: svcneg.CreatedByValue}, o.Labels); d != "" {
		return fmt.Errorf("labels (-want +got):\n%s", d)
	}
	wantOwner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: svc.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}}
	if d := cmp.Diff(wantOwner, o.OwnerReferences); d != "" {
		return fmt.Errorf("owner (-want +got):\n%s", d)
	}
	if len(o.Finalizers) != 0 {
		return fmt.Errorf("finalizers %v", o.Finalizers)
	}
	var want []svcneg.NegObjectReference
	for _, z := range zones {
		n, err := e.newCloud().GetNEG(e.ctx, z, name)
		if err != nil {
			return err
		}
		want = append(want, svcneg.NegObjectReference{ID: n.ID, SelfLink: n.SelfLink, NetworkEndpointType: "GCE_VM_IP_PORT", State: "ACTIVE"})
	}
	if d := cmp.Diff(want, o.Status.NetworkEndpointGroups); d != "" {
		return fmt.Errorf("NEG refs (-want +got):\n%s", d)
	}
	for typ, reason := range map[string]string{svcneg.ConditionInitialized: svcneg.ReasonInitializationSuccessful,
		svcneg.ConditionSynced: svcneg.ReasonSyncSuccessful} {
		c := o.Status.FindCondition(typ)
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != reason || c.LastTransitionTime.IsZero() {
			return fmt.Errorf("condition %s: %+v", typ, c)
		}
	}
	if o.Status.LastSyncTime.IsZero() {
		return fmt.Errorf("no lastSyncTime")
	}
	return nil
}

func TestSvcNEGLifecycle(t *testing.T) {
	f := newSvcNEGFake(true, true)
	e, pods := svcNEGWeb(t, f)
	before, err := f.get(t, negName("web", 80))
	if err != nil {
		t.Fatal(err)
	}

	// Syncs that change nothing, and endpoint churn, write nothing.
	f.dyn.ClearActions()
	for i := 0; i < 3; i++ {
		e.ctrl.queue.Add(keyOf("default", "web"))
		e.waitQuiet()
	}
	pods = append(pods[2:], e.pods(12, "node-a1", "node-b1")[8:]...)
	e.setEndpoints("default", "web", []int32{80, 443}, pods)
	e.eventually("endpoints changed", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA, zoneB) })
	e.settle()
	if w := f.writes(); len(w) > 0 {
		t.Errorf("svcneg writes without a change: %v", w)
	}
	after, _ := f.get(t, negName("web", 80))
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("object changed (-before +after):\n%s", d)
	}

	// A port removed: its object goes once its NEGs are deleted; the other stays.
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("443 object deleted", func() error {
		if err := e.checkGone(negName("web", 443)); err != nil {
			return err
		}
		if _, err := f.get(t, negName("web", 443)); !apierrors.IsNotFound(err) {
			return fmt.Errorf("svcneg 443: %v", err)
		}
		return nil
	})
	if err := e.checkSvcNEG(f, 80, zoneA, zoneB); err != nil {
		t.Errorf("port 80 object disturbed: %v", err)
	}

	// The annotation removed: every object goes.
	e.setAnnotation("default", "web", "")
	e.eventually("80 object deleted", func() error {
		if _, err := f.get(t, negName("web", 80)); !apierrors.IsNotFound(err) {
			return fmt.Errorf("svcneg 80: %v", err)
		}
		return nil
	})
}

// TestSvcNEGRestartWritesNothing: a new controller compares with the existing objects (one
// list) and writes nothing when nothing changed.
func TestSvcNEGRestartWritesNothing(t *testing.T) {
	f := newSvcNEGFake(true, true)
	e, pods := svcNEGWeb(t, f)
	e.stop()
	f.dyn.ClearActions()
	e.srv.ResetCounts()
	e.start(f.tweak, 0)
	e.eventually("NEGs listed again after restart", func() error {
		if n := e.srv.Counts()[mList]; n < 4 {
			return fmt.Errorf("%d listings", n)
		}
		return e.checkService("web", 80, negName("web", 80), pods, zoneA, zoneB)
	})
	e.settle()
	lists := 0
	for _, a := range f.dyn.Actions() {
		if a.GetVerb() == "list" {
			lists++
		}
	}
	if w := f.writes(); len(w) > 0 || lists != 1 {
		t.Errorf("after restart: writes %v, %d lists (want none, 1)", w, lists)
	}
}

// TestSvcNEGWithoutCRD: without the CRD NEGs work, nothing is written, discovery is not asked
// again at every sync; once the CRD appears, the objects are written without a Service event.
func TestSvcNEGWithoutCRD(t *testing.T) {
	f := newSvcNEGFake(false, false)
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(3, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.createService(service("default", "plain", "", 80))
	e.start(f.tweak, 0)
	e.eventually("NEG synced", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA) })
	for i := 0; i < 5; i++ {
		e.ctrl.queue.Add(keyOf("default", "web"))
		e.waitQuiet()
	}
	if n := f.disc.callCount(); n != 1 {
		t.Errorf("discovery asked %d times, want once per minute", n)
	}
	if a := f.dyn.Actions(); len(a) > 0 {
		t.Errorf("calls without the CRD: %v", a)
	}

	f.disc.install(true)
	f.clock.advance(time.Minute)
	e.ctrl.queue.Add(keyOf("default", "plain")) // any sync looks again
	e.eventually("object written once the CRD exists", func() error { return e.checkSvcNEG(f, 80, zoneA) })
}

// TestSvcNEGConflict: GKE's CRD (no status subresource). An object of ours from an earlier
// Service of that name (stale owner UID, stale status) is brought up to date, with status
// written with the object; an object of another Service with the wanted name is left alone and
// reported.
func TestSvcNEGConflict(t *testing.T) {
	f := newSvcNEGFake(true, false)
	ctx := t.Context()
	earlier := svcneg.New(negName("web", 80), svcneg.Owner{Namespace: "default", Name: "web", UID: "old-uid", Port: 80})
	earlier.Status.NetworkEndpointGroups = []svcneg.NegObjectReference{{ID: "1", SelfLink: "stale"}}
	if _, err := f.client.Create(ctx, earlier); err != nil {
		t.Fatal(err)
	}
	other := svcneg.New(negName("web", 443), svcneg.Owner{Namespace: "default", Name: "other", UID: "o", Port: 443})
	if _, err := f.client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	f.dyn.ClearActions()

	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{},"443":{}}}`, 80, 443))
	e.setEndpoints("default", "web", []int32{80, 443}, e.pods(4, "node-a1", "node-b1"))
	e.start(f.tweak, 0)
	e.eventually("brought up to date", func() error { return e.checkSvcNEG(f, 80, zoneA, zoneB) })
	e.eventually("conflict reported", func() error {
		return e.checkEvent("default", "web", ReasonSvcNEGConflict, negName("web", 443))
	})
	got, err := f.get(t, negName("web", 443))
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[svcneg.LabelServiceName] != "other" || len(got.Status.Conditions) != 0 {
		t.Errorf("another Service's object was changed: %+v", got)
	}
	for _, w := range f.writes() {
		if strings.Contains(w, "/status") {
			t.Errorf("status subresource used without one: %v", f.writes())
			break
		}
	}
}

// TestSvcNEGConditionsReportFailures: a failing NEG create makes Initialized and Synced False
// with GCE's error; failing attaches make Synced False; both recover.
func TestSvcNEGConditionsReportFailures(t *testing.T) {
	f := newSvcNEGFake(true, true)
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.srv.InjectFault(fakegce.Fault{Method: mInsert, Code: http.StatusForbidden, Reason: "quotaExceeded", Message: "Quota NETWORK_ENDPOINT_GROUPS exceeded"})
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(3, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(f.tweak, 0)
	name := negName("web", 80)
	cond := func(typ string) (*svcneg.Condition, error) {
		o, err := f.get(t, name)
		if err != nil {
			return nil, err
		}
		c := o.Status.FindCondition(typ)
		if c == nil {
			return nil, fmt.Errorf("no %s condition", typ)
		}
		return c, nil
	}
	var initFalse metav1.Time
	e.eventually("Initialized False", func() error {
		c, err := cond(svcneg.ConditionInitialized)
		if err != nil {
			return err
		}
		if c.Status != corev1.ConditionFalse || c.Reason != svcneg.ReasonInitializationFailed || !strings.Contains(c.Message, "NETWORK_ENDPOINT_GROUPS") {
			return fmt.Errorf("%+v", c)
		}
		if s, err := cond(svcneg.ConditionSynced); err != nil || s.Status != corev1.ConditionFalse || s.Reason != svcneg.ReasonSyncFailed {
			return fmt.Errorf("synced %+v %v", s, err)
		}
		initFalse = c.LastTransitionTime
		return nil
	})

	e.srv.ClearFaults()
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, Code: http.StatusServiceUnavailable, Reason: "backendError"})
	e.eventually("Initialized True, Synced False", func() error {
		c, err := cond(svcneg.ConditionInitialized)
		if err != nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("initialized %+v %v", c, err)
		}
		s, err := cond(svcneg.ConditionSynced)
		if err != nil || s.Status != corev1.ConditionFalse || !strings.Contains(s.Message, "failed") {
			return fmt.Errorf("synced %+v %v", s, err)
		}
		return nil
	})

	e.srv.ClearFaults()
	e.eventually("synced", func() error { return e.checkSvcNEG(f, 80, zoneA) })
	c, _ := cond(svcneg.ConditionInitialized)
	if !c.LastTransitionTime.After(initFalse.Time) && !c.LastTransitionTime.Equal(&initFalse) {
		t.Errorf("Initialized transition time %v before the False one %v", c.LastTransitionTime, initFalse)
	}
}

// TestSvcNEGDeletedWhenNEGKeptInUse: a NEG a backend service still uses is kept with its
// endpoints, but the object of the port that no longer exists is deleted (nothing waits on it).
func TestSvcNEGDeletedWhenNEGKeptInUse(t *testing.T) {
	f := newSvcNEGFake(true, true)
	e, pods := svcNEGWeb(t, f)
	name := negName("web", 443)
	e.createBS("", "web-be", "HTTP", &compute.Backend{
		Group: gce.NEGURL(project, zoneA, name), BalancingMode: "RATE", MaxRatePerEndpoint: 1,
	})
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("object deleted while the NEG is kept", func() error {
		if err := e.checkNEG(zoneA, name, e.endpointsOf(pods, 443)[zoneA]); err != nil {
			return err
		}
		if _, err := f.get(t, name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("svcneg: %v", err)
		}
		return nil
	})
}

// TestSvcNEGNamespaceTerminating: creating an object in a namespace being deleted is refused;
// that is not an error (the Service goes with the namespace), so no warning and no retries.
func TestSvcNEGNamespaceTerminating(t *testing.T) {
	f := newSvcNEGFake(true, true)
	creates := 0
	var mu sync.Mutex
	f.dyn.PrependReactor("create", svcneg.Resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		creates++
		err := apierrors.NewForbidden(svcneg.GroupVersionResource.GroupResource(), "x", fmt.Errorf("namespace default is being terminated"))
		err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: "namespace is being terminated"}}
		return true, nil, err
	})
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(2, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(f.tweak, 0)
	e.eventually("NEG synced", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA) })
	e.waitQuiet()
	if evs := e.events("default", "web", ReasonSvcNEGUpdateFailed); len(evs) > 0 {
		t.Errorf("warning recorded: %v", evs[0].Message)
	}
	mu.Lock()
	defer mu.Unlock()
	// One attempt per sync at most (the NEG is inserted, then attached, and each call's end
	// re-syncs: a handful of syncs), not a retry loop (which, with the tests' 20 ms backoff,
	// would make dozens).
	if creates == 0 || creates > 8 {
		t.Errorf("%d create attempts: want a few (no retry loop)", creates)
	}
}
