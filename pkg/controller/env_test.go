package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const (
	project    = "test-project"
	region     = "us-central1"
	zoneA      = "us-central1-a"
	zoneB      = "us-central1-b"
	zoneC      = "us-central1-c"
	clusterUID = "5b6f7c1e-0d3a-4a57-9f21-3c9e7a1b2c4d"
	namingUID  = "a1b2c3d4e5f60718"

	mInsert = "compute.networkEndpointGroups.insert"
	mDelete = "compute.networkEndpointGroups.delete"
	mGet    = "compute.networkEndpointGroups.get"
	mAttach = "compute.networkEndpointGroups.attachNetworkEndpoints"
	mDetach = "compute.networkEndpointGroups.detachNetworkEndpoints"
	mList   = "compute.networkEndpointGroups.listNetworkEndpoints"

	convergeTimeout = 60 * time.Second
)

var namer = naming.NewNamer(namingUID)

// testEnv is one emulator, one fake Kubernetes API, and (while started) one controller.
type testEnv struct {
	t     *testing.T
	srv   *fakegce.Server
	base  string
	kube  *fake.Clientset
	ctx   context.Context
	nodes map[string]testNode

	mu      sync.Mutex
	ctrl    *Controller
	cancel  context.CancelFunc
	stopped chan struct{}
	factory informers.SharedInformerFactory
	// markers counts settle's marker writes.
	markers int
}

type testNode struct {
	zone  string
	index int // pod IPs are 10.<index>.x.y
}

// newTestEnv starts the emulator and the fake Kubernetes API; the controller is started with
// start.
func newTestEnv(t *testing.T, fcfg fakegce.Config) *testEnv {
	t.Helper()
	fcfg.Project, fcfg.Region = project, region
	if len(fcfg.Zones) == 0 {
		fcfg.Zones = []string{zoneA, zoneB, zoneC}
	}
	srv, base := fakegce.NewTestServer(t, fcfg)
	_, ctx := ktesting.NewTestContext(t)
	e := &testEnv{t: t, srv: srv, base: base, kube: fake.NewClientset(), ctx: ctx, nodes: map[string]testNode{}}
	t.Cleanup(e.stop)
	return e
}

// testConfig is the controller configuration of the tests: fast backoff, coalescing and GC.
func (e *testEnv) testConfig(cloud gce.Cloud, factory informers.SharedInformerFactory) Config {
	return Config{
		KubeClient:      e.kube,
		Informers:       factory,
		Cloud:           cloud,
		ClusterUID:      clusterUID,
		NamingUID:       namingUID,
		Network:         "default",
		ConcurrentSyncs: 4,
		GCPeriod:        300 * time.Millisecond,
		GCInitialDelay:  100 * time.Millisecond,
		ResyncPeriod:    time.Hour,
		NEGVerifyPeriod: time.Hour,
		SyncDelay:       10 * time.Millisecond,
		CallInterval:    50 * time.Millisecond,
		Backoff:         backoff.Policy{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond, Later: 100 * time.Millisecond},
	}
}

// newCloud builds the adapter against the emulator, with fast polls and retries.
func (e *testEnv) newCloud() *gce.Compute { return e.newCloudWith(nil) }

// newCloudWith is newCloud with tweak applied to the adapter's configuration.
func (e *testEnv) newCloudWith(tweak func(*gce.Config)) *gce.Compute {
	cfg := gce.Config{
		Project: project, Region: region, Endpoint: e.base, WithoutAuth: true,
		OperationPollInterval: 5 * time.Millisecond, RetryBaseDelay: 5 * time.Millisecond,
		MaxInFlight: 16,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := gce.New(context.Background(), cfg)
	if err != nil {
		e.t.Fatalf("gce.New: %v", err)
	}
	return c
}

// start runs a new controller (with fresh informers) against the emulator; tweak adjusts its
// configuration.
func (e *testEnv) start(tweak func(*Config), resync time.Duration) *Controller {
	e.t.Helper()
	factory := informers.NewSharedInformerFactory(e.kube, resync)
	cfg := e.testConfig(e.newCloud(), factory)
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

// addNode creates a ready node in zone (and its VM in the emulator, with alias range
// 10.<index>.0.0/16).
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
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		}},
	}
	if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node: %v", err)
	}
}

// podIP returns the k-th pod IP on node.
func (e *testEnv) podIP(node string, k int) string {
	idx := e.nodes[node].index
	return fmt.Sprintf("10.%d.%d.%d", idx, k/250, k%250+1)
}

// service returns a Service with the NEG annotation value negAnn (none if empty) and the
// given port numbers; port p is named "p<p>" and targets 8000+p%1000... (targetPort is the
// EndpointSlice port of the same name).
func service(ns, name, negAnn string, ports ...int32) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.Now(), Annotations: map[string]string{}}}
	if negAnn != "" {
		svc.Annotations[annotation.NEGKey] = negAnn
	}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: portName(p), Port: p,
			Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(containerPort(p))})
	}
	return svc
}

