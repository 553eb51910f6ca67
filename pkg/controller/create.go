package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// maxCreatesPerService caps the NEG inserts one Service has in flight. Inserts wait in the GCE
// adapter's budget round-robin across Services, so a Service with many ports does not queue all
// its inserts ahead of the others; the cap still bounds what one Service holds at once
// (goroutines, in-flight slots while operations are awaited). Two ports in three zones fit.
const maxCreatesPerService = 6

// maxCreatesInFlight caps the NEG inserts in flight in all: each holds a goroutine (and its
// stack and request) while it waits for GCE's mutation budget, and a cold start at the default
// budget (25 calls/s) would otherwise hold one per NEG of the cluster at once — 3,000 for 1,000
// Services in three zones, measured at +76 MiB. 256 inserts are about ten seconds of the
// default budget, and more than a raised budget's operations keep in flight.
const maxCreatesInFlight = 256

// creations tracks the NEG inserts in flight, per NEG and per Service, and the Services that
// found no room (maxCreatesInFlight) in the order they asked.
type creations struct {
	mu        sync.Mutex
	limit     int
	byRef     map[neg.Ref]cache.ObjectName
	byService map[cache.ObjectName]int
	waiting   []cache.ObjectName
	queued    map[cache.ObjectName]bool
}

func newCreations(limit int) *creations {
	return &creations{limit: limit, byRef: map[neg.Ref]cache.ObjectName{}, byService: map[cache.ObjectName]int{},
		queued: map[cache.ObjectName]bool{}}
}

// begin reserves an insert of ref for key; false if one is in flight for ref already, key has
// maxCreatesPerService in flight, or limit inserts are in flight in all (key then waits for
// its turn: see end).
func (cr *creations) begin(ref neg.Ref, key cache.ObjectName) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if _, busy := cr.byRef[ref]; busy || cr.byService[key] >= maxCreatesPerService {
		return false
	}
	if len(cr.byRef) >= cr.limit {
		if !cr.queued[key] {
			cr.queued[key] = true
			cr.waiting = append(cr.waiting, key)
		}
		return false
	}
	cr.byRef[ref] = key
	cr.byService[key]++
	return true
}

// end releases the reservation of ref and returns the Service whose turn it is to insert
// (the first that found no room), if any: the caller syncs it again.
func (cr *creations) end(ref neg.Ref) (next cache.ObjectName, ok bool) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	key, found := cr.byRef[ref]
	if found {
		delete(cr.byRef, ref)
		if cr.byService[key]--; cr.byService[key] <= 0 {
			delete(cr.byService, key)
		}
	}
	if len(cr.waiting) == 0 {
		return cache.ObjectName{}, false
	}
	next, cr.waiting = cr.waiting[0], cr.waiting[1:]
	delete(cr.queued, next)
	return next, true
}

// inFlight reports whether an insert of ref is in flight.
func (cr *creations) inFlight(ref neg.Ref) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	_, ok := cr.byRef[ref]
	return ok
}

// startCreate inserts the NEG of t in the background, so that no sync worker waits for an
// insert operation (which may take long, or never finish until the adapter's operation
// deadline): with one worker, other Services still get their NEGs. When the insert ends the
// Service is synced again — at once on success or when the NEG turned out to exist, after the
// NEG's backoff on failure. A NEG already being inserted, or a Service at its cap of inserts in
// flight, is skipped: the ending insert re-syncs the Service; with maxCreatesInFlight reached,
// the Service waits its turn, and the next insert to end re-syncs it. The insert waits for the GCE
// budget urgently (the Service cannot serve through NEGs that do not exist), as the Service's
// tenant, taking turns with the inserts of other Services.
func (c *Controller) startCreate(ctx context.Context, s *serviceSync, t *negTask, want naming.Description) {
	if !c.creates.begin(t.ref, s.key) {
		return
	}
	spec := gce.NEGSpec{Name: t.ref.Name, Type: s.negType(), Description: want.String(), Network: c.cfg.Network}
	if !s.hybrid {
		// Hybrid NEGs belong to a network, never to a subnetwork.
		spec.Subnetwork = c.cfg.Subnetwork
	}
	preprovisionSpec(s, t.ref.Zone, &spec)
	key, target, ref, port, custom := s.key, s.target, t.ref, t.port.Port, !t.port.Generated()
	c.ops.Add(1)
	c.busy.Add(1)
	go func() {
		defer c.ops.Done()
		defer c.busy.Add(-1)
		defer func() {
			if next, ok := c.creates.end(ref); ok {
				c.queue.Add(next)
			}
		}()
		ctx := gce.WithTenant(gce.WithPriority(ctx, gce.PriorityUrgent), key.String())
		logger := klog.FromContext(ctx).WithValues("neg", ref.Name, "zone", ref.Zone)
		created, err := c.cfg.Cloud.CreateNEG(ctx, ref.Zone, spec)
		if gce.IsAlreadyExists(err) {
			// Someone made it meanwhile: index it; the next sync decides whether it is ours.
			existing, gerr := c.cfg.Cloud.GetNEG(ctx, ref.Zone, ref.Name)
			if gerr == nil {
				existing.Zone = ref.Zone
				c.index.Put(*existing)
				c.queue.Add(key)
				return
			}
			err = gerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			at := c.recordNEGFailure(ctx, key, target, ref, err, ReasonCreateNEGFailed,
				fmt.Sprintf("Failed to create NEG %q in zone %q: %v", ref.Name, ref.Zone, err))
			c.queue.AddAfter(key, max(at.Sub(c.clock.Now()), time.Millisecond))
			return
		}
		created.Zone = ref.Zone
		// Known empty before it is indexed: a sync that finds it in the index must not list it.
		c.negs.Created(ref, key)
		c.index.Put(*created)
		if custom {
			c.index.MarkClaimed(ref)
		}
		c.warnings.Clear(key, ReasonCreateNEGFailed+":"+ref.String())
		logger.Info("Created NEG")
		c.normal(target, ReasonCreate, fmt.Sprintf("Created NEG %q for %s-%d in %q.", ref.Name, key, port, ref.Zone))
		c.queue.Add(key)
	}()
}
