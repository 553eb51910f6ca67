package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// maxSplitCalls bounds the calls spent isolating invalid endpoints of one batch; endpoints
// still unresolved when it is exhausted are treated as invalid.
const maxSplitCalls = 64

// launch starts the calls of p on ref in the background and returns at once. The endpoints
// enter the in-flight table before any call leaves; when a call finishes, its goroutine
// updates the NEG's state, clears the endpoints from the table and requeues the Service
// (at once on success, after the NEG's backoff on failure). One Normal event per kind and
// NEG sums up the calls of this launch.
//
// The calls wait for the GCE budget as the Service's (tenant "namespace/name", so that a Service
// with many NEGs takes turns with the others), urgent when they attach the first endpoints of
// an empty NEG (the Service's backends wait for them to serve at all), else normal.
func (c *Controller) launch(ctx context.Context, s *serviceSync, ref neg.Ref, p plan.Plan) {
	prio := gce.PriorityNormal
	if c.states.empty(ref) {
		prio = gce.PriorityUrgent
	}
	for _, group := range [][]plan.Batch{p.Attach, p.Detach} {
		if len(group) == 0 {
			continue
		}
		kind := opAttach
		if group[0].Op == plan.Detach {
			kind = opDetach
		}
		g := &opGroup{c: c, key: s.key, target: s.target, ref: ref, kind: kind, prio: prio, changedAt: c.changes.activeChange(s.key)}
		charged := false
		for _, b := range group {
			if !c.states.tryStart(ref, kind, b.Endpoints) {
				klog.FromContext(ctx).Info("Skipping a batch with endpoints already in flight", "neg", ref.Name, "zone", ref.Zone)
				continue
			}
			if !charged {
				c.states.charge(ref, kind, c.clock.Now(), c.cfg.CallInterval)
				charged = true
			}
			g.add()
			c.ops.Add(1)
			c.busy.Add(1)
			go func(eps []neg.Endpoint) {
				defer c.ops.Done()
				defer c.busy.Add(-1)
				c.runBatch(g, eps)
			}(b.Endpoints)
		}
	}
}

// runBatch performs one attach or detach call (split on invalid endpoints) and records its
// outcome.
func (c *Controller) runBatch(g *opGroup, eps []neg.Endpoint) {
	ctx := gce.WithTenant(gce.WithPriority(c.opCtx, g.prio), g.key.String())
	logger := klog.FromContext(ctx).WithValues("service", klog.KRef(g.key.Namespace, g.key.Name), "neg", g.ref.Name, "zone", g.ref.Zone, "op", g.kind.String())
	r := c.callSplitting(ctx, g.kind, g.ref, eps, maxSplitCalls)
	if gce.IsNotFound(r.err) {
		if g.kind == opDetach {
			// The NEG is gone, and so are its endpoints.
			r.succeeded, r.err = append(r.succeeded, r.failed...), nil
			r.failed = nil
		}
		c.index.remove(g.ref)
		defer c.states.forget(g.ref)
	}
	policy := retryPolicy(gce.Classify(r.err))
	c.states.finish(g.ref, g.kind, eps, r.succeeded, r.invalid, r.err != nil,
		c.clock.Now().Add(c.cfg.InvalidEndpointRetry), c.retryAt(policy))
	if r.err != nil {
		logger.Error(r.err, "Endpoint call failed", "endpoints", len(r.failed), "class", gce.Classify(r.err).String())
	} else {
		logger.V(2).Info("Endpoint call done", "endpoints", len(r.succeeded), "invalid", len(r.invalid))
	}
	g.done(r)
	c.observePropagation(g, r)
	if ctx.Err() != nil {
		return
	}
	if r.err != nil && !gce.IsNotFound(r.err) {
		c.queue.AddAfter(g.key, c.states.retryDelay(g.ref, c.clock.Now()))
		return
	}
	c.queue.Add(g.key)
}

// callResult is the outcome of one batch, possibly split into several calls.
type callResult struct {
	succeeded, invalid, failed []neg.Endpoint
	// err is the first non-invalid error; invalidErr the first invalid one.
	err, invalidErr error
}

