package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/backends"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

const (
	mBSGet         = "compute.backendServices.get"
	mBSPatch       = "compute.backendServices.patch"
	mRegionBSGet   = "compute.regionBackendServices.get"
	mRegionBSPatch = "compute.regionBackendServices.patch"
)

// withBackends enables backend service wiring with the given allow-list through
// Config.NewBackends, as pkg/app does: the reconciler shares the controller's Kubernetes client,
// project, clock, resync period, retry policy and queue metrics (read from cfg when New builds
// it, so later tweaks count).
func withBackends(allow ...string) func(*Config) {
	return func(cfg *Config) {
		cfg.NewBackends = func(h BackendHooks) (BackendServices, error) {
			retry := cfg.Backoff.WithDefaults()
			r, err := backends.NewReconciler(backends.Config{
				KubeClient: cfg.KubeClient, Cloud: cfg.Cloud.(*gce.Compute), Project: cfg.Cloud.Project(), Region: region,
				Allow: backends.MustAllowList(allow...), Events: h.Events, OnReleased: h.Requeue,
				QueueMetrics: cfg.Metrics.QueueProvider(), ResyncPeriod: cfg.ResyncPeriod, Clock: cfg.Clock,
				RetryBase: retry.Base, RetryMax: retry.Max, RetryLater: retry.Later,
			})
			if err != nil {
				return nil, err
			}
			return r, nil
		}
	}
}

// createBS creates a backend service (regional when region is set) with the given backends and
// waits until it exists.
func (e *testEnv) createBS(region, name, protocol string, bes ...*compute.Backend) {
	e.t.Helper()
	svc := e.newCloud().Service()
	bs := &compute.BackendService{Name: name, Protocol: protocol, LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: bes}
	var err error
	if region == "" {
		_, err = svc.BackendServices.Insert(project, bs).Context(e.ctx).Do()
	} else {
		_, err = svc.RegionBackendServices.Insert(project, region, bs).Context(e.ctx).Do()
	}
	if err != nil {
		e.t.Fatalf("insert backend service: %v", err)
	}
	e.eventually("backend service "+name+" exists", func() error {
		_, err := e.backendsOf(region, name)
		return err
	})
}

// backendsOf returns the backends of a backend service as the emulator holds them.
func (e *testEnv) backendsOf(region, name string) ([]*compute.Backend, error) {
	svc := e.newCloud().Service()
	var bs *compute.BackendService
	var err error
	if region == "" {
		bs, err = svc.BackendServices.Get(project, name).Context(e.ctx).Do()
	} else {
		bs, err = svc.RegionBackendServices.Get(project, region, name).Context(e.ctx).Do()
	}
	if err != nil {
		return nil, err
	}
	return bs.Backends, nil
}

// handMadeNEG creates a NEG without description in zone, as a user would for manual wiring, and
// returns a backend for it.
func (e *testEnv) handMadeNEG(zone, name string) *compute.Backend {
	e.t.Helper()
	if _, err := e.newCloud().CreateNEG(e.ctx, zone, gce.NEGSpec{Name: name, Network: "default"}); err != nil {
		e.t.Fatalf("CreateNEG: %v", err)
	}
	return &compute.Backend{Group: gce.NEGURL(project, zone, name), BalancingMode: "RATE", MaxRatePerEndpoint: 3,
		CapacityScaler: 0.5, Description: "by hand"}
}

// wantBackend is a backend as checkBackends compares it.
type wantBackend struct {
	group, mode string
	limit       float64
	capacity    float64
	description string
}

func rateBackend(zone, negName string, r float64) wantBackend {
	return wantBackend{group: gce.NEGURL(project, zone, negName), mode: "RATE", limit: r, capacity: 1}
}

func fromAPI(b *compute.Backend) wantBackend {
	limit := b.MaxRatePerEndpoint
	if b.BalancingMode == "CONNECTION" {
		limit = float64(b.MaxConnectionsPerEndpoint)
	}
	return wantBackend{group: b.Group, mode: b.BalancingMode, limit: limit, capacity: b.CapacityScaler, description: b.Description}
}

