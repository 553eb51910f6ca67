package controller

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// The hybrid tests' nodes run in another cloud: zone labels eu-west-1a and eu-west-1b, mapped to
// GCE zones b and c; no providerID, no GCE instance.
const (
	awsZoneA            = "eu-west-1a"
	awsZoneB            = "eu-west-1b"
	hybridDefaultSubnet = "projects/test-project/regions/us-central1/subnetworks/default"
)

// hybridMapping is the zone mapping of the hybrid tests.
func hybridMapping() zones.Mapping {
	return zones.Mapping{Region: region, Zones: map[string]string{awsZoneA: zoneB, awsZoneB: zoneC}}
}

// withHybrid configures hybrid NEGs (a subnetwork too, which hybrid NEGs must not get).
func withHybrid(h HybridConfig) func(*Config) {
	return func(c *Config) {
		c.Hybrid = h
		c.Subnetwork = hybridDefaultSubnet
	}
}

// addHybridNode creates a ready node outside Google Cloud with zone label k8sZone ("" = none);
// gceZone is where the test expects its endpoints ("" = nowhere).
func (e *testEnv) addHybridNode(name, k8sZone, gceZone string) {
	e.t.Helper()
	e.nodes[name] = testNode{zone: gceZone, index: len(e.nodes) + 1}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Spec:       corev1.NodeSpec{ProviderID: "aws:///" + k8sZone + "/i-" + name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if k8sZone != "" {
		n.Labels[zones.LabelZone] = k8sZone
	}
	if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node: %v", err)
	}
}

// hybridEndpointsOf returns the instance-less NEG endpoints the pods should produce for Service
// port p, per GCE zone.
func (e *testEnv) hybridEndpointsOf(pods []testPod, p int32) map[string][]neg.Endpoint {
	out := map[string][]neg.Endpoint{}
	for z, eps := range e.endpointsOf(pods, p) {
		for _, ep := range eps {
			ep.Instance = ""
			out[z] = append(out[z], ep)
		}
	}
	return out
}

// hybridService returns a Service annotated solutions.cloud.google.com/hybrid-neg.
func hybridService(name, ann string, ports ...int32) *corev1.Service {
	svc := service("default", name, "", ports...)
	svc.Annotations[annotation.HybridNEGKey] = ann
	return svc
}

// checkHybridNEG returns nil when the NEG is a NON_GCP_PRIVATE_IP_PORT NEG on the network,
// without subnetwork, holding exactly want.
func (e *testEnv) checkHybridNEG(zone, name string, want []neg.Endpoint) error {
	n, err := e.newCloud().GetNEG(e.ctx, zone, name)
	if err != nil {
		return err
	}
	if n.Type != gce.TypeNonGCPPrivateIPPort || n.Subnetwork != "" || gce.LastSegment(n.Network) != "default" {
		return fmt.Errorf("NEG %s/%s: type %s, network %q, subnetwork %q", zone, name, n.Type, n.Network, n.Subnetwork)
	}
	return e.checkNEG(zone, name, want)
}

// hybridStatusOf returns the hybrid-neg-status annotation of a Service.
func (e *testEnv) hybridStatusOf(name string) (annotation.Status, bool) {
	st, ok, err := annotation.StatusOf(e.getService("default", name), hybridStatus)
	if err != nil {
		e.t.Fatalf("bad hybrid status: %v", err)
	}
	return st, ok
}

func checkStatus(st annotation.Status, ok bool, port, name string, zones ...string) error {
	if !ok {
		return fmt.Errorf("no status")
	}
	if st.NetworkEndpointGroups[port] != name || !slices.Equal(st.Zones, zones) {
		return fmt.Errorf("status %+v, want port %s → %s in %v", st, port, name, zones)
	}
	return nil
}

