package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Subsystem prefixes every metric name: neg_controller_<name>.
const Subsystem = "neg_controller"

// Result label values of SyncDuration.
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// Source label values of DriftDetected: how a change made outside the controller was found.
const (
	// DriftSourceSize: the periodic NEG listing returned a size other than the endpoint count
	// the controller believes.
	DriftSourceSize = "size"
)

// Metrics holds the collectors. Create it with New; the zero value and nil record nothing.
type Metrics struct {
	gceRequests          *prometheus.CounterVec
	gceRequestDuration   *prometheus.HistogramVec
	gceOperationDuration *prometheus.HistogramVec
	gceRateLimitWait     *prometheus.HistogramVec
	syncDuration         *prometheus.HistogramVec
	skippedEndpoints     *prometheus.CounterVec
	propagation          *prometheus.HistogramVec
	dryRunMutations      *prometheus.CounterVec
	driftDetected        *prometheus.CounterVec
	leader               prometheus.Gauge
	namingUIDConflict    prometheus.Gauge
	queue                *queueMetrics
	scrape               *scrapeCollector
	unowned              *unownedCollector
}

// New creates the metrics and registers them on reg. It panics if reg already holds metrics of
// the same names (New is meant to be called once per registry).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		gceRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: Subsystem, Name: "gce_requests_total",
			Help: "Compute Engine API HTTP requests (every attempt, page and operation wait) by API method and " +
				"result: success or the error class (RateLimited, QuotaExceeded, Server, Invalid, NotFound, ...).",
		}, []string{"method", "result"}),
		gceRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: Subsystem, Name: "gce_request_duration_seconds",
			Help:    "Latency of Compute Engine API HTTP requests by API method.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15), // 5 ms … 82 s
		}, []string{"method"}),
		gceOperationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: Subsystem, Name: "gce_operation_duration_seconds",
			Help: "Duration of Compute Engine mutations from the first request to the end of their operation, " +
				"by API method and result: success, the error class, or Timeout for an operation given up after " +
				"--gce-operation-timeout (its outcome unknown).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms … 410 s
		}, []string{"method", "result"}),
		gceRateLimitWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: Subsystem, Name: "gce_rate_limit_wait_seconds",
			Help:    "Time Compute Engine calls waited for their client-side rate-limit bucket, by method group (only calls that waited).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms … 33 s
		}, []string{"group"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: Subsystem, Name: "sync_duration_seconds",
			Help: "Duration of Service syncs by result (success, error). Attach and detach calls run " +
				"asynchronously and are not included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17), // 1 ms … 66 s
		}, []string{"result"}),
		skippedEndpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: Subsystem, Name: "skipped_endpoints_total",
			Help: "Endpoints left out of a NEG because they cannot be placed, by reason (NoNodeName, UnknownNode, " +
				"NodeWithoutZone, ZoneWithoutNEG, NoPodRef), counted once per sync that skips them.",
		}, []string{"reason"}),
		propagation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: Subsystem, Name: "endpoint_propagation_seconds",
			Help: "Time from an EndpointSlice change being observed to the attach or detach call it caused " +
				"completing successfully, by operation (attach, detach).",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14), // 100 ms … 819 s
		}, []string{"operation"}),
		dryRunMutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: Subsystem, Name: "dry_run_mutations_total",
			Help: "Compute Engine mutations --dry-run logged instead of making, by API method.",
		}, []string{"method"}),
		driftDetected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: Subsystem, Name: "drift_detected_total",
			Help: "NEGs found changed outside the controller and listed again to be repaired, by how the change " +
				"was found (size: the periodic NEG listing returned a size other than the endpoint count the " +
				"controller believes).",
		}, []string{"source"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: Subsystem, Name: "leader",
			Help: "1 while this process holds the leader Lease (or runs without leader election), else 0.",
		}),
		namingUIDConflict: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: Subsystem, Name: "naming_uid_conflict",
			Help: "1 once the uid of ConfigMap kube-system/ingress-uid differs from the naming UID this process " +
				"uses: Compute Engine mutations are stopped until the ConfigMap is restored and the process restarted. Else 0.",
		}),
		queue:   newQueueMetrics(),
		scrape:  newScrapeCollector(),
		unowned: newUnownedCollector(),
	}
	reg.MustRegister(m.gceRequests, m.gceRequestDuration, m.gceOperationDuration, m.gceRateLimitWait,
		m.syncDuration, m.skippedEndpoints, m.propagation, m.dryRunMutations, m.driftDetected, m.leader,
		m.namingUIDConflict, m.scrape)
	reg.MustRegister(m.unowned)
	m.queue.register(reg)
	return m
}

// ObserveSync records one Service sync; result is ResultSuccess or ResultError.
func (m *Metrics) ObserveSync(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.syncDuration.WithLabelValues(result).Observe(d.Seconds())
}

// AddSkippedEndpoints counts n endpoints skipped for reason.
func (m *Metrics) AddSkippedEndpoints(reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.skippedEndpoints.WithLabelValues(reason).Add(float64(n))
}

// ObservePropagation records the time from an EndpointSlice change to the completion of an
// attach or detach call it caused; operation is "attach" or "detach".
func (m *Metrics) ObservePropagation(operation string, d time.Duration) {
	if m == nil {
		return
	}
	m.propagation.WithLabelValues(operation).Observe(d.Seconds())
}

// ObserveDryRun counts one mutation --dry-run did not make; method is the API method id.
func (m *Metrics) ObserveDryRun(method string) {
	if m == nil {
		return
	}
	m.dryRunMutations.WithLabelValues(method).Inc()
}