// callSplitting calls attach or detach with eps. If GCE rejects the batch as invalid, it
// splits the batch in halves, recursively, to isolate the endpoints GCE refuses and apply the
// rest; budget bounds the number of calls.
func (c *Controller) callSplitting(ctx context.Context, kind opKind, ref neg.Ref, eps []neg.Endpoint, budget int) callResult {
	calls := budget
	var r callResult
	var run func(eps []neg.Endpoint)
	run = func(eps []neg.Endpoint) {
		if calls <= 0 {
			r.invalid = append(r.invalid, eps...)
			return
		}
		calls--
		err := c.call(ctx, kind, ref, eps)
		switch {
		case err == nil:
			r.succeeded = append(r.succeeded, eps...)
		case gce.IsInvalid(err) && len(eps) == 1:
			r.invalid = append(r.invalid, eps...)
			if r.invalidErr == nil {
				r.invalidErr = err
			}
		case gce.IsInvalid(err):
			if r.invalidErr == nil {
				r.invalidErr = err
			}
			mid := len(eps) / 2
			run(eps[:mid])
			run(eps[mid:])
		default:
			r.failed = append(r.failed, eps...)
			if r.err == nil {
				r.err = err
			}
		}
	}
	run(eps)
	return r
}

// call makes one attach or detach call.
func (c *Controller) call(ctx context.Context, kind opKind, ref neg.Ref, eps []neg.Endpoint) error {
	if kind == opAttach {
		return c.cfg.Cloud.AttachNetworkEndpoints(ctx, ref.Zone, ref.Name, eps)
	}
	return c.cfg.Cloud.DetachNetworkEndpoints(ctx, ref.Zone, ref.Name, eps)
}

// opGroup aggregates the batches one launch started on one NEG, to record one event per
// outcome when the last batch finishes.
type opGroup struct {
	c      *Controller
	key    cache.ObjectName
	target *corev1.Service
	ref    neg.Ref
	kind   opKind
	// prio is the GCE budget priority of the calls (see launch).
	prio gce.Priority
	// changedAt is when the EndpointSlice change this launch handles was observed (metrics).
	changedAt time.Time

	mu                          sync.Mutex
	pending                     int
	succeeded, failed           int
	invalid                     []neg.Endpoint
	firstErr, firstInvalidError error
}

func (g *opGroup) add() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending++
}

// done accounts one batch and records the events when it was the last one.
func (g *opGroup) done(r callResult) {
	g.mu.Lock()
	g.pending--
	g.succeeded += len(r.succeeded)
	g.failed += len(r.failed)
	g.invalid = append(g.invalid, r.invalid...)
	if g.firstErr == nil {
		g.firstErr = r.err
	}
	if g.firstInvalidError == nil {
		g.firstInvalidError = r.invalidErr
	}
	last := g.pending == 0
	g.mu.Unlock()
	if last {
		g.record()
	}
}

// record emits the events of a finished group.
func (g *opGroup) record() {
	verb, prep, reason, failReason := "Attached", "to", ReasonAttach, ReasonAttachFailed
	if g.kind == opDetach {
		verb, prep, reason, failReason = "Detached", "from", ReasonDetach, ReasonDetachFailed
	}
	if g.succeeded > 0 {
		g.c.normal(g.target, reason, fmt.Sprintf("%s %d network endpoint(s) %s NEG %q in zone %q",
			verb, g.succeeded, prep, g.ref.Name, g.ref.Zone))
	}
	if g.failed > 0 && gce.Classify(g.firstErr) != gce.Canceled {
		g.c.recorder.Event(g.target, corev1.EventTypeWarning, failReason, fmt.Sprintf(
			"Failed to %s %d network endpoint(s) %s NEG %q in zone %q (will retry): %v",
			g.kind, g.failed, prep, g.ref.Name, g.ref.Zone, g.firstErr))
	}
	if len(g.invalid) > 0 {
		g.c.recorder.Event(g.target, corev1.EventTypeWarning, ReasonInvalidEndpoint, fmt.Sprintf(
			"GCE rejected %d network endpoint(s) of NEG %q in zone %q as invalid; they are skipped for %s (%s): %v",
			len(g.invalid), g.ref.Name, g.ref.Zone, g.c.cfg.InvalidEndpointRetry, sample(g.invalid, 5), g.firstInvalidError))
	}
}

// sample renders up to n endpoints for a message.
func sample(eps []neg.Endpoint, n int) string {
	var parts []string
	for i, e := range eps {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(eps)-n))
			break
		}
		parts = append(parts, e.String())
	}
	return strings.Join(parts, ", ")
}

// empty reports whether ref is known to have no endpoints attached (none listed, none attached
// by our calls since).
func (s *negStates) empty(ref neg.Ref) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[ref]
	return st != nil && st.current != nil && len(st.current) == 0
}

// retryDelay returns how long until the NEG may be retried (at least a millisecond).
func (s *negStates) retryDelay(ref neg.Ref, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[ref]; st != nil && st.retryAt.After(now) {
		return st.retryAt.Sub(now)
	}
	return time.Millisecond
}