func portName(p int32) string            { return fmt.Sprintf("p%d", p) }
func containerPort(p int32) int32        { return 8000 + p%1000 }
func negName(svc string, p int32) string { return namer.NEGName("default", svc, p) }

func (e *testEnv) createService(svc *corev1.Service) {
	e.t.Helper()
	if _, err := e.kube.CoreV1().Services(svc.Namespace).Create(e.ctx, svc, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create service: %v", err)
	}
}

func (e *testEnv) getService(ns, name string) *corev1.Service {
	e.t.Helper()
	svc, err := e.kube.CoreV1().Services(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get service: %v", err)
	}
	return svc
}

// setAnnotation sets (or with "" removes) the NEG annotation of a Service.
func (e *testEnv) setAnnotation(ns, name, value string) {
	e.t.Helper()
	svc := e.getService(ns, name).DeepCopy()
	if value == "" {
		delete(svc.Annotations, annotation.NEGKey)
	} else {
		svc.Annotations[annotation.NEGKey] = value
	}
	if _, err := e.kube.CoreV1().Services(ns).Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update service: %v", err)
	}
}

func (e *testEnv) deleteService(ns, name string) {
	e.t.Helper()
	if err := e.kube.CoreV1().Services(ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete service: %v", err)
	}
}

// pods returns n pod endpoints spread round-robin over nodes.
func (e *testEnv) pods(n int, nodes ...string) []testPod {
	out := make([]testPod, n)
	for i := range out {
		node := nodes[i%len(nodes)]
		out[i] = testPod{name: fmt.Sprintf("pod-%s-%d", node, i/len(nodes)), node: node, ip: e.podIP(node, i/len(nodes))}
	}
	return out
}

type testPod struct {
	name, node, ip string
	terminating    bool
	notReady       bool
}

// setEndpoints replaces the endpoints of a Service with pods exposing the given Service ports,
// in one EndpointSlice updated in place (so the controller never sees a partial state).
func (e *testEnv) setEndpoints(ns, svc string, ports []int32, pods []testPod) {
	e.t.Helper()
	e.writeSlice(ns, svc+"-0", svc, discoveryv1.AddressTypeIPv4, ports, pods, func(p testPod) string { return p.ip })
}

// writeSlice creates or updates the EndpointSlice name of Service svc: addrType, the ports,
// and one endpoint per pod with the address addr gives.
func (e *testEnv) writeSlice(ns, name, svc string, addrType discoveryv1.AddressType, ports []int32, pods []testPod, addr func(testPod) string) {
	e.t.Helper()
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: addrType,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(portName(p)),
			Port: ptr.To(containerPort(p)), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{addr(p)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!p.notReady), Terminating: ptr.To(p.terminating)},
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

// endpointsOf returns the NEG endpoints the pods should produce for Service port p, per zone.
func (e *testEnv) endpointsOf(pods []testPod, p int32) map[string][]neg.Endpoint {
	out := map[string][]neg.Endpoint{}
	for _, pod := range pods {
		if pod.terminating {
			continue
		}
		z := e.nodes[pod.node].zone
		out[z] = append(out[z], neg.Endpoint{Instance: pod.node, IP: pod.ip, Port: int64(containerPort(p))})
	}
	for z := range out {
		neg.SortEndpoints(out[z])
	}
	return out
}

// eventually polls check until it returns nil, failing the test with its last error after
// timeout.
func (e *testEnv) eventually(what string, check func() error) {
	e.t.Helper()
	e.within(convergeTimeout, what, check)
}

// within polls check until it returns nil, failing the test after bound; it returns how long
// it took.
func (e *testEnv) within(bound time.Duration, what string, check func() error) time.Duration {
	e.t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < bound {
		if err = check(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not an assertion
	}
	e.t.Fatalf("%s: not reached within %s: %v", what, bound, err)
	return 0
}

// checkNEG returns nil when the NEG exists with exactly want (sorted).
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
		return fmt.Errorf("NEG %s/%s endpoints (-want +got):\n%s", zone, name, truncate(d, 2000))
	}
	return nil
}

