package readiness

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// fakeHealth is a HealthLister whose answers the test sets.
type fakeHealth struct {
	mu    sync.Mutex
	eps   map[negRef][]gce.EndpointHealth
	err   error
	calls map[negRef]int
}

func (f *fakeHealth) ListNetworkEndpoints(_ context.Context, zone, name string, withHealth bool) ([]gce.EndpointHealth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !withHealth {
		return nil, errors.New("the reflector must ask for health")
	}
	ref := negRef{zone, name}
	f.calls[ref]++
	if f.err != nil {
		return nil, f.err
	}
	return f.eps[ref], nil
}

func (f *fakeHealth) set(ref negRef, eps ...gce.EndpointHealth) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eps[ref] = eps
}

func (f *fakeHealth) count(ref negRef) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[ref]
}

const bsURL = "https://www.googleapis.com/compute/v1/projects/p/global/backendServices/web-bs"

var (
	t0    = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	negA  = negRef{Zone: "us-central1-a", Name: "k8s1-neg-web"}
	podEP = neg.Endpoint{Instance: "node-1", IP: "10.64.1.5", Port: 8080}
)

func testService(negAnno bool) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if negAnno {
		s.Annotations[annotation.NEGKey] = `{"exposed_ports":{"80":{}}}`
		s.Annotations[annotation.NEGStatusKey] = `{"network_endpoint_groups":{"80":"k8s1-neg-web"},"zones":["us-central1-a"]}`
	}
	return s
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{"app": "web"},
			CreationTimestamp: metav1.NewTime(t0)},
		Spec: corev1.PodSpec{NodeName: "node-1",
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: GateType}},
			Containers: []corev1.Container{{Name: "app",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{PodIP: "10.64.1.5", Conditions: []corev1.PodCondition{
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}},
	}
}

func testNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec:   corev1.NodeSpec{ProviderID: "gce://p/us-central1-a/node-1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

type harness struct {
	t       *testing.T
	reg     *prometheus.Registry
	kube    *fake.Clientset
	cloud   *fakeHealth
	clock   *clocktesting.FakeClock
	factory informers.SharedInformerFactory
	r       *Reflector
}

// until polls cond (real time, so the reflector's goroutines run) until it holds or 2 s pass,
// and reports whether it held.
func until(cond func() bool) bool {
	for range 400 {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond) // poll interval of a condition, not an assertion
	}
	return cond()
}

// stopped reports whether no NEG poller runs and the queue is idle: nothing can list a NEG
// until a pod waits again.
func (h *harness) stopped() bool {
	h.r.mu.Lock()
	n := len(h.r.polling)
	h.r.mu.Unlock()
	return n == 0 && h.r.queue.Idle(0)
}

// checkPollingStopped checks that negA is listed no more (when: after what): the pollers stop
// (the barrier), and five seconds of fake time later nothing listed it.
func (h *harness) checkPollingStopped(when string) {
	h.t.Helper()
	h.waitPollersStopped()
	n := h.cloud.count(negA)
	h.clock.Step(5 * time.Second)
	h.waitPollersStopped()
	if got := h.cloud.count(negA); got != n {
		h.t.Errorf("the NEG was listed %d more times %s", got-n, when)
	}
}

// waitPollersStopped is the quiescence barrier before asserting that no NEG is listed any more:
// it steps the fake clock one poll interval at a time (waking the pollers, which stop when no
// pod waits on their NEG) until stopped holds. A poller that keeps running with no pod waiting
// fails the test here.
func (h *harness) waitPollersStopped() {
	h.t.Helper()
	for range 20 {
		if h.stopped() {
			return
		}
		h.clock.Step(h.r.cfg.PollInterval)
		if until(h.stopped) {
			return
		}
	}
	h.t.Fatal("a NEG poller kept running although no pod waits on its NEG")
}

// metadataUnlessWork is the part of pkg/app's informer transform the reflector depends on: pods
// it has no work for are cached as PodMetadata.
func metadataUnlessWork(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok && !NeedsWork(p) {
		return PodMetadata(p), nil
	}
	return obj, nil
}

// start runs a reflector over objs until the test ends.
func start(t *testing.T, mode WithoutHealthCheck, objs ...runtime.Object) *harness {
	t.Helper()
	kube := fake.NewClientset(objs...)
	h := &harness{t: t, kube: kube, cloud: &fakeHealth{eps: map[negRef][]gce.EndpointHealth{}, calls: map[negRef]int{}},
		clock: clocktesting.NewFakeClock(t0.Add(time.Second))}
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(metadataUnlessWork))
	h.factory = factory
	h.reg = prometheus.NewRegistry()
	r, err := New(Config{KubeClient: kube, Informers: factory, Cloud: h.cloud, WithoutHealthCheck: mode,
		Metrics: NewMetrics(h.reg), Registerer: h.reg,
		Clock: h.clock, ErrorBackoff: 5 * time.Second, MaxErrorBackoff: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return h
}

// cond returns the pod's gate condition as the API holds it.
func (h *harness) cond() *corev1.PodCondition {
	p, err := h.kube.CoreV1().Pods("default").Get(context.Background(), "web-1", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return condition(p)
}

// waitReason waits (stepping the fake clock by step each round) until the condition has reason.
func (h *harness) waitReason(reason string, step time.Duration) *corev1.PodCondition {
	h.t.Helper()
	for range 400 {
		if c := h.cond(); c != nil && c.Reason == reason {
			return c
		}
		time.Sleep(5 * time.Millisecond)
		if step > 0 && h.clock.HasWaiters() {
			h.clock.Step(step)
		}
	}
	h.t.Fatalf("condition never got reason %s; last %+v", reason, h.cond())
	return nil
}

func (h *harness) events() []string {
	evs, _ := h.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Reason)
	}
	return out
}

