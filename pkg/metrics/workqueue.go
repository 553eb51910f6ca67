package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// queueMetrics are client-go's standard work queue metrics, under the names kube-controller-manager
// and controller-runtime expose (workqueue_depth, workqueue_adds_total, ...: no neg_controller_
// prefix, so existing dashboards and alerts work), labelled by queue name.
type queueMetrics struct {
	depth, unfinished, longestRunning *prometheus.GaugeVec
	adds, retries                     *prometheus.CounterVec
	latency, workDuration             *prometheus.HistogramVec
}

// queueSubsystem is the prefix of the standard work queue metrics.
const queueSubsystem = "workqueue"

func newQueueMetrics() *queueMetrics {
	buckets := prometheus.ExponentialBuckets(10e-9, 10, 12) // 10 ns … 1000 s, as Kubernetes components
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: queueSubsystem, Name: name, Help: help}, []string{"name"})
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: queueSubsystem, Name: name, Help: help}, []string{"name"})
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: queueSubsystem, Name: name, Help: help,
			Buckets: buckets}, []string{"name"})
	}
	return &queueMetrics{
		depth: gauge("depth", "Current depth of the work queue: keys waiting (delayed keys are not counted until due)."),
		unfinished: gauge("unfinished_work_seconds",
			"Seconds of work in progress not yet observed by work_duration; large values mean stuck workers."),
		longestRunning: gauge("longest_running_processor_seconds",
			"How long the longest-running worker of the queue has been processing its key."),
		adds:    counter("adds_total", "Keys added to the work queue."),
		retries: counter("retries_total", "Keys re-added with rate limiting (failed syncs)."),
		latency: histogram("queue_duration_seconds",
			"How long in seconds a key waits in the work queue before a worker takes it."),
		workDuration: histogram("work_duration_seconds", "How long in seconds processing a key takes."),
	}
}

func (q *queueMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(q.depth, q.unfinished, q.longestRunning, q.adds, q.retries, q.latency, q.workDuration)
}

// QueueProvider returns the workqueue.MetricsProvider to put in a queue's config
// (TypedRateLimitingQueueConfig.MetricsProvider). Nil for a nil *Metrics, which makes the queue
// use client-go's default (no metrics unless something called workqueue.SetProvider).
func (m *Metrics) QueueProvider() workqueue.MetricsProvider {
	if m == nil {
		return nil
	}
	return queueProvider{m.queue}
}

type queueProvider struct{ q *queueMetrics }

func (p queueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.q.depth.WithLabelValues(name)
}

func (p queueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.q.adds.WithLabelValues(name)
}

func (p queueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.q.latency.WithLabelValues(name)
}

func (p queueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.q.workDuration.WithLabelValues(name)
}

func (p queueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.q.unfinished.WithLabelValues(name)
}

func (p queueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.q.longestRunning.WithLabelValues(name)
}

func (p queueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.q.retries.WithLabelValues(name)
}