// checkBackends returns nil when the backend service holds exactly want (in any order).
func (e *testEnv) checkBackends(region, name string, want ...wantBackend) error {
	got, err := e.backendsOf(region, name)
	if err != nil {
		return err
	}
	var have []wantBackend
	for _, b := range got {
		have = append(have, fromAPI(b))
	}
	less := func(a, b wantBackend) int { return strings.Compare(a.group, b.group) }
	slices.SortFunc(have, less)
	want = slices.Clone(want)
	slices.SortFunc(want, less)
	if d := cmp.Diff(want, have, cmp.AllowUnexported(wantBackend{})); d != "" {
		return fmt.Errorf("backends of %s (-want +got):\n%s", name, d)
	}
	return nil
}

// autonegService returns Service default/<name> with standalone NEGs for ports and the autoneg
// annotation value autoneg.
func autonegService(name, autoneg string, ports ...int32) *corev1.Service {
	var exposed []string
	for _, p := range ports {
		exposed = append(exposed, fmt.Sprintf(`"%d":{}`, p))
	}
	svc := service("default", name, `{"exposed_ports":{`+strings.Join(exposed, ",")+`}}`, ports...)
	svc.Annotations[annotation.AutonegKey] = autoneg
	return svc
}

// setAutoneg sets (or with "" removes) the autoneg annotation of default/name.
func (e *testEnv) setAutoneg(name, value string) {
	e.t.Helper()
	svc := e.getService("default", name).DeepCopy()
	if value == "" {
		delete(svc.Annotations, annotation.AutonegKey)
	} else {
		svc.Annotations[annotation.AutonegKey] = value
	}
	if _, err := e.kube.CoreV1().Services("default").Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update service: %v", err)
	}
}

// autonegStatus returns the controller.autoneg.dev/neg-status value of default/name.
func (e *testEnv) autonegStatus(name string) (string, bool) {
	v, ok := e.getService("default", name).Annotations[annotation.AutonegStatusKey]
	return v, ok
}

// failedCalls returns the emulator requests of method that failed with status code.
func (e *testEnv) failedCalls(method string, code int) int {
	n := 0
	for _, r := range e.srv.Requests() {
		if r.Method == method && r.Status == code {
			n++
		}
	}
	return n
}

const webBS = `{"backend_services":{"80":[{"name":"web-bs","max_rate_per_endpoint":50}]}}`

// wiredWeb starts a controller with Service default/web (port 80, zones A and B) whose NEGs are
// backends of web-bs next to a hand-made backend, and waits until they are.
func wiredWeb(t *testing.T) (*testEnv, wantBackend) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 5 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	hand := e.handMadeNEG(zoneA, "by-hand")
	e.createBS("", "web-bs", "HTTP", hand)
	e.createService(autonegService("web", webBS, 80))
	e.setEndpoints("default", "web", []int32{80}, e.pods(4, "node-a1", "node-b1"))
	e.start(withBackends("web-.*"), 0)
	handWant := fromAPI(hand)
	e.eventually("NEGs are backends", func() error {
		return e.checkBackends("", "web-bs", handWant, rateBackend(zoneA, negName("web", 80), 50), rateBackend(zoneB, negName("web", 80), 50))
	})
	return e, handWant
}