func TestReflectorHealthy(t *testing.T) {
	h := start(t, WithoutHealthCheckWait, testService(true), testPod(), testNode())
	c := h.waitReason(ReasonNotReady, 0)
	if c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, "[k8s1-neg-web]") {
		t.Errorf("waiting condition = %+v", c)
	}
	// Attached, unhealthy: still waiting, with the load balancer's view in the message.
	h.cloud.set(negA, gce.EndpointHealth{Endpoint: podEP, Healths: []gce.Health{{BackendService: bsURL, State: "UNHEALTHY"}}})
	for range 400 {
		if c := h.cond(); strings.Contains(c.Message, "UNHEALTHY") {
			break
		}
		time.Sleep(5 * time.Millisecond)
		if h.clock.HasWaiters() {
			h.clock.Step(time.Second)
		}
	}
	if c := h.cond(); c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, `UNHEALTHY in BackendService "web-bs"`) {
		t.Errorf("unhealthy condition = %+v", c)
	}
	h.cloud.set(negA, gce.EndpointHealth{Endpoint: podEP, Healths: []gce.Health{{BackendService: bsURL, State: "HEALTHY"}}})
	c = h.waitReason(ReasonReady, time.Second)
	if c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, `attached to BackendService "web-bs"`) {
		t.Errorf("ready condition = %+v", c)
	}
	// Other conditions are preserved by the patch.
	p, _ := h.kube.CoreV1().Pods("default").Get(context.Background(), "web-1", metav1.GetOptions{})
	if len(p.Status.Conditions) != 2 {
		t.Errorf("conditions = %+v, want ContainersReady kept", p.Status.Conditions)
	}
	// Polling stops once nothing waits.
	h.checkPollingStopped("after every pod was ready")
	waitEvents(t, h, ReasonNotReady, ReasonReady)
	if n := testutil.CollectAndCount(h.reg, "neg_controller_readiness_gate_seconds"); n != 1 {
		t.Errorf("gate latency series = %d, want 1 (reason %s)", n, ReasonReady)
	}
	if v := testutil.ToFloat64(gauge(t, h.reg, "neg_controller_readiness_pods_waiting")); v != 0 {
		t.Errorf("pods waiting = %v after the pod became ready", v)
	}
}

