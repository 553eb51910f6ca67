package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/util/workqueue"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

var _ gce.Observer = (*Metrics)(nil)

func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return New(reg), reg
}

func TestGCEObserver(t *testing.T) {
	m, reg := newTest(t)
	m.ObserveRequest("networkEndpointGroups.attachNetworkEndpoints", "success", 100*time.Millisecond)
	m.ObserveRequest("networkEndpointGroups.attachNetworkEndpoints", "RateLimited", 10*time.Millisecond)
	m.ObserveRequest("networkEndpointGroups.attachNetworkEndpoints", "RateLimited", 10*time.Millisecond)
	m.ObserveOperation("networkEndpointGroups.attachNetworkEndpoints", "success", 2*time.Second)
	m.ObserveRateLimitWait("attach", 300*time.Millisecond)

	want := `
# HELP neg_controller_gce_requests_total Compute Engine API HTTP requests (every attempt, page and operation wait) by API method and result: success or the error class (RateLimited, QuotaExceeded, Server, Invalid, NotFound, ...).
# TYPE neg_controller_gce_requests_total counter
neg_controller_gce_requests_total{method="networkEndpointGroups.attachNetworkEndpoints",result="RateLimited"} 2
neg_controller_gce_requests_total{method="networkEndpointGroups.attachNetworkEndpoints",result="success"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "neg_controller_gce_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.gceRequestDuration); n != 1 {
		t.Errorf("request duration series = %d, want 1 (labelled by method only)", n)
	}
	if got := histogramCount(t, reg, "neg_controller_gce_request_duration_seconds"); got != 3 {
		t.Errorf("request duration count = %d, want 3", got)
	}
	if got := histogramCount(t, reg, "neg_controller_gce_operation_duration_seconds"); got != 1 {
		t.Errorf("operation duration count = %d, want 1", got)
	}
	if got := histogramCount(t, reg, "neg_controller_gce_rate_limit_wait_seconds"); got != 1 {
		t.Errorf("rate-limit wait count = %d, want 1", got)
	}
}

// fakeCloud is a CloudState.
type fakeCloud struct {
	qps       map[string]float64
	granted   map[string]uint64
	inFlight  int
	oldestAge time.Duration
}

func (f *fakeCloud) RateLimiterState() map[string]float64  { return f.qps }
func (f *fakeCloud) RateLimiterGranted() map[string]uint64 { return f.granted }
func (f *fakeCloud) InFlight() int                         { return f.inFlight }
func (f *fakeCloud) OldestOperationAge() time.Duration     { return f.oldestAge }

var _ CloudState = (*gce.Compute)(nil)

func TestCloudState(t *testing.T) {
	m, reg := newTest(t)
	cloud := &fakeCloud{qps: map[string]float64{"mutations": 12.5, "attach": 7.5, "reads": math.Inf(1)},
		granted: map[string]uint64{"mutations": 420, "attach": 17, "reads": 3}, inFlight: 3, oldestAge: 90 * time.Second}
	m.SetCloudState(cloud, map[string]float64{"mutations": 25, "attach": 15, "reads": math.Inf(1)}, 32)

	want := `
# HELP neg_controller_gce_in_flight_calls Compute Engine calls currently in flight (holding one of the --gce-max-in-flight slots).
# TYPE neg_controller_gce_in_flight_calls gauge
neg_controller_gce_in_flight_calls 3
# HELP neg_controller_gce_in_flight_limit The cap on concurrent Compute Engine calls (--gce-max-in-flight).
# TYPE neg_controller_gce_in_flight_limit gauge
neg_controller_gce_in_flight_limit 32
# HELP neg_controller_gce_oldest_operation_age_seconds How long the oldest Compute Engine operation still waited for has been waited for (0 when none). It stays below --gce-operation-timeout, after which the wait gives up; near it, operations are stuck.
# TYPE neg_controller_gce_oldest_operation_age_seconds gauge
neg_controller_gce_oldest_operation_age_seconds 90
# HELP neg_controller_gce_rate_limit_configured_qps Configured rate of a Compute Engine rate limiter: a budget's refill rate (--gce-*-per-minute less one second's burst, over 60) or a method group's cap (--gce-rate-limit); +Inf for a disabled bucket.
# TYPE neg_controller_gce_rate_limit_configured_qps gauge
neg_controller_gce_rate_limit_configured_qps{group="attach"} 15
neg_controller_gce_rate_limit_configured_qps{group="mutations"} 25
neg_controller_gce_rate_limit_configured_qps{group="reads"} +Inf
# HELP neg_controller_gce_rate_limit_granted_total Compute Engine calls a rate limiter let through (every attempt, page and operation wait). rate(…{group="mutations"}) / gce_rate_limit_configured_qps is the share of the mutation budget spent.
# TYPE neg_controller_gce_rate_limit_granted_total counter
neg_controller_gce_rate_limit_granted_total{group="attach"} 17
neg_controller_gce_rate_limit_granted_total{group="mutations"} 420
neg_controller_gce_rate_limit_granted_total{group="reads"} 3
# HELP neg_controller_gce_rate_limit_qps Current rate of an adaptive client-side rate limiter of Compute Engine calls: a shared budget (group mutations, reads, lists, operationReads) or a method group's cap (--gce-rate-limit); below the configured rate after GCE answered rateLimitExceeded (+Inf for a disabled bucket).
# TYPE neg_controller_gce_rate_limit_qps gauge
neg_controller_gce_rate_limit_qps{group="attach"} 7.5
neg_controller_gce_rate_limit_qps{group="mutations"} 12.5
neg_controller_gce_rate_limit_qps{group="reads"} +Inf
`
	names := []string{"neg_controller_gce_in_flight_calls", "neg_controller_gce_in_flight_limit",
		"neg_controller_gce_oldest_operation_age_seconds", "neg_controller_gce_rate_limit_configured_qps",
		"neg_controller_gce_rate_limit_granted_total", "neg_controller_gce_rate_limit_qps"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Read live at every scrape.
	cloud.inFlight, cloud.oldestAge = 5, 0
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP neg_controller_gce_in_flight_calls Compute Engine calls currently in flight (holding one of the --gce-max-in-flight slots).
# TYPE neg_controller_gce_in_flight_calls gauge
neg_controller_gce_in_flight_calls 5
# HELP neg_controller_gce_oldest_operation_age_seconds How long the oldest Compute Engine operation still waited for has been waited for (0 when none). It stays below --gce-operation-timeout, after which the wait gives up; near it, operations are stuck.
# TYPE neg_controller_gce_oldest_operation_age_seconds gauge
neg_controller_gce_oldest_operation_age_seconds 0
`), "neg_controller_gce_in_flight_calls", "neg_controller_gce_oldest_operation_age_seconds"); err != nil {
		t.Error(err)
	}
}