// TestHybridNonGCPMode: with NonGCPMode, cloud.google.com/neg gives NON_GCP_PRIVATE_IP_PORT NEGs
// (no subnetwork) in the GCE zones the nodes' labels map to, holding the pods without instance,
// reported in neg-status; no NEG in zones no node maps to.
func TestHybridNonGCPMode(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	e.addHybridNode("n2", awsZoneB, zoneC)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(6, "n1", "n2")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(withHybrid(HybridConfig{NonGCPMode: true, Zones: hybridMapping()}), 0)

	want := e.hybridEndpointsOf(pods, 80)
	e.eventually("hybrid NEGs", func() error {
		for _, z := range []string{zoneB, zoneC} {
			if err := e.checkHybridNEG(z, negName("web", 80), want[z]); err != nil {
				return err
			}
		}
		st, ok := e.status("default", "web")
		return checkStatus(st, ok, "80", negName("web", 80), zoneB, zoneC)
	})
	// Scale down to the pods of one node: the other zone's NEG is emptied, not deleted.
	e.setEndpoints("default", "web", []int32{80}, pods[:1])
	e.eventually("scaled down", func() error {
		return errors2(e.checkHybridNEG(zoneB, negName("web", 80), e.hybridEndpointsOf(pods[:1], 80)[zoneB]),
			e.checkHybridNEG(zoneC, negName("web", 80), nil))
	})
	e.waitQuiet()
	if err := e.checkNoNEG(zoneA, negName("web", 80)); err != nil {
		t.Error(err)
	}
	if _, ok := e.hybridStatusOf("web"); ok {
		t.Error("hybrid-neg-status written for cloud.google.com/neg")
	}
}