// gauge finds a registered gauge by name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "copy"},
				func() float64 { return mf.GetMetric()[0].GetGauge().GetValue() })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func waitEvents(t *testing.T, h *harness, want ...string) {
	t.Helper()
	for range 200 {
		got := h.events()
		ok := true
		for _, w := range want {
			if !strings.Contains(strings.Join(got, ","), w) {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("events %v, want %v", h.events(), want)
}

// TestReflectorReleasesTerminatingPod: a waiting pod that starts terminating is cached as
// metadata only, and still stops waiting (its poller stops).
func TestReflectorReleasesTerminatingPod(t *testing.T) {
	h := start(t, WithoutHealthCheckWait, testService(true), testPod(), testNode())
	h.waitReason(ReasonNotReady, 0)
	waiting := func() float64 { return testutil.ToFloat64(gauge(t, h.reg, "neg_controller_readiness_pods_waiting")) }
	if v := waiting(); v != 1 {
		t.Fatalf("pods waiting = %v, want 1", v)
	}
	// The poller listed once and waits for the (fake) clock: from here only the pod's own event
	// can queue it.
	if !until(func() bool { return h.cloud.count(negA) > 0 && h.r.queue.Idle(0) }) {
		t.Fatal("the NEG was never polled, or the pods it queued were never synced")
	}
	p, err := h.kube.CoreV1().Pods("default").Get(context.Background(), "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(h.clock.Now())
	p.DeletionTimestamp = &now
	if _, err := h.kube.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !until(func() bool { return waiting() == 0 }) {
		t.Fatalf("pods waiting = %v after the pod started terminating, want 0", waiting())
	}
	obj, ok, _ := h.factory.Core().V1().Pods().Informer().GetIndexer().GetByKey("default/web-1")
	if _, meta := obj.(*metav1.PartialObjectMetadata); !ok || !meta {
		t.Errorf("cached terminating pod = %T, want metadata only", obj)
	}
	h.checkPollingStopped("after its only pod stopped waiting")
}

func TestReflectorTimeout(t *testing.T) {
	h := start(t, WithoutHealthCheckWait, testService(true), testPod(), testNode())
	h.waitReason(ReasonNotReady, 0)
	// Nothing changes in GCE or the pod: the timer alone opens the gate 10 minutes after creation.
	c := h.waitReason(ReasonTimeout, time.Minute)
	if c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "Timeout waiting") {
		t.Errorf("timeout condition = %+v", c)
	}
	if now := h.clock.Now(); now.Before(t0.Add(DefaultTimeout)) {
		t.Errorf("timed out at %s, before creation + timeout", now)
	}
	waitEvents(t, h, ReasonTimeout)
}

func TestReflectorWithoutHealthCheck(t *testing.T) {
	unchecked := gce.EndpointHealth{Endpoint: podEP}
	t.Run("ready", func(t *testing.T) {
		h := start(t, WithoutHealthCheckReady, testService(true), testPod(), testNode())
		h.cloud.set(negA, unchecked)
		h.waitReason(ReasonWithoutHealthCheck, time.Second)
	})
	t.Run("wait", func(t *testing.T) {
		h := start(t, WithoutHealthCheckWait, testService(true), testPod(), testNode())
		h.cloud.set(negA, unchecked)
		h.waitReason(ReasonNotReady, 0)
		for range 20 {
			h.clock.Step(time.Second)
			time.Sleep(5 * time.Millisecond)
		}
		if c := h.cond(); c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, "no backend service with health checking") {
			t.Errorf("condition = %+v, want still waiting for a health check", c)
		}
	})
}

func TestReflectorFailOpenWhenServiceStopsWantingNEGs(t *testing.T) {
	h := start(t, WithoutHealthCheckWait, testService(true), testPod(), testNode())
	h.waitReason(ReasonNotReady, 0)
	if _, err := h.kube.CoreV1().Services("default").Update(context.Background(), testService(false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := h.waitReason(ReasonReady, 0)
	if !strings.Contains(c.Message, "does not belong to any NEG") {
		t.Errorf("condition = %+v", c)
	}
}

func TestReflectorBacksOffOnErrors(t *testing.T) {
	h := start(t, WithoutHealthCheckWait, testService(true), testPod(), testNode())
	h.cloud.mu.Lock()
	h.cloud.err = errors.New("rateLimitExceeded")
	h.cloud.mu.Unlock()
	h.waitReason(ReasonNotReady, 0)
	for range 400 {
		if h.cloud.count(negA) > 0 && h.clock.HasWaiters() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// 30 s of failures: listings at 0, 5, 15 (backoff 5, 10, 20, 20...) instead of 30.
	for range 30 {
		h.clock.Step(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.cloud.count(negA); n > 4 {
		t.Errorf("listed %d times in 30 s of errors, want backoff (≤ 4)", n)
	}
}

func TestPodTargets(t *testing.T) {
	svc := testService(true)
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "num", Port: 81, TargetPort: intstr.FromInt32(9000)},
		corev1.ServicePort{Name: "same", Port: 82})
	svc.Annotations[annotation.NEGStatusKey] = `{"network_endpoint_groups":{"80":"n80","81":"n81","82":"n82","83":"gone"}}`
	negs, targets := podTargets([]*corev1.Service{svc}, testPod(), testNode(), Placement{})
	if strings.Join(negs, ",") != "gone,n80,n81,n82" {
		t.Errorf("negs = %v", negs)
	}
	var got []string
	for _, tg := range targets {
		got = append(got, tg.ref.Zone+"/"+tg.ref.Name+"/"+tg.endpoint.String())
	}
	want := "us-central1-a/n80/node-1/10.64.1.5:8080,us-central1-a/n81/node-1/10.64.1.5:9000,us-central1-a/n82/node-1/10.64.1.5:82"
	if strings.Join(got, ",") != want {
		t.Errorf("targets = %v, want %s", got, want)
	}
	if _, targets := podTargets([]*corev1.Service{svc}, testPod(), nil, Placement{}); len(targets) != 0 {
		t.Errorf("targets without a node = %v", targets)
	}
}

func TestIndexWaitingPods(t *testing.T) {
	waiting := testPod()
	ready := testPod()
	ready.Status.Conditions = append(ready.Status.Conditions, corev1.PodCondition{Type: GateType, Status: corev1.ConditionTrue})
	ungated := testPod()
	ungated.Spec.ReadinessGates = nil
	deleting := testPod()
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	for name, tc := range map[string]struct {
		pod  any
		want []string
	}{
		"waiting":   {waiting, []string{"default"}},
		"ready":     {ready, nil},
		"ungated":   {ungated, nil},
		"deleting":  {deleting, nil},
		"not a pod": {testService(true), nil},
	} {
		got, err := indexWaitingPods(tc.pod)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: index %v, %v; want %v", name, got, err, tc.want)
		}
	}
}
