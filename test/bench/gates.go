package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/readiness"
)

// gateHealthyDelay is how long after an endpoint is attached to a health-checked backend
// service fakegce (fixed health mode) starts reporting it HEALTHY. Real GCE takes about
// checkIntervalSec × healthyThreshold (10 s with the defaults); the bench uses 1 s so the gate
// latency shows the controller's own share rather than GCE's probing.
const gateHealthyDelay = time.Second

// readinessPoll is the reflector's health listing interval (readiness.DefaultPollInterval).
const readinessPoll = readiness.DefaultPollInterval

// gateWorkload is the readiness-gate part of the churn: Services whose pods carry the gate
// cloud.google.com/load-balancer-neg-ready, each Service's NEGs the backends of its own
// health-checked backend service, and pods replaced one at a time (create a new gated pod on
// the same node, then delete the old one) while the label churn runs.
type gateWorkload struct {
	svcs []svcRef

	mu    sync.Mutex
	slots []gateSlot // one per pod the Services keep
	next  int        // round robin over slots
	gen   int        // pod name suffix
}

// gateSlot is one pod position of a gated Service.
type gateSlot struct {
	svc      svcRef
	node     string
	pod      string
	inFlight bool
}

func gatedPodObject(p podSpec) *corev1.Pod {
	pod := podObject(p)
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: readiness.GateType}}
	return pod
}