func TestBackendsWiredInEveryZone(t *testing.T) {
	e, hand := wiredWeb(t)
	name := negName("web", 80)
	want := fmt.Sprintf(`{"backend_services":{"80":{"web-bs":{"name":"web-bs","max_rate_per_endpoint":50}}},"network_endpoint_groups":{"80":%q},"zones":[%q,%q]}`,
		name, zoneA, zoneB)
	e.eventually("autoneg status", func() error {
		if got, _ := e.autonegStatus("web"); got != want {
			return fmt.Errorf("status %s, want %s", got, want)
		}
		return nil
	})
	e.eventually("event", func() error {
		return e.checkEvent("default", "web", backends.ReasonBackendsUpdated, `Backend service "web-bs" (global): added 2 backend(s)`)
	})

	// A zone appears: its NEG becomes a backend as soon as it exists.
	e.addNode("node-c1", zoneC)
	e.eventually("zone C wired", func() error {
		return e.checkBackends("", "web-bs", hand, rateBackend(zoneA, name, 50), rateBackend(zoneB, name, 50), rateBackend(zoneC, name, 50))
	})
	e.eventually("status lists zone C", func() error {
		if got, _ := e.autonegStatus("web"); !strings.Contains(got, zoneC) {
			return fmt.Errorf("status %s", got)
		}
		return nil
	})

	// Steady state: endpoint churn makes neither reads nor writes of the backend service.
	e.settle()
	e.srv.ResetCounts()
	e.setEndpoints("default", "web", []int32{80}, e.pods(9, "node-a1", "node-b1", "node-c1"))
	e.settle()
	if c := e.srv.Counts(); c[mBSGet]+c[mBSPatch] != 0 {
		t.Errorf("steady state made backend service calls: %d gets, %d patches", c[mBSGet], c[mBSPatch])
	}
}

