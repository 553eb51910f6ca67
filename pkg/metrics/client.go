package metrics

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// RESTClient holds client-go's standard request metrics of the Kubernetes client, under the
// names every Kubernetes component uses (rest_client_requests_total,
// rest_client_request_duration_seconds). client-go reports through hooks it accepts once per
// process (k8s.io/client-go/tools/metrics.Register), so pkg/app creates one RESTClient per
// process, hands RegisterOpts to client-go once, and registers Collectors on every registry it
// creates (a collector may be registered with several registries).
type RESTClient struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewRESTClient creates the collectors; nothing is registered.
func NewRESTClient() *RESTClient {
	return &RESTClient{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rest_client_requests_total",
			Help: "Kubernetes API requests of the controller's clients, by HTTP status code (or <error>), method and host.",
		}, []string{"code", "method", "host"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rest_client_request_duration_seconds",
			Help:    "Latency of Kubernetes API requests of the controller's clients, by verb and host.",
			Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60},
		}, []string{"verb", "host"}),
	}
}

// Collectors returns the collectors to register.
func (c *RESTClient) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.requests, c.latency}
}

// RegisterOpts returns the hooks to hand to client-go's metrics.Register.
func (c *RESTClient) RegisterOpts() clientmetrics.RegisterOpts {
	return clientmetrics.RegisterOpts{RequestResult: resultAdapter{c.requests}, RequestLatency: latencyAdapter{c.latency}}
}

type resultAdapter struct{ v *prometheus.CounterVec }

func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.v.WithLabelValues(code, method, host).Inc()
}

type latencyAdapter struct{ v *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.v.WithLabelValues(verb, u.Host).Observe(latency.Seconds())
}

// NewBuildInfo returns neg_controller_build_info: a gauge of 1 whose labels name the build.
func NewBuildInfo(version, commit, goVersion string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Subsystem: Subsystem, Name: "build_info",
		Help:        "Always 1; the labels name the running build: version, commit and go_version.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go_version": goVersion},
	})
	g.Set(1)
	return g
}