// gateSetup creates the gated Services' backend services (after their NEGs exist) and pods, and
// waits until every pod's gate is True. Nothing here is measured.
func (b *Bench) gateSetup(e *env, g *gateWorkload, perSvc int) (string, error) {
	ctx := b.ctx
	t0 := time.Now()
	err := poll(ctx, 200*time.Millisecond, 5*time.Minute, func() (bool, string) {
		missing := 0
		for _, s := range g.svcs {
			for _, z := range e.zones {
				if _, ok := e.st.GCE.NEGEndpoints(z, e.negName(s)); !ok {
					missing++
				}
			}
		}
		return missing == 0, fmt.Sprintf("%d gated NEGs not created yet", missing)
	})
	if err != nil {
		return "", err
	}
	project, c := e.st.Project, e.st.Compute
	hc := &compute.HealthCheck{Name: "bench-gates-hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1, HealthyThreshold: 1,
		UnhealthyThreshold: 1, HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/"}}
	if err := whileRateLimited(ctx, func() error { _, err := c.HealthChecks.Insert(project, hc).Context(ctx).Do(); return err }); err != nil {
		return "", fmt.Errorf("inserting the gated Services' health check: %w", err)
	}
	hcURL := "https://www.googleapis.com/compute/v1/projects/" + project + "/global/healthChecks/" + hc.Name
	if err := poll(ctx, 100*time.Millisecond, time.Minute, func() (bool, string) {
		_, err := c.HealthChecks.Get(project, hc.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return "", err
	}
	for _, s := range g.svcs {
		var backends []*compute.Backend
		for _, z := range e.zones {
			backends = append(backends, &compute.Backend{BalancingMode: "RATE", MaxRatePerEndpoint: 100, CapacityScaler: 1,
				Group: "https://www.googleapis.com/compute/v1/projects/" + project + "/zones/" + z + "/networkEndpointGroups/" + e.negName(s)})
		}
		bs := &compute.BackendService{Name: "bench-gates-" + s.name, Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED",
			Backends: backends, HealthChecks: []string{hcURL}}
		if err := whileRateLimited(ctx, func() error { _, err := c.BackendServices.Insert(project, bs).Context(ctx).Do(); return err }); err != nil {
			return "", fmt.Errorf("inserting backend service %s: %w", bs.Name, err)
		}
	}
	pods := e.podsFor(g.svcs, perSvc, false)
	for _, p := range pods {
		g.slots = append(g.slots, gateSlot{svc: svcRef{ns: p.ns, name: p.app}, node: p.node, pod: p.name})
	}
	if err := parallel(ctx, len(pods), 16, func(ctx context.Context, i int) error {
		_, err := e.kube.CoreV1().Pods(pods[i].ns).Create(ctx, gatedPodObject(pods[i]), metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", fmt.Errorf("creating gated pods: %w", err)
	}
	if err := poll(ctx, 200*time.Millisecond, 5*time.Minute, func() (bool, string) {
		waiting := 0
		for _, s := range g.svcs {
			for _, p := range e.runningPods(s) {
				if c := gateCondition(p); c == nil || c.Status != corev1.ConditionTrue {
					waiting++
				}
			}
			if n := len(e.runningPods(s)); n != perSvc {
				waiting += perSvc - n
			}
		}
		return waiting == 0, fmt.Sprintf("%d gated pods not running with the gate True", waiting)
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("Readiness gates: %d Services × %d pods carrying the gate `%s`, each Service's 3 NEGs the backends of "+
		"its own backend service with an HTTP health check (fakegce fixed health mode: HEALTHY %s after attach); all gates True "+
		"%.0f s after the gated set-up began.", len(g.svcs), perSvc, readiness.GateType, gateHealthyDelay, time.Since(t0).Seconds()), nil
}

func gateCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == readiness.GateType {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// take picks the next slot with no replacement in flight and names its new pod.
func (g *gateWorkload) take() (int, string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for range g.slots {
		i := g.next
		g.next = (g.next + 1) % len(g.slots)
		if !g.slots[i].inFlight {
			g.slots[i].inFlight = true
			g.gen++
			return i, fmt.Sprintf("%s-r%d", g.slots[i].svc.name, g.gen), true
		}
	}
	return 0, "", false
}

func (g *gateWorkload) release(i int, newPod string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if newPod != "" {
		g.slots[i].pod = newPod
	}
	g.slots[i].inFlight = false
}

// replaceGated replaces rate gated pods per second for d: create the new pod (tracked by t),
// then delete the one it replaces. It returns how many replacements were made.
func (e *env) replaceGated(ctx context.Context, g *gateWorkload, t *gateTracker, rate float64, d time.Duration) (made, failed int) {
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	atRate(ctx, rate, d, func() {
		slot, name, found := g.take()
		if !found {
			bad.Add(1)
			return
		}
		s := g.slots[slot]
		wg.Go(func() {
			p := podSpec{ns: s.svc.ns, name: name, app: s.svc.name, node: s.node, serve: true}
			t.expect(p.ns, p.name, s.svc)
			if _, err := e.kube.CoreV1().Pods(p.ns).Create(ctx, gatedPodObject(p), metav1.CreateOptions{}); err != nil {
				t.forget(p.ns, p.name)
				bad.Add(1)
				g.release(slot, "")
				return
			}
			t.created(p.ns, p.name, time.Now())
			if err := e.kube.CoreV1().Pods(p.ns).Delete(ctx, s.pod, metav1.DeleteOptions{}); err != nil {
				bad.Add(1)
			}
			ok.Add(1)
			g.release(slot, name)
		})
	})
	wg.Wait()
	return int(ok.Load()), int(bad.Load())
}

// gatePod is one replacement pod on its way to a True gate.
type gatePod struct {
	svc                   svcRef
	ep                    neg.Endpoint
	zone                  string
	tCreated, tGCE, tGate time.Time
	reason                string
	// deleted: the pod was replaced in its turn before its gate opened (not a sample).
	deleted bool
}

// gateTracker timestamps each new gated pod: create returned, its endpoint attached in fakegce
// (polled every interval), and its gate condition True in the bench's pod informer.
type gateTracker struct {
	e        *env
	interval time.Duration
	reg      cache.ResourceEventHandlerRegistration

	mu   sync.Mutex
	pods map[string]*gatePod // ns/name
}

func newGateTracker(e *env, interval time.Duration) (*gateTracker, error) {
	t := &gateTracker{e: e, interval: interval, pods: map[string]*gatePod{}}
	reg, err := e.factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.onPod(obj) },
		UpdateFunc: func(_, obj any) { t.onPod(obj) },
		DeleteFunc: t.onDelete,
	})
	t.reg = reg
	return t, err
}

func (t *gateTracker) close() {
	_ = t.e.factory.Core().V1().Pods().Informer().RemoveEventHandler(t.reg)
}

func (t *gateTracker) expect(ns, name string, svc svcRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pods[ns+"/"+name] = &gatePod{svc: svc}
}

func (t *gateTracker) forget(ns, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pods, ns+"/"+name)
}

func (t *gateTracker) created(ns, name string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pods[ns+"/"+name]; p != nil {
		p.tCreated = at
	}
}

func (t *gateTracker) onPod(obj any) {
	now := time.Now()
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pods[pod.Namespace+"/"+pod.Name]
	if p == nil {
		return
	}
	if p.ep.IP == "" && pod.Status.PodIP != "" && pod.Spec.NodeName != "" {
		p.ep = neg.Endpoint{Instance: pod.Spec.NodeName, IP: pod.Status.PodIP, Port: targetPort}
		p.zone = t.e.nodeZone[pod.Spec.NodeName]
	}
	if c := gateCondition(pod); c != nil && c.Status == corev1.ConditionTrue && p.tGate.IsZero() {
		p.tGate, p.reason = now, c.Reason
	}
}

func (t *gateTracker) onDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pods[pod.Namespace+"/"+pod.Name]; p != nil && p.tGate.IsZero() {
		p.deleted = true
	}
}

// run polls fakegce for the endpoints of tracked pods not yet seen attached, until ctx ends.
func (t *gateTracker) run(ctx context.Context) { every(ctx, t.interval, t.pollOnce) }

func (t *gateTracker) pollOnce() {
	t.mu.Lock()
	byNEG := map[string][]*gatePod{}
	for _, p := range t.pods {
		if p.ep.IP != "" && p.tGCE.IsZero() && !p.deleted {
			byNEG[p.zone+"/"+p.svc.key()] = append(byNEG[p.zone+"/"+p.svc.key()], p)
		}
	}
	t.mu.Unlock()
	for _, list := range byNEG {
		eps, ok := t.e.st.GCE.NEGEndpoints(list[0].zone, t.e.negName(list[0].svc))
		now := time.Now()
		if !ok {
			continue
		}
		have := neg.NewEndpointSet(eps...)
		t.mu.Lock()
		for _, p := range list {
			if have.Has(p.ep) {
				p.tGCE = now
			}
		}
		t.mu.Unlock()
	}
}

// pending counts tracked pods whose gate is not True yet.
func (t *gateTracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.pods {
		if p.tGate.IsZero() && !p.deleted {
			n++
		}
	}
	return n
}

// GateLatencies summarises the gate flips of replacement pods.
type GateLatencies struct {
	// FromGCE: endpoint attached in GCE → gate condition True (includes gateHealthyDelay);
	// FromCreate: pod created → gate True (end to end: podsim, EndpointSlice, attach, health).
	FromGCE    Percentiles    `json:"gceToGateTrue"`
	FromCreate Percentiles    `json:"podCreatedToGateTrue"`
	Reasons    map[string]int `json:"reasons"`
	// NotInGCE pods never showed their endpoint attached while observed (excluded from FromGCE).
	NotInGCE int `json:"notSeenInGce,omitempty"`
	// Replaced pods were deleted in their turn before their gate opened (no sample).
	Replaced int `json:"replacedBeforeGateTrue,omitempty"`
}

// summary computes the distributions; gates still False at end are censored samples.
func (t *gateTracker) summary(end time.Time) GateLatencies {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := GateLatencies{Reasons: map[string]int{}}
	var fromGCE, fromCreate []sample
	keys := make([]string, 0, len(t.pods))
	for k := range t.pods {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := t.pods[k]
		if p.tCreated.IsZero() {
			continue
		}
		if p.deleted {
			g.Replaced++
			continue
		}
		gate, censored := p.tGate, p.tGate.IsZero()
		if censored {
			gate = end
		} else {
			g.Reasons[p.reason]++
		}
		fromCreate = append(fromCreate, sample{gate.Sub(p.tCreated), censored})
		if p.tGCE.IsZero() {
			g.NotInGCE++
			continue
		}
		fromGCE = append(fromGCE, sample{max(0, gate.Sub(p.tGCE)), censored})
	}
	g.FromGCE, g.FromCreate = percentiles(fromGCE), percentiles(fromCreate)
	return g
}

// whileRateLimited retries fn while fakegce's rate quota answers 403 rateLimitExceeded (the
// bench's own set-up calls share the project's quota with the controller), for at most two
// windows.
func whileRateLimited(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(2*time.Minute + 5*time.Second)
	for {
		err := fn()
		var ge *googleapi.Error
		if !errors.As(err, &ge) || ge.Code != http.StatusForbidden || len(ge.Errors) == 0 ||
			ge.Errors[0].Reason != "rateLimitExceeded" || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