func TestBackendsSettingsChange(t *testing.T) {
	e, hand := wiredWeb(t)
	name := negName("web", 80)
	e.setAutoneg("web", `{"backend_services":{"80":[{"name":"web-bs","max_rate_per_endpoint":"75","capacity_scaler":50}]}}`)
	e.eventually("rate updated, capacity kept (no sync annotation)", func() error {
		return e.checkBackends("", "web-bs", hand, rateBackend(zoneA, name, 75), rateBackend(zoneB, name, 75))
	})
	svc := e.getService("default", "web").DeepCopy()
	svc.Annotations[annotation.AutonegSyncKey] = `{"capacity_scaler":true}`
	if _, err := e.kube.CoreV1().Services("default").Update(e.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	half := func(b wantBackend) wantBackend { b.capacity = 0.5; return b }
	e.eventually("capacity enforced with sync", func() error {
		return e.checkBackends("", "web-bs", hand, half(rateBackend(zoneA, name, 75)), half(rateBackend(zoneB, name, 75)))
	})
}

func TestBackendsAnnotationRemovedKeepsNEGs(t *testing.T) {
	e, hand := wiredWeb(t)
	e.setAutoneg("web", "")
	e.eventually("our backends removed, the hand-made one kept", func() error { return e.checkBackends("", "web-bs", hand) })
	e.eventually("autoneg status removed", func() error {
		if v, ok := e.autonegStatus("web"); ok {
			return fmt.Errorf("status still %s", v)
		}
		return nil
	})
	e.settle()
	for _, z := range []string{zoneA, zoneB} {
		if err := e.checkNEG(z, negName("web", 80), nil); err != nil && !strings.Contains(err.Error(), "endpoints") {
			t.Errorf("NEG gone: %v", err)
		}
	}
	if n := e.srv.Counts()[mDelete]; n != 0 {
		t.Errorf("%d NEG deletes", n)
	}
}

func TestBackendsServiceDeletedBeforeNEGs(t *testing.T) {
	e, hand := wiredWeb(t)
	e.deleteService("default", "web")
	e.eventually("NEGs deleted", func() error { return e.checkGone(negName("web", 80)) })
	if err := e.checkBackends("", "web-bs", hand); err != nil {
		t.Error(err)
	}
	if n := e.failedCalls(mDelete, 400); n != 0 {
		t.Errorf("%d NEG deletes failed (in use): backends were not removed first", n)
	}
	if evs := e.events("default", "web", ReasonNEGInUse); len(evs) != 0 {
		t.Errorf("NEGInUse events: %v", evs[0].Message)
	}
}

func TestBackendsPortRemoved(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createBS("", "web-http", "HTTP")
	e.createBS("", "web-tcp", "TCP")
	e.createService(autonegService("web",
		`{"backend_services":{"80":[{"name":"web-http"}],"443":[{"name":"web-tcp","max_connections_per_endpoint":"20"}]}}`, 80, 443))
	e.start(withBackends("web-http", "web-tcp"), 0)
	n80, n443 := negName("web", 80), negName("web", 443)
	e.eventually("both wired", func() error {
		if err := e.checkBackends("", "web-http", rateBackend(zoneA, n80, backends.DefaultMaxRatePerEndpoint)); err != nil {
			return err
		}
		return e.checkBackends("", "web-tcp", wantBackend{group: gce.NEGURL(project, zoneA, n443), mode: "CONNECTION", limit: 20, capacity: 1})
	})

	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("443 backends removed and NEG deleted", func() error {
		if err := e.checkBackends("", "web-tcp"); err != nil {
			return err
		}
		return e.checkNoNEG(zoneA, n443)
	})
	e.eventually("warning about the port without NEG", func() error {
		return e.checkEvent("default", "web", backends.ReasonPortWithoutNEG, "Port(s) 443")
	})
	if err := e.checkBackends("", "web-http", rateBackend(zoneA, n80, backends.DefaultMaxRatePerEndpoint)); err != nil {
		t.Error(err)
	}
	if n := e.failedCalls(mDelete, 400); n != 0 {
		t.Errorf("%d NEG deletes failed", n)
	}
}

func TestBackendsRegional(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createBS(region, "web-internal", "HTTP")
	e.createService(autonegService("web", `{"backend_services":{"80":[{"name":"web-internal","region":"us-central1","max_rate_per_endpoint":10}]}}`, 80))
	e.srv.ResetCounts()
	e.start(withBackends("us-central1/web-.*"), 0)
	e.eventually("regional backend service wired", func() error {
		return e.checkBackends(region, "web-internal", rateBackend(zoneA, negName("web", 80), 10))
	})
	if c := e.srv.Counts(); c[mRegionBSPatch] != 1 || c[mBSGet]+c[mBSPatch] != 0 {
		t.Errorf("calls: %v", c)
	}
}

// TestBackendsRefused: references outside the allow-list, bad JSON, a missing backend service, a
// backend service in another region and a balancing mode the protocol does not take are events,
// and nothing is written to any backend service.
func TestBackendsRefused(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	hand := e.handMadeNEG(zoneA, "by-hand")
	e.createBS("", "web-tcp", "TCP")
	e.createBS("", "other-bs", "HTTP", hand)
	cases := []struct{ svc, autoneg, reason, msg string }{
		{"denied", `{"backend_services":{"80":[{"name":"other-bs"}]}}`, backends.ReasonNotAllowed, `"other-bs" (global) (port 80`},
		{"badjson", `{"backend_services":{"80":[{"name":"web-x"}]`, backends.ReasonInvalidAutoneg, "unexpected end of JSON input"},
		{"missing", `{"backend_services":{"80":[{"name":"web-missing"}]}}`, backends.ReasonNotFound, `"web-missing" (global)`},
		{"elsewhere", `{"backend_services":{"80":[{"name":"web-x","region":"europe-west4"}]}}`, backends.ReasonWrongRegion, "another region"},
		{"mode", `{"backend_services":{"80":[{"name":"web-tcp","max_rate_per_endpoint":5}]}}`, backends.ReasonInvalidConfig, "balancing mode RATE"},
	}
	for _, c := range cases {
		e.createService(autonegService(c.svc, c.autoneg, 80))
	}
	e.start(withBackends("web-.*", "europe-west4/.*"), 0)
	for _, c := range cases {
		e.eventually(c.svc+" warned", func() error { return e.checkEvent("default", c.svc, c.reason, c.msg) })
	}
	// The missing backend service is looked for again every RetryLater (100 ms here) for good, so
	// the controller is never quiet: the barrier is two more looks after every warning.
	looks := e.srv.Counts()[mBSGet]
	e.eventually("two more looks for the missing backend service", func() error {
		if n := e.srv.Counts()[mBSGet] - looks; n < 2 {
			return fmt.Errorf("%d looks", n)
		}
		return nil
	})
	if c := e.srv.Counts(); c[mBSPatch]+c[mRegionBSPatch] != 0 {
		t.Errorf("backend services were written: %v", c)
	}
	if err := e.checkBackends("", "other-bs", fromAPI(hand)); err != nil {
		t.Error(err)
	}
	if _, ok := e.autonegStatus("denied"); ok {
		t.Errorf("status written for a Service whose backend service is not allowed")
	}
	// The missing backend service appears: it is wired without any other change.
	e.createBS("", "web-missing", "HTTP")
	e.eventually("wired once it exists", func() error {
		return e.checkBackends("", "web-missing", rateBackend(zoneA, negName("missing", 80), backends.DefaultMaxRatePerEndpoint))
	})
}

// TestBackendsConflicts: two Services of one cluster share a backend service while a third of
// the updates fail with 412; both end up wired, nothing is lost, the others' backend stays.
func TestBackendsConflicts(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 5 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	hand := e.handMadeNEG(zoneA, "by-hand")
	e.createBS("", "web-shared", "HTTP", hand)
	e.srv.InjectFault(fakegce.Fault{Method: mBSPatch, Code: 412, Reason: "conditionNotMet", Rate: 0.3})
	shared := `{"backend_services":{"80":[{"name":"web-shared","max_rate_per_endpoint":5}]}}`
	for _, s := range []string{"one", "two", "three"} {
		e.createService(autonegService(s, shared, 80))
	}
	e.start(withBackends("web-shared"), 0)
	var want []wantBackend
	for _, s := range []string{"one", "two", "three"} {
		want = append(want, rateBackend(zoneA, negName(s, 80), 5), rateBackend(zoneB, negName(s, 80), 5))
	}
	e.eventually("all wired", func() error { return e.checkBackends("", "web-shared", append(want, fromAPI(hand))...) })
	e.deleteService("default", "two")
	e.eventually("two's backends and NEGs gone", func() error {
		if err := e.checkBackends("", "web-shared", fromAPI(hand), want[0], want[1], want[4], want[5]); err != nil {
			return err
		}
		return e.checkGone(negName("two", 80))
	})
	t.Logf("patches: %d, refused with 412: %d", e.srv.Counts()[mBSPatch], e.failedCalls(mBSPatch, 412))
}

// TestBackendsRestart: the status annotation is the record of what was wired, so a backend
// service dropped from the annotation while the controller was down is cleaned after a restart.
func TestBackendsRestart(t *testing.T) {
	e, hand := wiredWeb(t)
	e.createBS("", "web-bs2", "HTTP")
	e.eventually("status written", func() error {
		if _, ok := e.autonegStatus("web"); !ok {
			return fmt.Errorf("no status")
		}
		return nil
	})
	e.stop()
	e.setAutoneg("web", `{"backend_services":{"80":[{"name":"web-bs2","max_rate_per_endpoint":50}]}}`)
	e.start(withBackends("web-.*"), 0)
	name := negName("web", 80)
	e.eventually("moved to web-bs2", func() error {
		if err := e.checkBackends("", "web-bs", hand); err != nil {
			return err
		}
		return e.checkBackends("", "web-bs2", rateBackend(zoneA, name, 50), rateBackend(zoneB, name, 50))
	})
}

func TestBackendsDisabled(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createBS("", "web-bs", "HTTP")
	e.createService(autonegService("web", webBS, 80))
	e.srv.ResetCounts()
	e.start(nil, 0)
	e.eventually("NEG", func() error { return e.checkNEG(zoneA, negName("web", 80), nil) })
	e.settle()
	if c := e.srv.Counts(); c[mBSGet]+c[mBSPatch] != 0 {
		t.Errorf("backend service calls while disabled: %v", c)
	}
	if _, ok := e.autonegStatus("web"); ok {
		t.Errorf("status written while disabled")
	}
}
