package rollout

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/readiness"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, ms(i))
	}
	orig := slices.Clone(ds)
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, ms(1)}, {50, ms(51)}, {99, ms(100)}, {100, ms(100)}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if !slices.Equal(ds, orig) {
		t.Error("percentile sorted its input")
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v", got)
	}
	if got := percentile([]time.Duration{ms(7)}, 99); got != ms(7) {
		t.Errorf("percentile of one value = %v", got)
	}
}

func pod(name string, ready *time.Time) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	if ready != nil {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(*ready)})
	} else {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse})
	}
	return p
}

func TestReadyToFirst(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	at := func(s float64) *time.Time { v := t0.Add(time.Duration(s * float64(time.Second))); return &v }
	pods := []corev1.Pod{
		pod("a", at(0)),  // first request 7 s after Ready
		pod("b", at(1)),  // 2 s before Ready (gate: served before Ready)
		pod("c", at(2)),  // 5 s
		pod("d", at(3)),  // 6 s
		pod("e", nil),    // not Ready: ignored
		pod("f", at(10)), // never served: ignored
	}
	first := map[string]time.Time{"a": *at(7), "b": *at(-1), "c": *at(7), "d": *at(9), "e": *at(4), "gone": *at(1)}
	med, n := readyToFirst(pods, first)
	// Sorted: -2, 5, 6, 7 → upper median (index 2) 6 s.
	if n != 4 || med != 6*time.Second {
		t.Errorf("readyToFirst = %v over %d pods, want 6s over 4", med, n)
	}
	med, n = readyToFirst(pods[:3], first) // -2, 5, 7 → 5
	if n != 3 || med != 5*time.Second {
		t.Errorf("readyToFirst of 3 = %v over %d pods, want 5s over 3", med, n)
	}
	if med, n := readyToFirst(pods, nil); n != 0 || med != 0 {
		t.Errorf("no requests: %v over %d pods", med, n)
	}
}

func TestRowAndTable(t *testing.T) {
	without := Result{What: WithoutGates, Requests: 2127, OK: 1416, Failed: 711, P50: 912 * time.Microsecond,
		P99: 17480 * time.Microsecond, Rollout: 7400 * time.Millisecond, ReadyToFirst: 6840 * time.Millisecond, ReadyToFirstPods: 10}
	with := Result{What: WithGates, Requests: 4460, OK: 4460, P50: 780 * time.Microsecond, P99: 7420 * time.Microsecond,
		Rollout: 18 * time.Second, ReadyToFirst: -20 * time.Millisecond, ReadyToFirstPods: 10}
	none := Result{What: "nothing served", Rollout: 2600 * time.Millisecond}
	want := strings.Join([]string{
		"| rollout of 10 replicas at 200 req/s | requests | failed | p50 | p99 | rollout | pod Ready → first request (median) |",
		"|---|---|---|---|---|---|---|",
		"| without readiness gates | 2127 | 711 | 900µs | 17.5ms | 7s | 6.8s (10 pods) |",
		"| with readiness gates | 4460 | 0 | 800µs | 7.4ms | 18s | 0s (10 pods) |",
		"| nothing served | 0 | 0 | 0s | 0s | 3s | n/a |",
	}, "\n")
	if got := Table(10, 200, []Result{without, with, none}); got != want {
		t.Errorf("Table =\n%s\nwant\n%s", got, want)
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(Result{What: WithGates, Requests: 3, OK: 3, P50: 1500 * time.Microsecond, Rollout: 1234 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["p50Ms"] != 1.5 || m["rolloutSeconds"] != 1.234 || m["readyToFirstRequestMedianSeconds"] != nil || m["what"] != WithGates {
		t.Errorf("JSON = %s", b)
	}
}

func TestFrontendDelta(t *testing.T) {
	d := frontendDelta(fakegce.FrontendStats{Requests: 10, NoHealthyBackend: 1},
		fakegce.FrontendStats{Requests: 25, NoHealthyBackend: 4, UpstreamErrors: 2, DrainingCuts: 1, Backend5xx: 3})
	if d != (FrontendDelta{Requests: 15, NoHealthyBackend: 3, UpstreamErrors: 2, DrainingCuts: 1, Backend5xx: 3}) {
		t.Errorf("delta = %+v", d)
	}
}

func TestTemplateChanges(t *testing.T) {
	d := deployment("ns", "roll", 4)
	p := &d.Spec.Template.Spec
	NextVersion(p)
	if v := p.Containers[0].Env[0].Value; v != "2" || len(p.ReadinessGates) != 0 {
		t.Errorf("after NextVersion: VERSION %s, gates %v", v, p.ReadinessGates)
	}
	AddGate(p)
	AddGate(p)
	if v := p.Containers[0].Env[0].Value; v != "4" || len(p.ReadinessGates) != 1 || p.ReadinessGates[0].ConditionType != readiness.GateType {
		t.Errorf("after AddGate twice: VERSION %s, gates %v", v, p.ReadinessGates)
	}
	if s := d.Spec.Strategy.RollingUpdate; s.MaxSurge.String() != "25%" || s.MaxUnavailable.String() != "25%" {
		t.Errorf("strategy %+v", s)
	}
	c := p.Containers[0]
	if c.Lifecycle.PreStop.Sleep.Seconds != 5 || *p.TerminationGracePeriodSeconds != 30 || c.ReadinessProbe == nil {
		t.Errorf("container %+v", c)
	}
}

func TestRolloutDone(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 4, UpdatedReplicas: 4, ReadyReplicas: 4, AvailableReplicas: 4}
	if ok, _ := rolloutDone(d, 4); !ok {
		t.Error("complete rollout not done")
	}
	for _, mod := range []func(s *appsv1.DeploymentStatus){
		func(s *appsv1.DeploymentStatus) { s.ObservedGeneration = 2 },
		func(s *appsv1.DeploymentStatus) { s.Replicas = 5 }, // an old pod still counted
		func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 3 },
		func(s *appsv1.DeploymentStatus) { s.AvailableReplicas = 3 },
		func(s *appsv1.DeploymentStatus) { s.ReadyReplicas = 3 },
	} {
		c := d.DeepCopy()
		mod(&c.Status)
		if ok, detail := rolloutDone(c, 4); ok {
			t.Errorf("done with status %s", detail)
		}
	}
}

// TestLoadCounts runs the load generator against a server that fails every third request:
// successes are counted with the serving pod, failures with the status and cause.
func TestLoadCounts(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.Header().Set("X-Fakegce-Cause", "no healthy upstream")
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set(podHeader, "pod-1")
	}))
	defer srv.Close()
	var l load
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); l.run(srv.URL, 500, stop) }()
	for deadline := time.Now().Add(30 * time.Second); (l.ok.Load() < 10 || l.failed.Load() < 3) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-done
	lat, first := l.snapshot()
	if int64(len(lat)) != l.ok.Load() || l.ok.Load() < 10 {
		t.Errorf("%d latencies for %d OK requests", len(lat), l.ok.Load())
	}
	if _, ok := first["pod-1"]; !ok || len(first) != 1 {
		t.Errorf("first request per pod: %v", first)
	}
	if l.failed.Load() < 3 || l.firstError() != "status 502 (no healthy upstream)" {
		t.Errorf("%d failed, first error %q", l.failed.Load(), l.firstError())
	}
}
