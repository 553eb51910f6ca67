package controller

import (
	"time"

	"github.com/neg-controller/neg-controller/pkg/endpoints"
	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// The controller's metric observations, at its seams (Config.Metrics; all no-ops when nil):
//
//   - syncKey times every sync (sync_duration_seconds by result);
//   - desiredEndpoints counts skipped endpoints by reason (skipped_endpoints_total);
//   - the work queue reports through Config.Metrics.QueueProvider (workqueue_*);
//   - attached_endpoints is read from the NEG state table at scrape time (attachedCounts), so a
//     NEG's series exists exactly while the controller knows its endpoints;
//   - endpoint_propagation_seconds: onSlice records when a Service's EndpointSlices changed
//     (metrics.Changes: the earliest change not yet handled, per Service); the sync that
//     handles it carries the time to the attach and detach calls it launches, and each call
//     that succeeds observes the time since the change. Changes observed before the caches
//     synced (the initial listing, or while a standby waits for leadership) are not timed.

// attachedCounts returns the number of endpoints of every NEG whose endpoints are known.
func (c *Controller) attachedCounts() []metrics.NEGEndpoints {
	counts := c.negs.Attached()
	out := make([]metrics.NEGEndpoints, 0, len(counts))
	for ref, n := range counts {
		out = append(out, metrics.NEGEndpoints{Zone: ref.Zone, NEG: ref.Name, Count: n})
	}
	return out
}

// observeSkipped counts the endpoints one sync skipped, by reason. Endpoints of other address
// families are left out, as in the EndpointsSkipped event: dual-stack Services always have
// them when dual-stack NEGs are off.
func (c *Controller) observeSkipped(skipped map[endpoints.SkipReason]int) {
	for r, n := range skipped {
		if r != endpoints.SkipOtherFamily {
			c.cfg.Metrics.AddSkippedEndpoints(string(r), n)
		}
	}
}

// HasSynced reports whether the informers the controller registered have synced (readiness).
func (c *Controller) HasSynced() bool {
	for _, synced := range c.cacheSynced {
		if !synced() {
			return false
		}
	}
	return true
}

// observeSync records one sync's duration and result.
func (c *Controller) observeSync(err error, d time.Duration) {
	result := metrics.ResultSuccess
	if err != nil {
		result = metrics.ResultError
	}
	c.cfg.Metrics.ObserveSync(result, d)
}