// AddDrift counts n NEGs found changed outside the controller; source is a DriftSource value.
func (m *Metrics) AddDrift(source string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.driftDetected.WithLabelValues(source).Add(float64(n))
}

// SetLeader sets the leader gauge.
func (m *Metrics) SetLeader(leading bool) {
	if m == nil {
		return
	}
	setBool(m.leader, leading)
}

// SetNamingUIDConflict sets the naming UID conflict gauge.
func (m *Metrics) SetNamingUIDConflict(conflict bool) {
	if m == nil {
		return
	}
	setBool(m.namingUIDConflict, conflict)
}

// setBool sets g to 1 for true, 0 for false.
func setBool(g prometheus.Gauge, b bool) {
	v := 0.0
	if b {
		v = 1
	}
	g.Set(v)
}

// sources are the functions the scrape-time collector calls; any may be nil.
type sources struct {
	attached      func() []NEGEndpoints
	cloud         CloudState
	configuredQPS map[string]float64
	maxInFlight   int
}

// scrapeCollector computes the gauges that are read from the controller and the GCE adapter
// when Prometheus scrapes, so their series exist exactly as long as what they describe.
type scrapeCollector struct {
	attached, qps, configuredQPS, granted, inFlight, inFlightLimit, oldestOperation *prometheus.Desc

	mu  sync.Mutex
	src sources
}

func newScrapeCollector() *scrapeCollector {
	name := func(n string) string { return prometheus.BuildFQName("", Subsystem, n) }
	return &scrapeCollector{
		attached: prometheus.NewDesc(name("attached_endpoints"),
			"Endpoints attached to a NEG as the controller knows it (listed from GCE plus its own successful calls), "+
				"by zone and NEG name. Absent while a NEG's endpoints are unknown (before its first listing, after a "+
				"failed call) and once the NEG is deleted.", []string{"zone", "neg"}, nil),
		qps: prometheus.NewDesc(name("gce_rate_limit_qps"),
			"Current rate of an adaptive client-side rate limiter of Compute Engine calls: a shared budget (group "+
				"mutations, reads, lists, operationReads) or a method group's cap (--gce-rate-limit); below the "+
				"configured rate after GCE answered rateLimitExceeded (+Inf for a disabled bucket).", []string{"group"}, nil),
		configuredQPS: prometheus.NewDesc(name("gce_rate_limit_configured_qps"),
			"Configured rate of a Compute Engine rate limiter: a budget's refill rate (--gce-*-per-minute less one "+
				"second's burst, over 60) or a method group's cap (--gce-rate-limit); +Inf for a disabled bucket.",
			[]string{"group"}, nil),
		granted: prometheus.NewDesc(name("gce_rate_limit_granted_total"),
			"Compute Engine calls a rate limiter let through (every attempt, page and operation wait). "+
				"rate(…{group=\"mutations\"}) / gce_rate_limit_configured_qps is the share of the mutation budget spent.",
			[]string{"group"}, nil),
		inFlight: prometheus.NewDesc(name("gce_in_flight_calls"),
			"Compute Engine calls currently in flight (holding one of the --gce-max-in-flight slots).", nil, nil),
		inFlightLimit: prometheus.NewDesc(name("gce_in_flight_limit"),
			"The cap on concurrent Compute Engine calls (--gce-max-in-flight).", nil, nil),
		oldestOperation: prometheus.NewDesc(name("gce_oldest_operation_age_seconds"),
			"How long the oldest Compute Engine operation still waited for has been waited for (0 when none). "+
				"It stays below --gce-operation-timeout, after which the wait gives up; near it, operations are stuck.",
			nil, nil),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.attached, c.qps, c.configuredQPS, c.granted, c.inFlight, c.inFlightLimit, c.oldestOperation} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src.attached != nil {
		for _, n := range src.attached() {
			ch <- prometheus.MustNewConstMetric(c.attached, prometheus.GaugeValue, float64(n.Count), n.Zone, n.NEG)
		}
	}
	for g, qps := range src.configuredQPS {
		ch <- prometheus.MustNewConstMetric(c.configuredQPS, prometheus.GaugeValue, qps, g)
	}
	if src.cloud != nil {
		for g, qps := range src.cloud.RateLimiterState() {
			ch <- prometheus.MustNewConstMetric(c.qps, prometheus.GaugeValue, qps, g)
		}
		for g, n := range src.cloud.RateLimiterGranted() {
			ch <- prometheus.MustNewConstMetric(c.granted, prometheus.CounterValue, float64(n), g)
		}
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(src.cloud.InFlight()))
		ch <- prometheus.MustNewConstMetric(c.inFlightLimit, prometheus.GaugeValue, float64(src.maxInFlight))
		ch <- prometheus.MustNewConstMetric(c.oldestOperation, prometheus.GaugeValue, src.cloud.OldestOperationAge().Seconds())
	}
}

func (c *scrapeCollector) update(f func(s *sources)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.src)
}

// NEGEndpoints is the number of endpoints attached to one zonal NEG.
type NEGEndpoints struct {
	Zone, NEG string
	Count     int
}

// SetAttachedEndpointsSource installs the function the attached_endpoints gauge is read from
// at scrape time. It must be fast and safe for concurrent use.
func (m *Metrics) SetAttachedEndpointsSource(f func() []NEGEndpoints) {
	if m == nil {
		return
	}
	m.scrape.update(func(s *sources) { s.attached = f })
}
