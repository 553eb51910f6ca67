package negbinding

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const (
	project    = "test-project"
	region     = "us-central1"
	zoneA      = "us-central1-a"
	zoneB      = "us-central1-b"
	zoneC      = "us-central1-c"
	clusterUID = "5b6f7c1e-0d3a-4a57-9f21-3c9e7a1b2c4d"
	ns         = "default"

	mInsert = "compute.networkEndpointGroups.insert"
	mDelete = "compute.networkEndpointGroups.delete"
	mAttach = "compute.networkEndpointGroups.attachNetworkEndpoints"
	mDetach = "compute.networkEndpointGroups.detachNetworkEndpoints"

	convergeTimeout = 60 * time.Second
	// quietHorizon is how far ahead the quiescence barrier requires nothing to be scheduled:
	// longer than the test backoffs' cap, shorter than missingRecheck.
	quietHorizon   = time.Second
	missingRecheck = 3 * time.Second
)

// stubDiscovery serves networking.gke.io/v1beta1 with the binding resource, or nothing.
type stubDiscovery struct {
	*fakediscovery.FakeDiscovery
	installed atomic.Bool
}

func (d *stubDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if !d.installed.Load() || gv != GroupVersion.String() {
		return nil, apierrors.NewNotFound(schema.GroupResource{}, gv)
	}
	return &metav1.APIResourceList{GroupVersion: gv, APIResources: []metav1.APIResource{
		{Name: Resource, Namespaced: true, Kind: Kind}, {Name: Resource + "/status", Namespaced: true, Kind: Kind}}}, nil
}

// testEnv is one emulator, one fake Kubernetes API (with a fake dynamic client for the
// bindings) and, while started, one controller.
type testEnv struct {
	t      *testing.T
	srv    *fakegce.Server
	base   string
	kube   *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	client *Client
	ctx    context.Context
	nodes  map[string]testNode

	mu      sync.Mutex
	ctrl    *Controller
	cancel  context.CancelFunc
	stopped chan struct{}
	factory informers.SharedInformerFactory
	markers int
}

type testNode struct {
	zone  string
	index int // pod IPs are 10.<index>.x.y
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: project, Region: region, Zones: []string{zoneA, zoneB, zoneC},
		StrictEndpointOps: true})
	_, ctx := ktesting.NewTestContext(t)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GroupVersionResource: ListKind})
	disc := &stubDiscovery{FakeDiscovery: &fakediscovery.FakeDiscovery{Fake: &k8stesting.Fake{}}}
	disc.installed.Store(true)
	e := &testEnv{t: t, srv: srv, base: base, kube: fake.NewClientset(), dyn: dyn, client: NewClient(dyn, disc), ctx: ctx,
		nodes: map[string]testNode{}}
	t.Cleanup(e.stop)
	return e
}

// cloud returns the adapter against the emulator, with fast polls and retries.
func (e *testEnv) cloud() *gce.Compute {
	c, err := gce.New(context.Background(), gce.Config{Project: project, Region: region, Endpoint: e.base, WithoutAuth: true,
		OperationPollInterval: 5 * time.Millisecond, RetryBaseDelay: 5 * time.Millisecond, MaxInFlight: 16})
	if err != nil {
		e.t.Fatalf("gce.New: %v", err)
	}
	return c
}

