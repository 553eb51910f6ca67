package metrics

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
)

// Changes remembers, per Service, when an EndpointSlice change was first observed and not yet
// handled by a sync, for endpoint_propagation_seconds: the NEG controller observes changes
// (Observe), hands the pending one to the sync that starts (Begin), reads it when launching
// calls (Active) and closes the sync (End). Safe for concurrent use.
type Changes struct {
	mu      sync.Mutex
	armed   bool
	pending map[cache.ObjectName]time.Time
	active  map[cache.ObjectName]time.Time
}

// NewChanges returns a Changes that records nothing until Arm.
func NewChanges() *Changes {
	return &Changes{pending: map[cache.ObjectName]time.Time{}, active: map[cache.ObjectName]time.Time{}}
}

// Arm starts recording (called once the caches have synced).
func (t *Changes) Arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = true
}

// Observe records a change of key's slices at now, keeping the earliest pending one.
func (t *Changes) Observe(key cache.ObjectName, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.pending[key]; t.armed && !ok {
		t.pending[key] = now
	}
}

// Begin hands the pending change of key to the sync that starts (a key is synced by one worker
// at a time), so that changes observed from now on are timed from their own observation.
func (t *Changes) Begin(key cache.ObjectName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.pending[key]; ok {
		t.active[key] = at
		delete(t.pending, key)
	}
}

// End closes the sync of key; a failed sync gives its change back, to be timed by the retry.
func (t *Changes) End(key cache.ObjectName, failed bool) {
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

// Active returns when the change the current sync of key handles was observed (zero if
// none).
func (t *Changes) Active(key cache.ObjectName) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[key]
}
