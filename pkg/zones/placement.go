package zones

import (
	"slices"
	"sync"
)

// Placement is where the cluster's nodes put one kind of NEG (GCE or hybrid): the zones NEGs
// are wanted in and the nodes by name, as endpoints.Desired takes them. A Placement from a
// PlacementCache is shared: callers must not modify it.
type Placement struct {
	Zones []string
	Nodes map[string]Node
}

// PlacementCache keeps the Placement of each kind computed from the node cache until the
// nodes change (Invalidate), so that Service syncs do not each place every node again: at a
// few hundred nodes that was the largest source of garbage of a cold start. The zero value is
// ready to use.
type PlacementCache struct {
	mu   sync.Mutex
	gen  uint64
	last [2]cachedPlacement // by kind: GCE, hybrid
}

type cachedPlacement struct {
	gen   uint64
	valid bool
	p     Placement
}

// Invalidate drops the cached placements. Call it after the node cache changed in a way that
// may change a placement, before acting on the change.
func (c *PlacementCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
}

// Get returns the placement of the kind (hybrid or GCE), computed with compute unless one
// computed since the last Invalidate is cached. compute runs without the lock (concurrent Gets
// may each compute); its result is cached only when no Invalidate happened while it ran, so a
// placement computed from nodes older than the last change is never kept.
func (c *PlacementCache) Get(hybrid bool, compute func() (Placement, error)) (Placement, error) {
	i := 0
	if hybrid {
		i = 1
	}
	c.mu.Lock()
	gen, cached := c.gen, c.last[i]
	c.mu.Unlock()
	if cached.valid && cached.gen == gen {
		return cached.p, nil
	}
	p, err := compute()
	if err != nil {
		return Placement{}, err
	}
	p.Zones = slices.Clip(p.Zones) // an append by a caller must copy
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.last[i] = cachedPlacement{gen: gen, valid: true, p: p}
	}
	return p, nil
}
