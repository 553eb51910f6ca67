package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of the unowned_negs gauge: why a NEG whose description names this cluster is still
// not ours.
const (
	UnownedType    = "type"    // not GCE_VM_IP_PORT (e.g. a GKE L4 GCE_VM_IP NEG)
	UnownedNetwork = "network" // on another network than the configured one
	UnownedName    = "name"    // a generated-looking name this cluster's naming UID does not produce
	UnownedClaim   = "claim"   // a custom name no Service of this cluster claims
)

// unownedCollector reports, at scrape time, the NEGs the controller leaves alone although their
// description names this cluster.
type unownedCollector struct {
	desc *prometheus.Desc

	mu  sync.Mutex
	src func() map[string]int
}

func newUnownedCollector() *unownedCollector {
	return &unownedCollector{desc: prometheus.NewDesc(prometheus.BuildFQName("", Subsystem, "unowned_negs"),
		"NEGs whose description names this cluster but that fail another ownership check, by reason (type, "+
			"network, name, claim). The controller never attaches to, detaches from or deletes them.",
		[]string{"reason"}, nil)}
}

func (c *unownedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *unownedCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	for reason, n := range src() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), reason)
	}
}

// SetUnownedNEGsSource installs the function the unowned_negs gauge is read from at scrape time
// (count per reason). It must be fast and safe for concurrent use.
func (m *Metrics) SetUnownedNEGsSource(f func() map[string]int) {
	if m == nil {
		return
	}
	m.unowned.mu.Lock()
	defer m.unowned.mu.Unlock()
	m.unowned.src = f
}