// checkNoNEG returns nil when the NEG does not exist.
func (e *testEnv) checkNoNEG(zone, name string) error {
	if _, ok := e.srv.NEGEndpoints(zone, name); ok {
		return fmt.Errorf("NEG %s/%s still exists", zone, name)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// status returns the neg-status annotation of a Service.
func (e *testEnv) status(ns, name string) (annotation.Status, bool) {
	v, ok := e.getService(ns, name).Annotations[annotation.NEGStatusKey]
	if !ok {
		return annotation.Status{}, false
	}
	st, err := annotation.ParseStatus(v)
	if err != nil {
		e.t.Fatalf("bad status %q: %v", v, err)
	}
	return st, true
}

// events returns the events recorded on a Service with reason (all reasons if empty).
func (e *testEnv) events(ns, name, reason string) []corev1.Event {
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

// checkEvent returns nil when an event with reason whose message contains substr exists.
func (e *testEnv) checkEvent(ns, name, reason, substr string) error {
	evs := e.events(ns, name, reason)
	for _, ev := range evs {
		if strings.Contains(ev.Message, substr) {
			return nil
		}
	}
	return fmt.Errorf("no %s event containing %q on %s/%s (have %d %s events: %v)", reason, substr, ns, name, len(evs), reason, evs)
}

// requestsMentioning returns the emulator requests whose path contains s.
func (e *testEnv) requestsMentioning(s string) []fakegce.RequestRecord {
	var out []fakegce.RequestRecord
	for _, r := range e.srv.Requests() {
		if strings.Contains(r.Path, s) {
			out = append(out, r)
		}
	}
	return out
}

// mutations sums the emulator's mutating calls.
func mutations(counts map[string]int) int {
	return counts[mInsert] + counts[mDelete] + counts[mAttach] + counts[mDetach]
}

func keyOf(ns, name string) cache.ObjectName { return cache.ObjectName{Namespace: ns, Name: name} }

// settle is the barrier before asserting that something did not happen: it waits until the
// running controller's Service and EndpointSlice informers have delivered every change made so
// far — a marker Service and EndpointSlice written last (in a namespace no test uses, without the
// NEG annotation, so the controller ignores them) are in its caches, and informers deliver in
// order — and then until the controller is quiet (waitQuiet).
func (e *testEnv) settle() {
	e.t.Helper()
	e.settleWithin(quietHorizon)
}

// settleWithin is settle with waitQuietWithin(horizon).
func (e *testEnv) settleWithin(horizon time.Duration) {
	e.t.Helper()
	e.mu.Lock()
	c := e.ctrl
	e.markers++
	value := strconv.Itoa(e.markers)
	e.mu.Unlock()
	meta := metav1.ObjectMeta{Namespace: "settle", Name: "marker", Labels: map[string]string{
		"marker": value, discoveryv1.LabelServiceName: "marker"}}
	svcs := e.kube.CoreV1().Services("settle")
	svc := &corev1.Service{ObjectMeta: meta}
	if _, err := svcs.Update(e.ctx, svc, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		_, err = svcs.Create(e.ctx, svc, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatalf("marker Service: %v", err)
		}
	}
	slices := e.kube.DiscoveryV1().EndpointSlices("settle")
	slice := &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4}
	if _, err := slices.Update(e.ctx, slice, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		_, err = slices.Create(e.ctx, slice, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatalf("marker EndpointSlice: %v", err)
		}
	}
	seen := func(idx cache.Indexer) error {
		o, ok, err := idx.GetByKey("settle/marker")
		if err != nil || !ok {
			return fmt.Errorf("marker not seen yet")
		}
		if o.(metav1.Object).GetLabels()["marker"] != value {
			return fmt.Errorf("marker %s not seen yet", value)
		}
		return nil
	}
	e.eventually("informers caught up", func() error { return errors.Join(seen(c.svcIndexer), seen(c.slices)) })
	e.waitQuietWithin(horizon)
}

// quietHorizon is how far ahead waitQuiet requires nothing to be scheduled: longer than the
// test backoffs' cap, so a retry in backoff is never mistaken for quiescence.
const quietHorizon = time.Second

// waitQuiet waits until the running controller is idle (nothing queued or due within
// quietHorizon, no sync running, no call in flight) for several consecutive checks: the barrier
// before asserting that something did not happen.
func (e *testEnv) waitQuiet() {
	e.t.Helper()
	e.waitQuietWithin(quietHorizon)
}

// waitQuietWithin is waitQuiet with another horizon, for tests where something is retried
// periodically for good (a NEG in use is deleted again every few hundred ms): a horizon shorter
// than that period finds the quiet moments between retries.
func (e *testEnv) waitQuietWithin(horizon time.Duration) {
	e.t.Helper()
	e.mu.Lock()
	c := e.ctrl
	e.mu.Unlock()
	stable := 0
	e.eventually("quiescence", func() error {
		if c.idle(horizon) {
			stable++
		} else {
			stable = 0
		}
		if stable < 10 {
			return fmt.Errorf("controller busy (%s; inserts %d, calls idle %v)", c.queue.State(), c.busy.Load(), c.negs.Idle())
		}
		return nil
	})
}

// negDescription returns the description of a NEG in the emulator ("" if absent).
func (e *testEnv) negDescription(zone, name string) string {
	e.t.Helper()
	n, err := e.newCloud().GetNEG(e.ctx, zone, name)
	if err != nil {
		return ""
	}
	return n.Description
}

// setFQDNEndpoints gives a Service one FQDN EndpointSlice with host for Service port p.
func (e *testEnv) setFQDNEndpoints(ns, svc string, p int32, host string) {
	e.t.Helper()
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-fqdn",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(portName(p)), Port: ptr.To(containerPort(p)),
			Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	if _, err := e.kube.DiscoveryV1().EndpointSlices(ns).Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create slice: %v", err)
	}
}
