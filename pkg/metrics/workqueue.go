package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// queueMetrics are client-go's standard work queue metrics, labelled by queue name, under the
// neg_controller subsystem.
type queueMetrics struct {
	depth, unfinished, longestRunning *prometheus.GaugeVec
	adds, retries                     *prometheus.CounterVec
	latency, workDuration             *prometheus.HistogramVec
}

func newQueueMetrics() *queueMetrics {
	buckets := prometheus.ExponentialBuckets(0.001, 4, 10) // 1 ms … 262 s
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: Subsystem, Name: name, Help: help}, []string{"name"})
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: Subsystem, Name: name, Help: help}, []string{"name"})
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: Subsystem, Name: name, Help: help,
			Buckets: buckets}, []string{"name"})
	}
	return &queueMetrics{
		depth: gauge("workqueue_depth", "Keys waiting in the work queue (delayed keys are not counted until due)."),
		unfinished: gauge("workqueue_unfinished_work_seconds",
			"Seconds of work in progress not yet observed by work_duration; large values mean stuck workers."),
		longestRunning: gauge("workqueue_longest_running_processor_seconds",
			"How long the longest-running worker of the queue has been processing its key."),
		adds:    counter("workqueue_adds_total", "Keys added to the work queue."),
		retries: counter("workqueue_retries_total", "Keys re-added with rate limiting (failed syncs)."),
		latency: histogram("workqueue_queue_duration_seconds",
			"How long a key waits in the work queue before a worker takes it."),
		workDuration: histogram("workqueue_work_duration_seconds", "How long processing a key takes."),
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
