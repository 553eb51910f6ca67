package negbinding

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negsync"
)

// negCache remembers the NEGs bindings name as GCE last returned them (or that GCE said they do
// not exist), so that a binding's syncs — one per EndpointSlice change — do not GET every NEG
// each time. An entry is read again once older than maxAge, after a call found the NEG gone,
// or after a failed read. That a NEG does not exist is remembered for missingAge only (shorter:
// the user is expected to create it).
type negCache struct {
	cloud              gce.Cloud
	clock              clock.Clock
	maxAge, missingAge time.Duration
	// syncer, when set, compares the size of every NEG read with the endpoints it believes
	// attached (negsync.Syncer.CheckSizes): endpoints attached or detached by hand are found
	// and repaired at each read, every resync period, at no extra call.
	syncer *negsync.Syncer

	mu      sync.Mutex
	entries map[neg.Ref]negEntry
}

type negEntry struct {
	neg *gce.NEG // nil: not found
	at  time.Time
}

func newNEGCache(cloud gce.Cloud, clk clock.Clock, maxAge, missingAge time.Duration) *negCache {
	return &negCache{cloud: cloud, clock: clk, maxAge: maxAge, missingAge: min(missingAge, maxAge),
		entries: map[neg.Ref]negEntry{}}
}

// get returns the NEG (nil when it does not exist), reading it from GCE unless a fresh enough
// answer is cached. An error other than NotFound is returned and not cached.
func (c *negCache) get(ctx context.Context, ref neg.Ref, owner string) (*gce.NEG, error) {
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[ref]
	c.mu.Unlock()
	if ok && (now.Sub(e.at) < c.missingAge || (e.neg != nil && now.Sub(e.at) < c.maxAge)) {
		return e.neg, nil
	}
	var seq uint64
	if c.syncer != nil {
		seq = c.syncer.Sequence()
	}
	n, err := c.cloud.GetNEG(gce.WithTenant(ctx, owner), ref.Zone, ref.Name)
	if err != nil && !gce.IsNotFound(err) {
		return nil, err
	}
	if err != nil {
		n = nil
	}
	if n != nil && c.syncer != nil {
		c.syncer.CheckSizes([]gce.NEG{*n}, seq)
	}
	c.mu.Lock()
	c.entries[ref] = negEntry{neg: n, at: now}
	c.mu.Unlock()
	return n, nil
}

// forget makes the next get read ref from GCE.
func (c *negCache) forget(ref neg.Ref) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, ref)
}