// start runs a new controller (fresh informers) against the emulator; tweak adjusts its
// configuration.
func (e *testEnv) start(tweak func(*Config)) *Controller {
	e.t.Helper()
	factory := informers.NewSharedInformerFactory(e.kube, 0)
	cfg := Config{
		Dynamic: e.dyn, Client: e.client, KubeClient: e.kube, Informers: factory, Cloud: e.cloud(),
		ClusterUID: clusterUID, ClusterName: "test", Network: "default",
		CleanupTimeout: time.Minute, ResyncPeriod: time.Hour, MissingRecheck: missingRecheck,
		NEGVerifyPeriod: time.Hour, CallInterval: 50 * time.Millisecond, SyncDelay: 10 * time.Millisecond,
		Backoff:       backoff.Policy{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond, Later: 100 * time.Millisecond},
		DiscoveryPoll: 50 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	stopped := make(chan struct{})
	factory.Start(ctx.Done())
	c.Start(ctx)
	go func() {
		defer close(stopped)
		if err := c.Run(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Run")
		}
	}()
	e.mu.Lock()
	e.ctrl, e.cancel, e.stopped, e.factory = c, cancel, stopped, factory
	e.mu.Unlock()
	return c
}

// stop stops the running controller, if any, and waits for it.
func (e *testEnv) stop() {
	e.mu.Lock()
	cancel, stopped, factory := e.cancel, e.stopped, e.factory
	e.cancel, e.stopped, e.factory, e.ctrl = nil, nil, nil, nil
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-stopped
	factory.Shutdown()
}

// addNode creates a ready node in zone and its VM (alias range 10.<index>.0.0/16).
func (e *testEnv) addNode(name, zone string) {
	e.t.Helper()
	idx := len(e.nodes) + 1
	e.nodes[name] = testNode{zone: zone, index: idx}
	if err := e.srv.AddInstance(zone, fakegce.InstanceSpec{Name: name, AliasCIDRs: []string{fmt.Sprintf("10.%d.0.0/16", idx)}}); err != nil {
		e.t.Fatalf("AddInstance: %v", err)
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": zone}},
		Spec:       corev1.NodeSpec{ProviderID: fmt.Sprintf("gce://%s/%s/%s", project, zone, name)},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node: %v", err)
	}
}

// threeZones adds one node per zone: node-a, node-b, node-c.
func (e *testEnv) threeZones() {
	e.addNode("node-a", zoneA)
	e.addNode("node-b", zoneB)
	e.addNode("node-c", zoneC)
}

type testPod struct {
	name, node, ip string
	terminating    bool
}

// pods returns n pods spread round-robin over nodes.
func (e *testEnv) pods(n int, nodes ...string) []testPod {
	out := make([]testPod, n)
	for i := range out {
		node := nodes[i%len(nodes)]
		k := i / len(nodes)
		out[i] = testPod{name: fmt.Sprintf("pod-%s-%d", node, k), node: node,
			ip: fmt.Sprintf("10.%d.%d.%d", e.nodes[node].index, k/250, k%250+1)}
	}
	return out
}

const (
	svcPort    = int32(80)
	targetPort = int32(8080)
)

// createService creates Service name with port 80 (named "http") → 8080.
func (e *testEnv) createService(name string) {
	e.t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: svcPort, Protocol: corev1.ProtocolTCP,
			TargetPort: intstr.FromInt32(targetPort)}}}}
	if _, err := e.kube.CoreV1().Services(ns).Create(e.ctx, svc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create service: %v", err)
	}
}

// setEndpoints replaces the endpoints of Service svc with pods, in one EndpointSlice.
func (e *testEnv) setEndpoints(svc string, pods []testPod) {
	e.t.Helper()
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-0", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(targetPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Terminating: ptr.To(p.terminating)},
			NodeName:   ptr.To(p.node),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.name},
		})
	}
	slices := e.kube.DiscoveryV1().EndpointSlices(ns)
	_, err := slices.Update(e.ctx, s, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = slices.Create(e.ctx, s, metav1.CreateOptions{})
	}
	if err != nil {
		e.t.Fatalf("write slice: %v", err)
	}
}

// endpointsIn returns the NEG endpoints of the pods on nodes of zone.
func (e *testEnv) endpointsIn(pods []testPod, zone string) []neg.Endpoint {
	var out []neg.Endpoint
	for _, p := range pods {
		if !p.terminating && e.nodes[p.node].zone == zone {
			out = append(out, neg.Endpoint{Instance: p.node, IP: p.ip, Port: int64(targetPort)})
		}
	}
	neg.SortEndpoints(out)
	return out
}

// createNEG makes a NEG by hand, as Terraform would (type GCE_VM_IP_PORT on the default
// network unless spec says otherwise), and returns its selfLink.
func (e *testEnv) createNEG(zone string, spec gce.NEGSpec) string {
	e.t.Helper()
	if spec.Network == "" {
		spec.Network = "default"
	}
	n, err := e.cloud().CreateNEG(e.ctx, zone, spec)
	if err != nil {
		e.t.Fatalf("CreateNEG %s/%s: %v", zone, spec.Name, err)
	}
	return n.SelfLink
}

