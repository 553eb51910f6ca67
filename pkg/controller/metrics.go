package controller

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

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
//     (the earliest change not yet handled, per Service); the sync that handles it carries the
//     time to the attach and detach calls it launches, and each call that succeeds observes the
//     time since the change. Changes observed before the caches synced (the initial listing,
//     or while a standby waits for leadership) are not timed.

// changeTracker remembers, per Service, when an EndpointSlice change was first observed and
// not yet handled by a sync.
type changeTracker struct {
	mu      sync.Mutex
	armed   bool
	pending map[cache.ObjectName]time.Time
	active  map[cache.ObjectName]time.Time
}

func newChangeTracker() *changeTracker {
	return &changeTracker{pending: map[cache.ObjectName]time.Time{}, active: map[cache.ObjectName]time.Time{}}
}

// arm starts recording (called once the caches have synced).
func (t *changeTracker) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = true
}

// observe records a change of key's slices at now, keeping the earliest pending one.
func (t *changeTracker) observe(key cache.ObjectName, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.pending[key]; t.armed && !ok {
		t.pending[key] = now
	}
}

// begin hands the pending change of key to the sync that starts (a key is synced by one worker
// at a time), so that changes observed from now on are timed from their own observation.
func (t *changeTracker) begin(key cache.ObjectName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.pending[key]; ok {
		t.active[key] = at
		delete(t.pending, key)
	}
}

// end closes the sync of key; a failed sync gives its change back, to be timed by the retry.
func (t *changeTracker) end(key cache.ObjectName, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.active[key]
	delete(t.active, key)
	if !ok || !failed {
		return
	}
	if p, ok := t.pending[key]; !ok || at.Before(p) {
		t.pending[key] = at
	}
}

// activeChange returns when the change the current sync of key handles was observed (zero if
// none).
func (t *changeTracker) activeChange(key cache.ObjectName) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[key]
}

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