func errors2(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// TestHybridAnnotationInGCEMode: solutions.cloud.google.com/hybrid-neg gives hybrid NEGs without
// non-GCP mode, its status goes to hybrid-neg-status (not neg-status), and --neg-zones zones get
// a NEG without nodes.
func TestHybridAnnotationInGCEMode(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	e.createService(hybridService("web", `{"exposed_ports":{"80":{"name":"default-web-hybrid"}}}`, 80))
	pods := e.pods(3, "n1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	m := hybridMapping()
	m.NEGZones = []string{zoneA}
	e.start(withHybrid(HybridConfig{Zones: m}), 0)

	e.eventually("hybrid NEGs", func() error {
		if err := e.checkHybridNEG(zoneB, "default-web-hybrid", e.hybridEndpointsOf(pods, 80)[zoneB]); err != nil {
			return err
		}
		if err := e.checkHybridNEG(zoneA, "default-web-hybrid", nil); err != nil {
			return err
		}
		st, ok := e.hybridStatusOf("web")
		return checkStatus(st, ok, "80", "default-web-hybrid", zoneA, zoneB)
	})
	e.waitQuiet()
	if _, ok := e.status("default", "web"); ok {
		t.Error("neg-status written for solutions.cloud.google.com/hybrid-neg")
	}
	if err := e.checkNoNEG(zoneC, "default-web-hybrid"); err != nil {
		t.Error(err)
	}

	// Dropping the annotation deletes the NEGs and the status.
	svc := e.getService("default", "web").DeepCopy()
	delete(svc.Annotations, annotation.HybridNEGKey)
	if _, err := e.kube.CoreV1().Services("default").Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("NEGs and status removed", func() error {
		if _, ok := e.hybridStatusOf("web"); ok {
			return fmt.Errorf("hybrid-neg-status still there")
		}
		return errors2(e.checkNoNEG(zoneA, "default-web-hybrid"), e.checkNoNEG(zoneB, "default-web-hybrid"))
	})
}

// TestHybridBothAnnotations: a Service with both annotations is refused with a Warning; nothing
// is created.
func TestHybridBothAnnotations(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	svc := hybridService("web", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Annotations[annotation.NEGKey] = `{"exposed_ports":{"80":{}}}`
	e.createService(svc)
	e.setEndpoints("default", "web", []int32{80}, e.pods(2, "n1"))
	e.start(withHybrid(HybridConfig{Zones: hybridMapping()}), 0)
	e.eventually("warning", func() error {
		return e.checkEvent("default", "web", annotation.ReasonConflictingAnnotations, annotation.HybridNEGKey)
	})
	e.waitQuiet()
	if n := e.srv.Counts()[mInsert]; n != 0 {
		t.Errorf("%d NEG inserts for a refused Service", n)
	}
}

// TestHybridWrongTypeRefused: a NEG of ours of the other type (left by switching --neg-type) in a
// zone the Service wants is refused with an event and never touched; the other zones work.
func TestHybridWrongTypeRefused(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	e.addHybridNode("n2", awsZoneB, zoneC)
	name := negName("web", 80)
	desc := naming.NewDescription(clusterUID, "default", "web", 80).String()
	if _, err := e.newCloud().CreateNEG(e.ctx, zoneB, gce.NEGSpec{Name: name, Type: gce.TypeGCEVMIPPort,
		Description: desc, Network: "default"}); err != nil {
		t.Fatal(err)
	}
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(4, "n1", "n2")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(withHybrid(HybridConfig{NonGCPMode: true, Zones: hybridMapping()}), 0)

	e.eventually("zone c served, zone b refused", func() error {
		if err := e.checkHybridNEG(zoneC, name, e.hybridEndpointsOf(pods, 80)[zoneC]); err != nil {
			return err
		}
		return e.checkEvent("default", "web", ReasonNEGNotOwned, "is of type GCE_VM_IP_PORT, not NON_GCP_PRIVATE_IP_PORT")
	})
	// The refused NEG is re-checked every Backoff.Max (500ms): a shorter horizon finds the quiet
	// moments between.
	e.waitQuietWithin(100 * time.Millisecond)
	n, err := e.newCloud().GetNEG(e.ctx, zoneB, name)
	if err != nil || n.Type != gce.TypeGCEVMIPPort || n.Size != 0 {
		t.Errorf("refused NEG changed: %+v, %v", n, err)
	}
	for _, r := range e.requestsMentioning("/zones/" + zoneB + "/networkEndpointGroups/" + name) {
		if r.Method != mGet && r.Method != mList {
			t.Errorf("refused NEG touched: %s %s", r.Method, r.Path)
		}
	}
	st, ok := e.status("default", "web")
	if err := checkStatus(st, ok, "80", name, zoneC); err != nil {
		t.Errorf("status lists a refused NEG's zone: %v", err)
	}
}

// TestHybridDefaultZone: nodes without zone label, or with an unmapped one, go to
// --default-neg-zone.
func TestHybridDefaultZone(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", "", zoneA)
	e.addHybridNode("n2", "eu-west-1z", zoneA)
	e.addHybridNode("n3", awsZoneA, zoneB)
	m := hybridMapping()
	m.Default = zoneA
	e.createService(hybridService("web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(6, "n1", "n2", "n3")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(withHybrid(HybridConfig{Zones: m}), 0)
	want := e.hybridEndpointsOf(pods, 80)
	e.eventually("default zone", func() error {
		return errors2(e.checkHybridNEG(zoneA, negName("web", 80), want[zoneA]), e.checkHybridNEG(zoneB, negName("web", 80), want[zoneB]))
	})
}

// TestHybridUnmappedNodeSkipped: without --default-neg-zone, the endpoints of a node whose zone
// is not mapped are skipped with an event pointing at the flags; the others are attached.
func TestHybridUnmappedNodeSkipped(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	e.addHybridNode("n2", "eu-west-1z", "")
	e.createService(hybridService("web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(4, "n1", "n2")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(withHybrid(HybridConfig{Zones: hybridMapping()}), 0)
	e.eventually("mapped node served, unmapped skipped", func() error {
		if err := e.checkHybridNEG(zoneB, negName("web", 80), e.hybridEndpointsOf(pods, 80)[zoneB]); err != nil {
			return err
		}
		return e.checkEvent("default", "web", ReasonEndpointsSkipped, "NodeWithoutZone=2")
	})
	if err := e.checkEvent("default", "web", ReasonEndpointsSkipped, "--zone-mapping"); err != nil {
		t.Error(err)
	}
	e.waitQuiet()
	for _, z := range []string{zoneA, zoneC} {
		if err := e.checkNoNEG(z, negName("web", 80)); err != nil {
			t.Error(err)
		}
	}
}

// hybridControllerNEG creates a NEG as k8s-hybrid-neg-controller does for Service default/web
// (its markers) with endpoints eps, named name (or as it names port 80), and returns its name.
func (e *testEnv) hybridControllerNEG(zone, name string, eps []neg.Endpoint) string {
	e.t.Helper()
	if name == "" {
		name = naming.HybridControllerName("c0ffee12", "default", "web", 80)
	}
	svc := e.newCloud().Service()
	_, err := svc.NetworkEndpointGroups.Insert(project, zone, &compute.NetworkEndpointGroup{Name: name,
		NetworkEndpointType: gce.TypeNonGCPPrivateIPPort, Network: "global/networks/default",
		Description: naming.HybridControllerDescription, Annotations: map[string]string{
			naming.HybridControllerCreatedByKey: naming.HybridControllerCreatedBy, naming.HybridControllerServiceKey: "default/web"}}).Do()
	if err != nil {
		e.t.Fatalf("insert: %v", err)
	}
	var nes []*compute.NetworkEndpoint
	for _, ep := range eps {
		nes = append(nes, &compute.NetworkEndpoint{IpAddress: ep.IP, Port: ep.Port})
	}
	if len(nes) == 0 {
		return name
	}
	e.eventually("their NEG", func() error {
		_, err := svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zone, name,
			&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: nes}).Do()
		return err
	})
	return name
}

// hybridControllerService sets up a Service as k8s-hybrid-neg-controller leaves it: its
// annotation, its status naming its NEG in zone b (holding the pods of n1), its finalizer.
func hybridControllerService(t *testing.T) (e *testEnv, name string, pods []testPod) {
	e = newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	pods = e.pods(3, "n1")
	name = e.hybridControllerNEG(zoneB, "", e.hybridEndpointsOf(pods, 80)[zoneB])
	svc := hybridService("web", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Annotations[annotation.HybridNEGStatusKey] = fmt.Sprintf(`{"network_endpoint_groups":{"80":%q},"zones":[%q]}`, name, zoneB)
	svc.Finalizers = []string{HybridControllerFinalizer}
	svc.ResourceVersion = "7"
	e.createService(svc)
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.srv.ResetCounts()
	return e, name, pods
}

// TestHybridControllerServiceLeftAlone: without AdoptHybridControllerNEGs a Service of
// k8s-hybrid-neg-controller is not touched (no NEG, no status, no finalizer change) and a
// Warning says how to migrate.
func TestHybridControllerServiceLeftAlone(t *testing.T) {
	e, name, pods := hybridControllerService(t)
	before := e.getService("default", "web")
	e.start(withHybrid(HybridConfig{Zones: hybridMapping()}), 0)
	e.eventually("warning", func() error {
		return e.checkEvent("default", "web", ReasonHybridNEGControllerService, "--adopt-hybrid-neg-controller-negs")
	})
	e.waitQuiet()
	if n := mutations(e.srv.Counts()); n != 0 {
		t.Errorf("%d mutating calls: %v", n, e.srv.Counts())
	}
	after := e.getService("default", "web")
	if !slices.Equal(after.Finalizers, before.Finalizers) ||
		after.Annotations[annotation.HybridNEGStatusKey] != before.Annotations[annotation.HybridNEGStatusKey] {
		t.Errorf("Service changed: %+v", after.ObjectMeta)
	}
	if err := e.checkNEG(zoneB, name, e.hybridEndpointsOf(pods, 80)[zoneB]); err != nil {
		t.Error(err)
	}
}

// TestHybridAdoptHybridControllerNEGs: with AdoptHybridControllerNEGs the NEG the Service's
// hybrid-neg-status names is taken over — not re-created, no endpoint dropped, same name in the
// status — the finalizer is removed, the NEG follows the pods, and is deleted with the port.
func TestHybridAdoptHybridControllerNEGs(t *testing.T) {
	e, name, pods := hybridControllerService(t)
	var finalizerPatches []string
	var mu sync.Mutex
	e.kube.PrependReactor("patch", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if p := string(a.(k8stesting.PatchAction).GetPatch()); strings.Contains(p, "finalizers") {
			mu.Lock()
			finalizerPatches = append(finalizerPatches, p)
			mu.Unlock()
		}
		return false, nil, nil
	})
	rv := e.getService("default", "web").ResourceVersion
	if rv == "" {
		t.Fatal("the fake API dropped the resourceVersion")
	}
	e.start(withHybrid(HybridConfig{Zones: hybridMapping(), AdoptHybridControllerNEGs: true}), 0)
	e.eventually("adopted", func() error {
		if f := e.getService("default", "web").Finalizers; len(f) != 0 {
			return fmt.Errorf("finalizers %v", f)
		}
		return e.checkEvent("default", "web", ReasonAdopt, name)
	})
	e.waitQuiet()
	if c := e.srv.Counts(); mutations(c) != 0 {
		t.Errorf("mutating calls while adopting a NEG in step: %v", c)
	}
	// The fake API ignores preconditions; every patch must carry the resourceVersion the sync
	// saw. A sync that runs before the informer saw the patch's result sends it again, which a
	// real API server refuses (409, the resourceVersion is stale) and which changes nothing.
	mu.Lock()
	want := fmt.Sprintf(`{"metadata":{"finalizers":null,"resourceVersion":%q}}`, rv)
	if len(finalizerPatches) == 0 {
		t.Errorf("no finalizer patch")
	}
	for _, p := range finalizerPatches {
		if p != want {
			t.Errorf("finalizer patch %s, want %s", p, want)
		}
	}
	mu.Unlock()
	st, ok := e.hybridStatusOf("web")
	if err := checkStatus(st, ok, "80", name, zoneB); err != nil {
		t.Error(err)
	}

	more := e.pods(5, "n1")
	e.setEndpoints("default", "web", []int32{80}, more)
	e.eventually("adopted NEG follows the pods", func() error {
		return e.checkHybridNEG(zoneB, name, e.hybridEndpointsOf(more, 80)[zoneB])
	})
	if c := e.srv.Counts(); c[mDetach] != 0 || c[mInsert] != 0 {
		t.Errorf("detach or insert while scaling up: %v", c)
	}

	svc := e.getService("default", "web").DeepCopy()
	svc.Annotations[annotation.HybridNEGKey] = `{"exposed_ports":{}}`
	if _, err := e.kube.CoreV1().Services("default").Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("adopted NEG deleted with its port", func() error { return e.checkNoNEG(zoneB, name) })
	if err := e.checkEvent("default", "web", ReasonFinalizerRemoved, HybridControllerFinalizer); err != nil {
		t.Error(err)
	}
	_ = pods
}

// TestHybridControllerNEGOfAnotherService: a NEG of k8s-hybrid-neg-controller is adopted only by
// the Service it was made for: another Service whose hybrid-neg-status lists it (generated or
// custom name) never gets it — a generated name of another Service is not inherited (the
// Service gets a NEG of its own), a custom one is a NEGNameConflict.
func TestHybridControllerNEGOfAnotherService(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addHybridNode("n1", awsZoneA, zoneB)
	generated := e.hybridControllerNEG(zoneB, "", nil)             // made for default/web
	custom := e.hybridControllerNEG(zoneB, "default-web-neg", nil) // made for default/web
	statusOf := func(name string) string {
		return fmt.Sprintf(`{"network_endpoint_groups":{"80":%q},"zones":[%q]}`, name, zoneB)
	}
	api := hybridService("api", `{"exposed_ports":{"80":{}}}`, 80)
	api.Annotations[annotation.HybridNEGStatusKey] = statusOf(generated)
	e.createService(api)
	e.setEndpoints("default", "api", []int32{80}, e.pods(2, "n1"))
	other := hybridService("other", fmt.Sprintf(`{"exposed_ports":{"80":{"name":%q}}}`, custom), 80)
	other.Annotations[annotation.HybridNEGStatusKey] = statusOf(custom)
	e.createService(other)
	e.srv.ResetCounts()
	e.srv.ResetRequests()
	e.start(withHybrid(HybridConfig{Zones: hybridMapping(), AdoptHybridControllerNEGs: true}), 0)
	e.eventually("api has its own NEG, other is refused", func() error {
		if err := e.checkHybridNEG(zoneB, namer.NEGName("default", "api", 80), e.hybridEndpointsOf(e.pods(2, "n1"), 80)[zoneB]); err != nil {
			return err
		}
		return e.checkEvent("default", "other", ReasonNEGNameConflict, "belongs to Service default/web")
	})
	e.waitQuiet()
	for _, name := range []string{generated, custom} {
		for _, r := range e.requestsMentioning("/networkEndpointGroups/" + name) {
			if r.Method != mGet && r.Method != mList {
				t.Errorf("NEG of default/web touched: %s %s", r.Method, r.Path)
			}
		}
	}
	st, ok := e.hybridStatusOf("api")
	if err := checkStatus(st, ok, "80", namer.NEGName("default", "api", 80), zoneB); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(generated, "k8s1-c0ffee12-default-web-80-") {
		t.Errorf("unexpected name %q", generated)
	}
}

// TestHybridBackendWiring: the NEGs of a hybrid Service become backends of the backend services
// its controller.autoneg.dev/neg annotation names, with the balancing modes hybrid backends take
// (RATE on an HTTP service, CONNECTION on a regional TCP proxy), in every mapped zone.
func TestHybridBackendWiring(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 5 * time.Millisecond})
	e.addHybridNode("n1", awsZoneA, zoneB)
	e.addHybridNode("n2", awsZoneB, zoneC)
	e.createBS("", "web-bs", "HTTP")
	e.createBS(region, "web-tcp", "TCP")
	svc := hybridService("web", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Annotations[annotation.AutonegKey] = `{"backend_services":{"80":[{"name":"web-bs","max_rate_per_endpoint":50},` +
		`{"name":"web-tcp","region":"us-central1","max_connections_per_endpoint":20}]}}`
	e.createService(svc)
	pods := e.pods(4, "n1", "n2")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(func(c *Config) {
		withHybrid(HybridConfig{Zones: hybridMapping()})(c)
		withBackends("web-.*")(c)
	}, 0)
	name := negName("web", 80)
	conn := func(zone string) wantBackend {
		return wantBackend{group: gce.NEGURL(project, zone, name), mode: "CONNECTION", limit: 20, capacity: 1}
	}
	e.eventually("hybrid NEGs are backends", func() error {
		if err := e.checkBackends("", "web-bs", rateBackend(zoneB, name, 50), rateBackend(zoneC, name, 50)); err != nil {
			return err
		}
		return e.checkBackends(region, "web-tcp", conn(zoneB), conn(zoneC))
	})
	want := e.hybridEndpointsOf(pods, 80)
	e.eventually("endpoints attached", func() error {
		return errors2(e.checkHybridNEG(zoneB, name, want[zoneB]), e.checkHybridNEG(zoneC, name, want[zoneC]))
	})
}
