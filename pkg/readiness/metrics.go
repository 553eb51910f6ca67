package readiness

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the readiness gate. A nil *Metrics records nothing.
type Metrics struct {
	gateSeconds *prometheus.HistogramVec
	waiting     prometheus.GaugeFunc
	injections  *prometheus.CounterVec
}

// NewMetrics registers the readiness gate's metrics on reg. waiting is read at scrape time
// (nil: the gauge reports 0 until SetWaitingSource).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		gateSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "neg_controller", Name: "readiness_gate_seconds",
			Help:    "Time from a gated pod's creation to its cloud.google.com/load-balancer-neg-ready condition set True, by reason.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200},
		}, []string{"reason"}),
		injections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "neg_controller", Name: "readiness_gate_injections_total",
			Help: "Pod admissions the webhook answered, by result: injected, skipped (not selected, not opted in, already gated) or error.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.gateSeconds, m.injections)
	return m
}

// registerWaiting exports the number of pods waiting for their gate, read from f at scrape
// time.
func (m *Metrics) registerWaiting(reg prometheus.Registerer, f func() float64) {
	if m == nil || reg == nil {
		return
	}
	m.waiting = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "neg_controller", Name: "readiness_pods_waiting",
		Help: "Gated pods whose condition is not True yet and that wait on at least one NEG's health.",
	}, f)
	reg.MustRegister(m.waiting)
}

func (m *Metrics) observeGate(reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.gateSeconds.WithLabelValues(reason).Observe(d.Seconds())
}

func (m *Metrics) observeInjection(result string) {
	if m == nil {
		return
	}
	m.injections.WithLabelValues(result).Inc()
}