func TestAttachedEndpointsFollowSource(t *testing.T) {
	m, reg := newTest(t)
	negs := []NEGEndpoints{{Zone: "us-central1-a", NEG: "k8s1-a", Count: 12}, {Zone: "us-central1-b", NEG: "k8s1-a", Count: 0}}
	m.SetAttachedEndpointsSource(func() []NEGEndpoints { return negs })
	header := `
# HELP neg_controller_attached_endpoints Endpoints attached to a NEG as the controller knows it (listed from GCE plus its own successful calls), by zone and NEG name. Absent while a NEG's endpoints are unknown (before its first listing, after a failed call) and once the NEG is deleted.
# TYPE neg_controller_attached_endpoints gauge
`
	want := header + `neg_controller_attached_endpoints{neg="k8s1-a",zone="us-central1-a"} 12
neg_controller_attached_endpoints{neg="k8s1-a",zone="us-central1-b"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "neg_controller_attached_endpoints"); err != nil {
		t.Error(err)
	}
	// A deleted NEG's series disappears with it.
	negs = negs[:1]
	if err := testutil.GatherAndCompare(reg, strings.NewReader(header+`neg_controller_attached_endpoints{neg="k8s1-a",zone="us-central1-a"} 12
`), "neg_controller_attached_endpoints"); err != nil {
		t.Error(err)
	}
}

func TestControllerMetrics(t *testing.T) {
	m, reg := newTest(t)
	m.ObserveSync(ResultSuccess, 20*time.Millisecond)
	m.ObserveSync(ResultError, time.Second)
	m.AddSkippedEndpoints("UnknownNode", 3)
	m.AddSkippedEndpoints("UnknownNode", 0)
	m.ObservePropagation("attach", 1500*time.Millisecond)
	m.ObserveDryRun("networkEndpointGroups.insert")
	m.ObserveDryRun("networkEndpointGroups.insert")
	m.SetLeader(true)
	m.AddDrift(DriftSourceSize, 1)
	m.AddDrift(DriftSourceSize, 0)

	if got := testutil.ToFloat64(m.skippedEndpoints.WithLabelValues("UnknownNode")); got != 3 {
		t.Errorf("skipped = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.dryRunMutations.WithLabelValues("networkEndpointGroups.insert")); got != 2 {
		t.Errorf("dry-run mutations = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.driftDetected.WithLabelValues(DriftSourceSize)); got != 1 {
		t.Errorf("drift detected = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.leader); got != 1 {
		t.Errorf("leader = %v, want 1", got)
	}
	m.SetLeader(false)
	if got := testutil.ToFloat64(m.leader); got != 0 {
		t.Errorf("leader = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.namingUIDConflict); got != 0 {
		t.Errorf("naming UID conflict = %v before any conflict, want 0", got)
	}
	m.SetNamingUIDConflict(true)
	if got := testutil.ToFloat64(m.namingUIDConflict); got != 1 {
		t.Errorf("naming UID conflict = %v, want 1", got)
	}
	if got := histogramCount(t, reg, "neg_controller_sync_duration_seconds"); got != 2 {
		t.Errorf("sync count = %d, want 2", got)
	}
	if n := testutil.CollectAndCount(m.syncDuration); n != 2 {
		t.Errorf("sync series = %d, want 2 (success, error)", n)
	}
	if got := histogramCount(t, reg, "neg_controller_endpoint_propagation_seconds"); got != 1 {
		t.Errorf("propagation count = %d, want 1", got)
	}
}

// TestQueueProvider drives a real client-go queue configured with the provider.
func TestQueueProvider(t *testing.T) {
	m, reg := newTest(t)
	q := workqueue.NewTypedRateLimitingQueueWithConfig[string](workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "test", MetricsProvider: m.QueueProvider()})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	if got := testutil.ToFloat64(m.queue.depth.WithLabelValues("test")); got != 2 {
		t.Errorf("depth = %v, want 2", got)
	}
	k, _ := q.Get()
	q.Done(k)
	q.AddRateLimited("c")
	if got := testutil.ToFloat64(m.queue.adds.WithLabelValues("test")); got != 2 {
		t.Errorf("adds = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.queue.retries.WithLabelValues("test")); got != 1 {
		t.Errorf("retries = %v, want 1", got)
	}
	if got := histogramCount(t, reg, "workqueue_work_duration_seconds"); got != 1 {
		t.Errorf("work duration count = %d, want 1", got)
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("m", "success", time.Second)
	m.ObserveOperation("m", "success", time.Second)
	m.ObserveRateLimitWait("g", time.Second)
	m.ObserveSync(ResultSuccess, time.Second)
	m.AddSkippedEndpoints("r", 1)
	m.ObservePropagation("attach", time.Second)
	m.ObserveDryRun("m")
	m.AddDrift(DriftSourceSize, 1)
	m.SetLeader(true)
	m.SetNamingUIDConflict(true)
	m.SetCloudState(&fakeCloud{}, nil, 1)
	m.SetAttachedEndpointsSource(nil)
	m.SetUnownedNEGsSource(nil)
	if m.QueueProvider() != nil {
		t.Error("nil Metrics must give a nil queue provider")
	}
}

// TestEveryNameHasTheSubsystem: every metric is neg_controller_* without stutter, but client-go's
// standard work queue metrics, which keep the names every Kubernetes component uses.
func TestEveryNameHasTheSubsystem(t *testing.T) {
	m, reg := newTest(t)
	m.ObserveRequest("m", "success", time.Second)
	m.ObserveOperation("m", "success", time.Second)
	m.ObserveRateLimitWait("g", time.Second)
	m.ObserveSync(ResultSuccess, time.Second)
	m.AddSkippedEndpoints("r", 1)
	m.ObservePropagation("attach", time.Second)
	m.ObserveDryRun("m")
	m.AddDrift(DriftSourceSize, 1)
	m.SetCloudState(&fakeCloud{qps: map[string]float64{"g": 1}}, map[string]float64{"g": 1}, 1)
	m.SetAttachedEndpointsSource(func() []NEGEndpoints { return []NEGEndpoints{{Zone: "z", NEG: "n", Count: 1}} })
	m.SetUnownedNEGsSource(func() map[string]int { return map[string]int{UnownedType: 1} })
	qp := m.QueueProvider()
	qp.NewDepthMetric("q").Inc()
	qp.NewAddsMetric("q").Inc()
	qp.NewRetriesMetric("q").Inc()
	qp.NewLatencyMetric("q").Observe(1)
	qp.NewWorkDurationMetric("q").Observe(1)
	qp.NewUnfinishedWorkSecondsMetric("q").Set(1)
	qp.NewLongestRunningProcessorSecondsMetric("q").Set(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 25 {
		t.Errorf("gathered %d metric families, want all 25", len(mfs))
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "workqueue_") {
			continue
		}
		if !strings.HasPrefix(mf.GetName(), Subsystem+"_") || strings.HasPrefix(mf.GetName(), Subsystem+"_neg_") {
			t.Errorf("metric %s: want prefix %s_ and no stutter", mf.GetName(), Subsystem)
		}
	}
}

// histogramCount returns the total sample count of a histogram family.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}