// createNetwork creates a VPC network in the emulator.
func (e *testEnv) createNetwork(name string) {
	e.t.Helper()
	svc, err := compute.NewService(e.ctx, option.WithEndpoint(e.base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := svc.Networks.Insert(project, &compute.Network{Name: name, AutoCreateSubnetworks: true}).Context(e.ctx).Do(); err != nil {
		e.t.Fatalf("create network %s: %v", name, err)
	}
}

// attachByHand attaches endpoints to a NEG outside the controller.
func (e *testEnv) attachByHand(zone, name string, eps []neg.Endpoint) {
	e.t.Helper()
	if err := e.cloud().AttachNetworkEndpoints(e.ctx, zone, name, eps); err != nil {
		e.t.Fatalf("attach by hand: %v", err)
	}
}

// binding returns a binding of Service svc port 80 to the NEG name in zones.
func binding(name, svc string, negs ...SpecNEGRef) *NetworkEndpointGroupBinding {
	return &NetworkEndpointGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: Spec{BackendRef: &BackendRef{Kind: ServiceKind, Name: svc, Port: svcPort},
			NetworkEndpointGroups: negs},
	}
}

func negRef(name string, zones ...string) SpecNEGRef { return SpecNEGRef{Name: name, Zones: zones} }

func (e *testEnv) createBinding(b *NetworkEndpointGroupBinding) {
	e.t.Helper()
	if b.CreationTimestamp.IsZero() {
		b.CreationTimestamp = metav1.Now()
	}
	if _, err := e.client.Create(e.ctx, b); err != nil {
		e.t.Fatalf("create binding: %v", err)
	}
}

func (e *testEnv) getBinding(name string) *NetworkEndpointGroupBinding {
	e.t.Helper()
	b, err := e.client.Get(e.ctx, ns, name)
	if err != nil {
		e.t.Fatalf("get binding %s: %v", name, err)
	}
	return b
}

// updateBinding applies mutate to the current binding and writes it (retrying conflicts).
func (e *testEnv) updateBinding(name string, mutate func(*NetworkEndpointGroupBinding)) {
	e.t.Helper()
	e.eventually("update binding "+name, func() error {
		b := e.getBinding(name)
		mutate(b)
		_, err := e.client.Update(e.ctx, b)
		return err
	})
}

// deleteBinding deletes a binding as the API server does with a finalizer: it sets the deletion
// timestamp, and the object goes once the finalizers are gone (the fake client would delete at
// once). It returns when the object is gone.
func (e *testEnv) deleteBinding(name string) {
	e.t.Helper()
	// The fake client does not refuse stale updates as the API server does: a status write of
	// the controller racing with this update could drop the deletion timestamp. Let the
	// controller finish its writes first.
	e.settle()
	e.updateBinding(name, func(b *NetworkEndpointGroupBinding) { b.DeletionTimestamp = ptr.To(metav1.Now()) })
	e.eventually("finalizer of "+name+" removed", func() error {
		if b := e.getBinding(name); len(b.Finalizers) > 0 {
			return fmt.Errorf("finalizers %v", b.Finalizers)
		}
		return nil
	})
	if err := e.client.Delete(e.ctx, ns, name); err != nil {
		e.t.Fatalf("delete binding: %v", err)
	}
}

// eventually polls check until it returns nil, failing the test with its last error.
func (e *testEnv) eventually(what string, check func() error) {
	e.t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < convergeTimeout {
		if err = check(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not an assertion
	}
	e.t.Fatalf("%s: not reached within %s: %v", what, convergeTimeout, err)
}

// checkNEG returns nil when the NEG exists with exactly want.
func (e *testEnv) checkNEG(zone, name string, want []neg.Endpoint) error {
	got, ok := e.srv.NEGEndpoints(zone, name)
	if !ok {
		return fmt.Errorf("NEG %s/%s does not exist", zone, name)
	}
	if len(want) == 0 && len(got) == 0 {
		return nil
	}
	neg.SortEndpoints(want)
	if d := cmp.Diff(want, got); d != "" {
		return fmt.Errorf("NEG %s/%s endpoints (-want +got):\n%s", zone, name, d)
	}
	return nil
}

// checkCondition returns nil when the binding has condition typ with status and reason.
func (e *testEnv) checkCondition(name, typ string, status metav1.ConditionStatus, reason string) error {
	b := e.getBinding(name)
	c := b.Status.FindCondition(typ)
	if c == nil || c.Status != status || c.Reason != reason {
		return fmt.Errorf("condition %s = %+v, want %s/%s", typ, c, status, reason)
	}
	if c.ObservedGeneration != b.Generation || c.LastTransitionTime.IsZero() {
		return fmt.Errorf("condition %s: observedGeneration %d (generation %d), lastTransitionTime %v", typ,
			c.ObservedGeneration, b.Generation, c.LastTransitionTime)
	}
	return nil
}

// events returns the events recorded on object name with reason (all reasons if empty).
func (e *testEnv) events(name, reason string) []corev1.Event {
	e.t.Helper()
	list, err := e.kube.CoreV1().Events(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list events: %v", err)
	}
	var out []corev1.Event
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == name && (reason == "" || ev.Reason == reason) {
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// checkEvent returns nil when an event with reason whose message contains substr is recorded on
// binding name.
func (e *testEnv) checkEvent(name, reason, substr string) error {
	evs := e.events(name, reason)
	for _, ev := range evs {
		if strings.Contains(ev.Message, substr) && ev.InvolvedObject.Kind == Kind {
			return nil
		}
	}
	return fmt.Errorf("no %s event containing %q on %s (have %v)", reason, substr, name, evs)
}

// settle is the barrier before asserting that something did not happen: marker objects written
// last (a Service, an EndpointSlice and a binding in namespace "settle", which no test uses)
// are in the controller's caches — informers deliver in order — and then the controller is
// quiet: nothing queued, running or due within quietHorizon, no call in flight, for ten
// consecutive checks.
func (e *testEnv) settle() {
	e.t.Helper()
	e.mu.Lock()
	c := e.ctrl
	e.markers++
	value := strconv.Itoa(e.markers)
	e.mu.Unlock()
	meta := metav1.ObjectMeta{Namespace: "settle", Name: "marker", Labels: map[string]string{
		"marker": value, discoveryv1.LabelServiceName: "marker"}}
	svcs := e.kube.CoreV1().Services("settle")
	if _, err := svcs.Update(e.ctx, &corev1.Service{ObjectMeta: meta}, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		if _, err := svcs.Create(e.ctx, &corev1.Service{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
			e.t.Fatalf("marker Service: %v", err)
		}
	}
	sl := e.kube.DiscoveryV1().EndpointSlices("settle")
	slice := &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4}
	if _, err := sl.Update(e.ctx, slice, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		if _, err := sl.Create(e.ctx, slice, metav1.CreateOptions{}); err != nil {
			e.t.Fatalf("marker EndpointSlice: %v", err)
		}
	}
	e.eventually("marker binding written", func() error {
		b, err := e.client.Get(e.ctx, "settle", "marker")
		if apierrors.IsNotFound(err) {
			mb := &NetworkEndpointGroupBinding{ObjectMeta: meta, Spec: Spec{BackendRef: &BackendRef{Kind: ServiceKind, Name: "marker", Port: 80}}}
			_, err = e.client.Create(e.ctx, mb)
			return err
		}
		if err != nil {
			return err
		}
		b.Labels = meta.Labels
		_, err = e.client.Update(e.ctx, b)
		return err
	})
	seen := func(idx cache.Indexer) error {
		o, ok, err := idx.GetByKey("settle/marker")
		if err != nil || !ok {
			return errors.New("marker not seen yet")
		}
		if o.(metav1.Object).GetLabels()["marker"] != value {
			return fmt.Errorf("marker %s not seen yet", value)
		}
		return nil
	}
	e.eventually("informers caught up", func() error {
		inf := c.informer()
		if inf == nil {
			return errors.New("no binding informer yet")
		}
		return errors.Join(seen(c.svcIndexer), seen(e.factory.Discovery().V1().EndpointSlices().Informer().GetIndexer()),
			seen(inf.GetIndexer()))
	})
	stable := 0
	e.eventually("quiescence", func() error {
		if c.Idle(quietHorizon) {
			stable++
		} else {
			stable = 0
		}
		if stable < 10 {
			return fmt.Errorf("controller busy (queue %d)", c.queue.Len())
		}
		return nil
	})
}

// mutations counts the emulator's mutating calls.
func (e *testEnv) mutations() map[string]int {
	c := e.srv.Counts()
	return map[string]int{"insert": c[mInsert], "delete": c[mDelete], "attach": c[mAttach], "detach": c[mDetach]}
}
