package metrics

import "time"

// The methods below implement gce.Observer (pkg/gce calls them inline; they only touch
// collectors).

// ObserveRequest records one Compute Engine HTTP request: method is the API method id
// ("networkEndpointGroups.attachNetworkEndpoints"), result "success" or the error class.
func (m *Metrics) ObserveRequest(method, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.gceRequests.WithLabelValues(method, result).Inc()
	m.gceRequestDuration.WithLabelValues(method).Observe(d.Seconds())
}

// ObserveOperation records one mutation from its first request to the end of its operation;
// result is "success", the error class, or "Timeout" (gce.ResultTimeout) for an operation given
// up after --gce-operation-timeout.
func (m *Metrics) ObserveOperation(method, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.gceOperationDuration.WithLabelValues(method, result).Observe(d.Seconds())
}

// ObserveRateLimitWait records how long a call waited for the bucket of its method group.
func (m *Metrics) ObserveRateLimitWait(group string, d time.Duration) {
	if m == nil {
		return
	}
	m.gceRateLimitWait.WithLabelValues(group).Observe(d.Seconds())
}

// CloudState is the live state of the Compute Engine adapter (*gce.Compute implements it).
type CloudState interface {
	// RateLimiterState returns the current rate of every rate limiter (budgets and caps).
	RateLimiterState() map[string]float64
	// RateLimiterGranted returns how many calls every rate limiter has let through.
	RateLimiterGranted() map[string]uint64
	// InFlight returns the number of calls in flight.
	InFlight() int
	// OldestOperationAge returns how long the oldest operation still waited for has been
	// waited for (0 when none).
	OldestOperationAge() time.Duration
}

// SetCloudState installs the adapter whose rate limiters, in-flight calls and operations are
// exported at scrape time, with the configured rate per rate limiter and the in-flight cap.
func (m *Metrics) SetCloudState(cs CloudState, configuredQPS map[string]float64, maxInFlight int) {
	if m == nil {
		return
	}
	cfg := make(map[string]float64, len(configuredQPS))
	for g, q := range configuredQPS {
		cfg[g] = q
	}
	m.scrape.update(func(s *sources) {
		s.cloud, s.configuredQPS, s.maxInFlight = cs, cfg, maxInFlight
	})
}
